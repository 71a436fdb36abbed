// The credential chain end to end: webhook identity -> service role -> user role -> registry tokens, cached
// per chain and instance until `expiry - threshold`, with single-flight loads and deadlines from the review.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef, RoleChain } from '../acr/model.js';
import type { Budget, DockerAuths, RegistryCredential, TokenSource } from '../pull-secrets/types.js';
import { DenialError } from '../pull-secrets/types.js';
import { getAuthorizationToken, instanceDomains, instanceIdByName, personalToken, type RegistryToken } from './acr.js';
import { ExpiringCache, type CacheOutcome, type Expiring, type PersistentStore } from './cache.js';
import { denialFor, isServiceRoleRefusal, stepName, timeoutDenial, type Step } from './denials.js';
import type { Endpoints } from './endpoints.js';
import type { Identity } from './identity.js';
import type { CloudCaller, Credentials } from './rpc.js';
import { assumeRole, assumeRoleWithOidc, roleSessionName, type SessionCredentials } from './sts.js';

export interface TokenSourceOptions {
  identity: Identity;
  endpoints: Endpoints;
  caller: CloudCaller;
  sessionDurationSeconds: number;
  /** Cached credentials and tokens are renewed this long before they expire (a function when it can change). */
  refreshThresholdMs: number | (() => number);
  /** Why a service role refused the webhook (trust-explainer.ts); called only after such a refusal. */
  explainRefusal?: (roleArn: string, deniedAction: string | undefined, budget: Budget) => Promise<string>;
  /** ExternalId to send when assuming a role, if the operator configured one. */
  externalIdFor?: (roleArn: string) => string | undefined;
  /** Entries per cache (sessions, registry tokens, instance metadata); default DEFAULT_CACHE_ENTRIES. */
  maxEntries?: number;
  negativeTtlMs?: number;
  now?: () => number;
  observeCache?: (cache: string, outcome: CacheOutcome) => void;
  /** A cache that outlives the process (the credential provider's disk cache); memory only when absent. */
  persistent?: PersistentStore;
  /** Whose identity a chain without service ARN uses, for messages: "the webhook" (default), "the node". */
  self?: string;
}

/**
 * A workload's own identity (KEP-4412): the first hop of its chain is assumed with its Kubernetes
 * ServiceAccount token through RRSA (AssumeRoleWithOIDC) instead of with the front end's identity.
 */
export interface WorkloadIdentity {
  /** The RAM OIDC provider that trusts the cluster's service-account issuer. */
  oidcProviderArn: string;
  /** The ServiceAccount token; sent to STS only, never cached or logged. */
  token: string;
  issuer: string;
  /** `system:serviceaccount:<namespace>:<name>` */
  subject: string;
  audiences: string[];
  /**
   * Who the token speaks for (issuer, subject and ServiceAccount UID): the partition of the cached sessions,
   * so that one ServiceAccount's sessions never serve another.
   */
  partition: string;
}

/** Instance domains and name lookups change rarely; tokens do not decide how long they stay. */
const METADATA_TTL_MS = 10 * 60_000;
/**
 * A cached session or token stops being usable when the Secret built from it is renewed (both at expiry minus
 * the refresh threshold), so entries only serve loads close together in time: a burst, or several Secrets of one
 * chain. Real STS SecurityTokens (no documented limit) are commonly over half a kilobyte, so 5,000 entries per
 * cache could cost tens of MiB of a 128 MiB heap for little; 1,000 keep every burst's chains.
 */
export const DEFAULT_CACHE_ENTRIES = 1000;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface ChainCredentials {
  /**
   * Resolved on demand, through the session caches, with the expiry of the session they are (none for an own
   * identity, which its provider renews): what they obtain must not outlive them.
   */
  creds: () => Promise<Credentials & { expiresAt?: number }>;
  /** Names these credentials: the role chain and the namespace's session (what they obtain is cached under it). */
  key: string;
  /** The role chain alone, without the session: failures are remembered per group, not per namespace. */
  group: string;
  as: string;
}

export class AcrTokenSource implements TokenSource {
  private readonly sessions: ExpiringCache<SessionCredentials>;
  private readonly tokens: ExpiringCache<RegistryToken>;
  private readonly metadata: ExpiringCache<string[]>;
  /** Per group (role chain, and call): recently worked (true) or failed (the denial, for negativeTtlMs). */
  private readonly health: ExpiringCache<true>;
  private readonly now: () => number;
  private readonly threshold: () => number;

  constructor(private readonly opts: TokenSourceOptions) {
    this.now = opts.now ?? Date.now;
    const t = opts.refreshThresholdMs;
    this.threshold = typeof t === 'function' ? t : () => t;
    const common = { maxEntries: opts.maxEntries ?? DEFAULT_CACHE_ENTRIES, now: this.now, observe: opts.observeCache };
    // Failures are remembered in `health`, per group (in memory only); the value caches hold successes alone.
    const values = { ...common, negativeTtlMs: 0, persistent: opts.persistent };
    this.sessions = new ExpiringCache({ name: 'sts', ...values });
    this.tokens = new ExpiringCache({ name: 'token', ...values });
    this.metadata = new ExpiringCache({ name: 'instance', ...values });
    this.health = new ExpiringCache({ name: 'role', ...common, negativeTtlMs: opts.negativeTtlMs ?? 5000 });
  }

  /** `workload`: the service hop is assumed with this ServiceAccount token (the credential provider's workload mode). */
  async dockerAuths(binding: Binding, requester: string, budget: Budget, workload?: WorkloadIdentity): Promise<DockerAuths> {
    const chain = this.chainCredentials(binding.chain, requester, budget, workload);
    const parts = await Promise.all(binding.registries.map((r) => this.registry(r, chain, budget)));
    const auths: Record<string, RegistryCredential> = {};
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const part of parts) {
      for (const domain of part.domains) auths[domain] = { username: part.token.username, password: part.token.password };
      expiresAt = Math.min(expiresAt, part.token.expiresAt);
    }
    return { auths, expiresAt };
  }

  /** Credentials of a chain's last hop (the webhook's own for {}), cached like the admission path's. */
  async credentialsFor(chain: RoleChain, requester: string, budget: Budget): Promise<Credentials> {
    return this.chainCredentials(chain, requester, budget).creds();
  }

  /**
   * A key naming a chain's final credentials (for caching what they obtain), a label for messages, and the
   * credentials themselves, obtained only when a cache miss needs them: a cached token costs no hop at all.
   */
  private chainCredentials(chain: RoleChain, requester: string, budget: Budget, workload?: WorkloadIdentity): ChainCredentials {
    const self = this.opts.self ?? 'the webhook';
    const identityStep: Step = { kind: 'identity', self, source: this.opts.identity.source };
    const ownCredentials = () =>
      tracked(budget, identityStep, async () => {
        try {
          return await this.opts.identity.credentials();
        } catch (e) {
          throw denialFor(identityStep, e);
        }
      });
    if (!chain.serviceArn) return { creds: ownCredentials, key: 'self', group: 'self', as: `${self}'s own identity` };
    const sts = this.opts.endpoints.sts;
    const sessionName = roleSessionName(requester, sha);
    const serviceArn = chain.serviceArn;
    const usable = (s: SessionCredentials) => s.expiresAt - this.threshold();
    // Sessions obtained with a workload's token are that workload's: their keys (and failures) carry its partition.
    const partition = workload ? `oidc|${workload.oidcProviderArn}|${workload.partition}|` : '';
    const serviceGroup = `${partition}${serviceArn}`;
    const serviceKey = `${serviceGroup}|${sessionName}`;
    const serviceStep: Step = workload
      ? { kind: 'assume-oidc', roleArn: serviceArn, providerArn: workload.oidcProviderArn, subject: workload.subject, issuer: workload.issuer, audiences: workload.audiences, endpoint: sts }
      : { kind: 'assume-service', roleArn: serviceArn, endpoint: sts };
    const service = () =>
      this.gated(`assume|${serviceGroup}`, this.sessions, serviceKey, usable, serviceStep, budget, async () => {
        if (!workload) return this.assume(await ownCredentials(), serviceArn, sessionName, serviceStep, budget);
        try {
          const session = await assumeRoleWithOidc(
            this.opts.caller,
            sts,
            { roleArn: serviceArn, oidcProviderArn: workload.oidcProviderArn, oidcToken: workload.token, roleSessionName: sessionName, durationSeconds: this.opts.sessionDurationSeconds },
            budget,
          );
          return { value: session, usableUntil: usable(session) };
        } catch (e) {
          throw denialFor(serviceStep, e);
        }
      });
    if (!chain.userArn) return { creds: service, key: serviceKey, group: serviceGroup, as: serviceArn };
    const userArn = chain.userArn;
    const group = `${serviceGroup}|${userArn}`;
    const key = `${group}|${sessionName}`;
    const userStep: Step = { kind: 'assume-user', roleArn: userArn, serviceArn, endpoint: sts };
    const user = () => this.gated(`assume|${group}`, this.sessions, key, usable, userStep, budget, async () => this.assume(await service(), userArn, sessionName, userStep, budget));
    return { creds: user, key, group, as: userArn };
  }

  /**
   * `cache.get(key, load)` for one namespace, through the health of its group (the role chain without the
   * namespace's session name, and the call): a failure is remembered for the whole group, so one broken or
   * throttled role used from many namespaces is not called again per namespace; and while a group has no recent
   * success, concurrent namespaces wait for the first one's answer instead of each calling (and retrying).
   * Successes stay per namespace (its own RoleSessionName in the account owner's audit trail). The wait is
   * recorded as `step`, so a deadline passing meanwhile names it.
   */
  private gated<V>(
    group: string,
    cache: ExpiringCache<V>,
    key: string,
    healthyUntil: (v: V) => number,
    step: Step,
    budget: Budget,
    load: () => Promise<Expiring<V>>,
  ): Promise<V> {
    return tracked(budget, step, async () => {
      let probe: { ok: true; value: V } | { ok: false; error: unknown } | undefined;
      await this.health.get(group, async () => {
        try {
          const value = await cache.get(key, load);
          probe = { ok: true, value };
          return { value: true, usableUntil: healthyUntil(value) };
        } catch (e) {
          if (!ranOutOfTime(e)) throw e;
          // The probe's own deadline says nothing about the role: not remembered, and whoever waited on this probe
          // tries with their own time.
          probe = { ok: false, error: e };
          return { value: true, usableUntil: 0 };
        }
      });
      if (probe) {
        if (probe.ok) return probe.value;
        throw probe.error;
      }
      try {
        return await cache.get(key, load);
      } catch (e) {
        if (!ranOutOfTime(e)) this.health.fail(group, e);
        throw e;
      }
    });
  }

  private async assume(creds: Credentials, roleArn: string, sessionName: string, step: Step, budget: Budget): Promise<{ value: SessionCredentials; usableUntil: number }> {
    try {
      const session = await assumeRole(
        this.opts.caller,
        this.opts.endpoints.sts,
        creds,
        { roleArn, roleSessionName: sessionName, durationSeconds: this.opts.sessionDurationSeconds, externalId: this.opts.externalIdFor?.(roleArn) },
        budget,
      );
      return { value: session, usableUntil: session.expiresAt - this.threshold() };
    } catch (e) {
      if (isServiceRoleRefusal(step, e) && this.opts.explainRefusal) {
        throw denialFor(step, e, await this.opts.explainRefusal(roleArn, e.deniedAction, budget).catch(() => undefined));
      }
      throw denialFor(step, e);
    }
  }

  private async registry(r: RegistryRef, chain: ChainCredentials, budget: Budget): Promise<{ domains: string[]; token: RegistryToken }> {
    if (r.kind === 'personal') {
      const endpoint = this.opts.endpoints.cr(r.region);
      const step: Step = { kind: 'personal', region: r.region, as: chain.as, endpoint };
      const token = await this.token(`p|${r.region}`, chain, step, budget, (creds) => personalToken(this.opts.caller, endpoint, creds, budget));
      return { domains: r.domains, token };
    }
    const region = r.region ?? '';
    const endpoint = this.opts.endpoints.cr(region);
    const stepFor = (what: string, actions: string, instanceId: string): Step => ({ kind: 'instance', what, actions, instanceId, region, as: chain.as, endpoint });
    let instanceId: string;
    if (r.kind === 'instance-name') {
      const found = await this.meta(`name|${region}|${r.instanceName}`, chain, stepFor('looking up the instance by name', 'cr:ListInstance (on all instances of the account)', r.instanceName), budget, async (creds) => {
        const id = await instanceIdByName(this.opts.caller, endpoint, creds, r.instanceName, budget);
        return id ? [id] : [];
      });
      if (!found[0]) {
        throw new DenialError(
          `no ACR Enterprise Edition instance named ${r.instanceName} in ${region} is visible to ${chain.as}: check the image's registry domain, or name the instance in k8s.aliyun.com/acr-instance-ids`,
          400,
          'BadRequest',
        );
      }
      instanceId = found[0];
    } else {
      instanceId = r.instanceId;
    }
    const [domains, token] = await Promise.all([
      r.kind === 'instance' && r.domains
        ? Promise.resolve(r.domains)
        : this.meta(`domains|${region}|${instanceId}`, chain, stepFor('listing the domains', 'cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint on the instance', instanceId), budget, (creds) =>
            instanceDomains(this.opts.caller, endpoint, creds, instanceId, budget),
          ),
      this.token(`i|${region}|${instanceId}`, chain, stepFor('getting a registry token', 'cr:GetAuthorizationToken on the instance', instanceId), budget, (creds) =>
        getAuthorizationToken(this.opts.caller, endpoint, creds, instanceId, budget),
      ),
    ]);
    return { domains, token };
  }

  /** A token never outlives the session that obtained it, whatever ExpireTime the registry gave it. */
  private token(call: string, chain: ChainCredentials, step: Step, budget: Budget, load: (creds: Credentials) => Promise<RegistryToken>): Promise<RegistryToken> {
    const usable = (t: RegistryToken) => t.expiresAt - this.threshold();
    return this.gated(`${call}|${chain.group}`, this.tokens, `${call}|${chain.key}`, usable, step, budget, async () => {
      // The chain's own hops deny (and are recorded) in their own name.
      const creds = await chain.creds();
      try {
        const loaded = await load(creds);
        const token = creds.expiresAt !== undefined && loaded.expiresAt > creds.expiresAt ? { ...loaded, expiresAt: creds.expiresAt } : loaded;
        return { value: token, usableUntil: usable(token) };
      } catch (e) {
        throw denialFor(step, e);
      }
    });
  }

  private meta(call: string, chain: ChainCredentials, step: Step, budget: Budget, load: (creds: Credentials) => Promise<string[]>): Promise<string[]> {
    const until = () => this.now() + METADATA_TTL_MS;
    return this.gated(`${call}|${chain.group}`, this.metadata, `${call}|${chain.key}`, until, step, budget, async () => {
      const creds = await chain.creds();
      try {
        return { value: await load(creds), usableUntil: until() };
      } catch (e) {
        throw denialFor(step, e);
      }
    });
  }

  /** Entries held, for the memory benchmark. */
  get cachedEntries(): number {
    return this.sessions.size + this.tokens.size + this.metadata.size + this.health.size;
  }
}

/** A denial because one review's deadline passed (not something the role or service said). */
const ranOutOfTime = (e: unknown) => e instanceof DenialError && e.reason === 'Timeout';

/** Runs `work` as `step` of the budget's progress record, so a deadline passing meanwhile names it. */
function tracked<T>(budget: Budget, step: Step, work: () => Promise<T>): Promise<T> {
  return budget.progress ? budget.progress.step({ label: stepName(step), timedOut: () => timeoutDenial(step) }, work) : work();
}
