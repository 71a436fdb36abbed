// A ServiceAccount reduced to what the webhook uses. Pure (no client-node): the offline `review` command uses it too.
import type { ServiceAccountInfo } from '../pull-secrets/service-account-sync.js';
import { ownString } from '../util/own-string.js';

const VENDOR_PREFIX = 'k8s.aliyun.com/';

/** A ServiceAccount from a list (client-node model) or a watch event (raw JSON), reduced to what is used. */
export function toServiceAccountInfo(raw: unknown): ServiceAccountInfo | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as { metadata?: Record<string, unknown>; imagePullSecrets?: unknown };
  const m = r.metadata;
  if (!m || typeof m.name !== 'string' || typeof m.namespace !== 'string') return undefined;
  // Flat copies: a slice of a large watch event would keep the whole event alive.
  const out: ServiceAccountInfo = { namespace: ownString(m.namespace), name: ownString(m.name) };
  if (typeof m.resourceVersion === 'string') out.resourceVersion = ownString(m.resourceVersion);
  if (typeof m.uid === 'string') out.uid = ownString(m.uid);
  if (m.annotations && typeof m.annotations === 'object') {
    for (const [k, v] of Object.entries(m.annotations as Record<string, unknown>)) {
      if (!k.startsWith(VENDOR_PREFIX) || typeof v !== 'string') continue;
      (out.vendorAnnotations ??= {})[ownString(k)] = ownString(v);
    }
  }
  if (Array.isArray(r.imagePullSecrets)) {
    out.imagePullSecrets = r.imagePullSecrets.map((ref) => (ref && typeof ref === 'object' && typeof (ref as { name?: unknown }).name === 'string' ? ownString((ref as { name: string }).name) : ''));
  }
  return out;
}
