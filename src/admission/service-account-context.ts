// What a Pod's ServiceAccount adds to its admission: the ServiceAccount's `k8s.aliyun.com/acr-*` annotations
// (for Pods that operators and Helm charts create and users cannot annotate) and the ACK credential helper's
// Secrets when its ConfigMap covers the ServiceAccount. Pure: the ServiceAccount comes from the rules' cache.
import type { CredentialHelper } from '../acr/credential-helper.js';
import type { ServiceAccountInfo } from '../pull-secrets/service-account-sync.js';
import { isObject } from '../util/is-object.js';

export const ACR_ANNOTATION_PREFIX = 'k8s.aliyun.com/acr-';

/** ServiceAccounts by namespace and name, from a cache (undefined in standalone mode or when not found). */
export type ServiceAccountLookup = (namespace: string, name: string) => ServiceAccountInfo | undefined;

/** The ServiceAccount a Pod runs as: the ServiceAccount admission plugin has defaulted it before webhooks run. */
export function podServiceAccountName(object: Record<string, unknown>): string {
  const spec = isObject(object.spec) ? object.spec : {};
  if (typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '') return spec.serviceAccountName;
  // The deprecated alias, still honoured by the API server.
  if (typeof spec.serviceAccount === 'string' && spec.serviceAccount !== '') return spec.serviceAccount;
  return 'default';
}

/** True when any key starts with `k8s.aliyun.com/acr-` (the split the webhooks' matchConditions make). */
export function hasAcrAnnotations(annotations: unknown): boolean {
  if (!isObject(annotations)) return false;
  for (const k in annotations) if (k.startsWith(ACR_ANNOTATION_PREFIX)) return true;
  return false;
}

export interface PodServiceAccountContext {
  /** The annotations the Pod is judged by. */
  annotations: unknown;
  /** Set when they came from the ServiceAccount: `ServiceAccount <ns>/<name>`, for messages. */
  from?: string;
  /** The credential helper's Secrets, when it covers the ServiceAccount. */
  helper?: CredentialHelper;
}

/**
 * A Pod's own ACR annotations win, as a whole: when it has any, the ServiceAccount's are not looked at (mixing
 * the keys of two objects would build chains nobody wrote). Otherwise the ServiceAccount's vendor annotations are
 * added to the Pod's, as if the Pod carried them.
 */
export function podServiceAccountContext(
  object: Record<string, unknown>,
  namespace: string,
  annotations: unknown,
  lookup: ServiceAccountLookup | undefined,
  helper: CredentialHelper | undefined,
): PodServiceAccountContext {
  if (!lookup && !helper) return { annotations };
  const name = podServiceAccountName(object);
  const out: PodServiceAccountContext = { annotations };
  if (helper?.covers(namespace, name)) out.helper = helper;
  const sa = lookup?.(namespace, name);
  if (sa?.vendorAnnotations && !hasAcrAnnotations(annotations) && hasAcrAnnotations(sa.vendorAnnotations)) {
    out.annotations = { ...(isObject(annotations) ? annotations : {}), ...sa.vendorAnnotations };
    out.from = `ServiceAccount ${namespace}/${name}`;
  }
  return out;
}
