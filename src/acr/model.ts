// The vocabulary shared by the annotation rules, the credential chain and the Secret store.
// Plain data only, so every decision about it can be a pure function.

/** Who the registry credentials are obtained as. No ARN at all means the webhook's own identity. */
export interface RoleChain {
  /** Role in the workload's account, assumed with the webhook's identity (first hop). */
  serviceArn?: string;
  /** Role in the registry owner's account, assumed with the first hop's temporary credentials. */
  userArn?: string;
}

/** One registry the Secret must open. */
export type RegistryRef =
  /** Enterprise Edition instance named by ID (annotation or operator configuration). */
  | { kind: 'instance'; instanceId: string; region?: string; domains?: string[] }
  /** Enterprise Edition instance known only by its default domain `<name>-registry[-vpc].<region>.cr.aliyuncs.com`. */
  | { kind: 'instance-name'; instanceName: string; region: string }
  /** Personal Edition registry of one region (token API 2016-06-07); `domains` are the hosts seen in images. */
  | { kind: 'personal'; region: string; domains: string[] };

/** One pull Secret's worth of work: a credential chain and the registries it opens. */
export interface Binding {
  chain: RoleChain;
  registries: RegistryRef[];
}

/** What the webhook must put in place for one admitted object. */
export interface PullSecretSpec {
  /** Namespace the Secret lives in. */
  namespace: string;
  /** Deterministic name derived from the chain and registries (see secret-name.ts). */
  name: string;
  /** Namespace whose workload asked (audit trail: RoleSessionName, labels). */
  requester: string;
  binding: Binding;
}
