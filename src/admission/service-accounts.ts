// ServiceAccount admission, pure: CREATE gets the credential helper's pull Secrets in `imagePullSecrets` from the
// start (the helper patched them later, so a Pod created right after a new ServiceAccount could not pull), and
// CREATE or UPDATE with ACR annotations is checked by the Pod rules and policy, so a mistake is refused by the
// `kubectl apply` that made it rather than by every Pod that uses the ServiceAccount later.
import { parseAcrAnnotations, type InstanceRef } from '../acr/annotations.js';
import type { Binding, PullSecretSpec } from '../acr/model.js';
import { checkPolicy } from '../config/policy.js';
import { isObject } from '../util/is-object.js';
import type { Operation } from './json-patch.js';
import type { ServingRules } from './plan.js';
import type { AdmissionRequest, GroupVersionKind } from './review.js';
import { hasAcrAnnotations } from './service-account-context.js';

export type ServiceAccountPlan =
  | { action: 'allow'; reason: 'not-handled' | 'excluded-namespace' | 'nothing-to-do'; warnings?: string[] }
  | { action: 'deny'; code: 400 | 403; message: string }
  | { action: 'mutate'; serviceAccount: { namespace: string; name: string }; specs: PullSecretSpec[]; patch: Operation[] };

export function isServiceAccount(kind: GroupVersionKind): boolean {
  return kind.group === '' && kind.version === 'v1' && kind.kind === 'ServiceAccount';
}

/** kubectl prints warnings verbatim; the API server wants each under 120 characters. */
const warning = (text: string) => (text.length < 120 ? text : `${text.slice(0, 116)}...`);

export function planServiceAccount(req: AdmissionRequest, rules: ServingRules): ServiceAccountPlan {
  if (!isServiceAccount(req.kind) || req.subResource || (req.operation !== 'CREATE' && req.operation !== 'UPDATE')) return { action: 'allow', reason: 'not-handled' };
  const object = req.object;
  if (!isObject(object)) return { action: 'deny', code: 400, message: 'request.object is missing or not an object' };
  const meta = isObject(object.metadata) ? object.metadata : {};
  const namespace = req.namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : undefined);
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : req.name;
  if (!namespace || !name) return { action: 'allow', reason: 'not-handled' };
  const annotations = meta.annotations;
  if (rules.isExcludedNamespace(namespace)) {
    const warnings = hasAcrAnnotations(annotations) ? [warning(`ACR annotations ignored: acr-pull-webhook does not serve namespace ${namespace}`)] : undefined;
    return { action: 'allow', reason: 'excluded-namespace', ...(warnings ? { warnings } : {}) };
  }

  // An UPDATE that leaves the ACR annotations as they were is not judged again: the leader's own patches of
  // imagePullSecrets must never be refused because of annotations written before the webhook was installed.
  const old = isObject(req.oldObject) && isObject(req.oldObject.metadata) ? req.oldObject.metadata.annotations : undefined;
  if (hasVendorAnnotations(annotations) && (req.operation === 'CREATE' || !sameVendorAnnotations(annotations, old))) {
    const verdict = checkAnnotations(annotations, namespace, rules);
    if (verdict) return { ...verdict, message: `ServiceAccount ${namespace}/${name}: metadata.annotations: ${verdict.message}` };
  }

  if (req.operation !== 'CREATE') return { action: 'allow', reason: 'nothing-to-do' };
  const helper = rules.credentialHelper?.();
  if (!helper?.covers(namespace, name)) return { action: 'allow', reason: 'nothing-to-do' };
  const specs = helper.specs(namespace);
  const current = object.imagePullSecrets;
  const present = new Set(Array.isArray(current) ? current.map((r) => (isObject(r) ? r.name : undefined)) : []);
  const missing = specs.filter((s) => !present.has(s.name)).map((s) => ({ name: s.name }));
  const patch: Operation[] =
    missing.length === 0 ? [] : Array.isArray(current) ? missing.map((value) => ({ op: 'add', path: '/imagePullSecrets/-', value })) : [{ op: 'add', path: '/imagePullSecrets', value: missing }];
  return { action: 'mutate', serviceAccount: { namespace, name }, specs, patch };
}

/** The Pod rules on annotations alone: grammar, then policy for the chains and any instances named. */
function checkAnnotations(annotations: unknown, namespace: string, rules: ServingRules): { action: 'deny'; code: 400 | 403; message: string } | undefined {
  const parsed = parseAcrAnnotations(annotations);
  if (parsed.kind === 'invalid') return { action: 'deny', code: 400, message: parsed.message };
  if (parsed.kind !== 'ok' || !rules.policy) return undefined;
  const { chains, instances } = parsed.value;
  const ref = (i: InstanceRef) => ({ kind: 'instance' as const, instanceId: i.instanceId, region: i.region ?? rules.defaultRegion });
  // Without instance IDs the registries come from each Pod's images: only the roles can be judged now.
  const bindings: Binding[] =
    instances.length === 0
      ? chains.map((chain) => ({ chain, registries: [] }))
      : chains.length === 1
        ? [{ chain: chains[0]!, registries: instances.map(ref) }]
        : instances.map((i, n) => ({ chain: chains[n]!, registries: [ref(i)] }));
  for (const b of bindings) {
    const verdict = checkPolicy(rules.policy, namespace, rules.namespaceLabels(namespace), b, rules.defaultRegion);
    if (!verdict.allowed) return { action: 'deny', code: 403, message: verdict.message };
  }
  return undefined;
}

const VENDOR_PREFIX = 'k8s.aliyun.com/';

/** Any `k8s.aliyun.com/` key: the annotation grammar also refuses near misses of the ACR keys there. */
function hasVendorAnnotations(annotations: unknown): boolean {
  if (!isObject(annotations)) return annotations !== undefined && annotations !== null;
  for (const k in annotations) if (k.startsWith(VENDOR_PREFIX)) return true;
  return false;
}

function sameVendorAnnotations(a: unknown, b: unknown): boolean {
  const pick = (x: unknown) =>
    isObject(x)
      ? Object.keys(x)
          .filter((k) => k.startsWith(VENDOR_PREFIX))
          .sort()
          .map((k) => [k, x[k]])
      : [];
  return JSON.stringify(pick(a)) === JSON.stringify(pick(b));
}
