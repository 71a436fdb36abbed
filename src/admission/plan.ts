// The admission decision as a pure function: request and rules in, "allow unchanged", "deny" or
// "mutate with these Secrets and this patch" out. No I/O, so every case is a fixture away from a test.
import { parseAcrAnnotations } from '../acr/annotations.js';
import { annotatedBindings, BindingDenial, registriesById, servedBindings } from '../acr/bindings.js';
import type { Binding, PullSecretSpec } from '../acr/model.js';
import { secretNameFor } from '../acr/secret-name.js';
import type { CredentialHelper } from '../acr/credential-helper.js';
import { buildRegistryIndex, type RegistryIndex, type ServedRegistry } from '../acr/served-registries.js';
import type { WebhookConfig } from '../config/config.js';
import { checkPolicy, type Policy } from '../config/policy.js';
import { globToRegExp } from '../util/glob.js';
import type { Operation } from './json-patch.js';
import { kindHandler, ObjectShapeError, type KindHandler } from './kinds.js';
import type { AdmissionRequest } from './review.js';
import { podServiceAccountContext, type ServiceAccountLookup } from './service-account-context.js';
import { isObject } from '../util/is-object.js';
import { ownString } from '../util/own-string.js';

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const ALWAYS_EXCLUDED = ['kube-system'];
/** Namespaces carrying this label are never served, whatever their Pods' annotations say. */
export const OPT_OUT_LABEL = 'acr-pull-webhook.k8s.aliyun.com/ignore';

/** Labels of a namespace, from a cache; undefined when unknown (standalone mode, or not yet seen). */
export type NamespaceLabels = (namespace: string) => Record<string, string> | undefined;

/** The configuration in the shape the hot path wants: lookups, not scans. */
export interface ServingRules {
  ownNamespace: string;
  /** Region of unprefixed instance IDs; undefined when neither the file nor ALIBABA_CLOUD_REGION_ID gives one. */
  defaultRegion?: string;
  imageCacheSecretNamespace: string;
  isExcludedNamespace(namespace: string): boolean;
  /** Registries served without annotations: configured, looked up and discovered. */
  registries: RegistryIndex;
  /** Served Enterprise instances by ID alone, for annotations that name an instance without its region. */
  registryById: ReadonlyMap<string, ServedRegistry>;
  policy?: Policy;
  namespaceLabels: NamespaceLabels;
  /** ServiceAccounts from the cluster's cache (cluster mode): their ACR annotations stand in for their Pods'. */
  serviceAccount?: ServiceAccountLookup;
  /** The ACK credential helper's configuration in force (its ConfigMap exists and is valid). */
  credentialHelper?: () => CredentialHelper | undefined;
  /** Decisions already derived from identical annotations and images, under these rules (bounded). */
  memo: Map<string, Derived>;
}

export interface ClusterLookups {
  serviceAccount?: ServiceAccountLookup;
  credentialHelper?: () => CredentialHelper | undefined;
}

export function servingRules(
  config: WebhookConfig,
  ownNamespace: string,
  namespaceLabels: NamespaceLabels = () => undefined,
  registries: RegistryIndex = buildRegistryIndex({ configured: config.registries }),
  lookups: ClusterLookups = {},
): ServingRules {
  const exact = new Set([ownNamespace, ...ALWAYS_EXCLUDED]);
  const globs = config.namespaces.exclude.map(globToRegExp);
  const include = config.namespaces.include.map(globToRegExp);
  const registryById = registriesById(registries);
  return {
    ownNamespace,
    ...(config.defaultRegion === undefined ? {} : { defaultRegion: config.defaultRegion }),
    imageCacheSecretNamespace: config.imageCacheSecretNamespace,
    isExcludedNamespace: (ns) =>
      exact.has(ns) ||
      globs.some((g) => g.test(ns)) ||
      (include.length > 0 && !include.some((g) => g.test(ns))) ||
      namespaceLabels(ns)?.[OPT_OUT_LABEL] === 'true',
    registries,
    registryById,
    policy: config.policy,
    namespaceLabels,
    ...lookups,
    memo: new Map(),
  };
}

export type AllowReason = 'unhandled-kind' | 'not-create' | 'excluded-namespace' | 'mirror-pod' | 'no-annotation';

export type Plan =
  | {
      action: 'allow';
      reason: AllowReason;
      warnings?: string[];
      /** An unannotated image is on an Enterprise default domain of a discovery region that is not known yet. */
      undiscovered?: boolean;
    }
  | { action: 'deny'; code: 400 | 403; message: string }
  | {
      action: 'mutate';
      kind: KindHandler['name'];
      /**
       * Annotated object (or its ServiceAccount), images on registries served without annotations (configured or
       * discovered), or the ACK credential helper's ConfigMap covering the Pod's ServiceAccount.
       */
      source: 'annotations' | 'service-account' | 'served-registry' | 'credential-helper';
      specs: PullSecretSpec[];
      /**
       * Names of the specs only the credential helper asked for: they never block the object (the helper never
       * did), a failure to prepare them is a warning, an Event and a metric.
       */
      bestEffort?: ReadonlySet<string>;
      patch: Operation[];
      /**
       * Secrets for registries found by discovery: when one cannot be obtained the object is admitted without it
       * (with a warning), as ECI would create the Pod and let the pull decide. Names of `specs`.
       */
      optional?: ReadonlySet<string>;
      undiscovered?: boolean;
    };


export function planAdmission(req: AdmissionRequest, rules: ServingRules): Plan {
  const handler = kindHandler(req.kind);
  if (!handler || req.subResource) return { action: 'allow', reason: 'unhandled-kind' };
  if (req.operation !== 'CREATE') return { action: 'allow', reason: 'not-create' };
  const object = req.object;
  if (!isObject(object)) return { action: 'deny', code: 400, message: 'request.object is missing or not an object' };
  const metadata = isObject(object.metadata) ? object.metadata : {};
  let annotations = metadata.annotations;
  let fromServiceAccount: string | undefined;
  let helper: CredentialHelper | undefined;

  let secretNamespace: string;
  if (handler.name === 'Pod') {
    // Controller-made Pods have only generateName and no metadata.namespace: request.namespace is the truth.
    const ns = req.namespace ?? (typeof metadata.namespace === 'string' ? metadata.namespace : undefined);
    if (!ns) return { action: 'deny', code: 400, message: 'request.namespace is missing for a Pod' };
    if (isObject(annotations) && MIRROR_ANNOTATION in annotations) return { action: 'allow', reason: 'mirror-pod' };
    if (rules.isExcludedNamespace(ns)) {
      const acr = parseAcrAnnotations(annotations).kind !== 'none';
      return {
        action: 'allow',
        reason: 'excluded-namespace',
        warnings: acr ? [`ACR annotations ignored: acr-pull-webhook does not serve namespace ${ns}`.slice(0, 119)] : undefined,
      };
    }
    secretNamespace = ns;
    const ctx = podServiceAccountContext(object, ns, annotations, rules.serviceAccount, rules.credentialHelper?.());
    annotations = ctx.annotations;
    fromServiceAccount = ctx.from;
    helper = ctx.helper;
  } else {
    secretNamespace = rules.imageCacheSecretNamespace;
  }

  const vendor = vendorAnnotations(annotations);
  // The common case, kept cheap: nothing annotated, no registry served and no credential helper for the
  // ServiceAccount means nothing to look at.
  if (vendor === '' && rules.registries.size === 0 && rules.registries.discoveryRegions.size === 0 && !helper) return { action: 'allow', reason: 'no-annotation' };
  // Denials caused by a ServiceAccount's annotations say where to fix them.
  const where = (message: string) => (fromServiceAccount ? `${fromServiceAccount} (the Pod's ServiceAccount): ${message}` : message);

  try {
    const images = handler.images(object);
    // Pods of one Deployment repeat the same annotations and images: the parse and the bindings are computed
    // once per distinct input (and per configuration: the memo lives in the rules).
    const key = vendor === undefined ? undefined : memoKey(handler.name, secretNamespace, vendor, images);
    let memo = key === undefined ? undefined : rules.memo.get(key);
    if (!memo) {
      memo = derive(annotations, images, secretNamespace, rules);
      if (key !== undefined) {
        if (rules.memo.size >= MEMO_ENTRIES) rules.memo.delete(rules.memo.keys().next().value as string);
        rules.memo.set(ownString(key), memo);
      }
    }
    // A ServiceAccount's annotations reach every Pod that uses it, also Pods with only public images: those
    // are left alone rather than refused.
    if (memo.kind === 'deny' && !(fromServiceAccount && memo.noAcrImage)) return { action: 'deny', code: 400, message: where(memo.message) };
    if (memo.kind !== 'bindings') {
      const undiscovered = memo.kind === 'none' && memo.undiscovered ? ({ undiscovered: true } as const) : {};
      return helper ? { ...helperOnly(object, handler, secretNamespace, helper), ...undiscovered } : { action: 'allow', reason: 'no-annotation', ...undiscovered };
    }
    const { bindings, annotated } = memo;
    // The operator's own registries need no permission; what annotations ask for does, when a policy is set.
    // Cluster-scoped ImageCaches are judged as their Secrets' namespace. Not memoized: labels and policy change.
    if (rules.policy && annotated) {
      for (const b of bindings) {
        const verdict = checkPolicy(rules.policy, secretNamespace, rules.namespaceLabels(secretNamespace), b, rules.defaultRegion);
        if (!verdict.allowed) return { action: 'deny', code: 403, message: where(verdict.message) };
      }
    }
    const source = !annotated ? 'served-registry' : fromServiceAccount ? 'service-account' : 'annotations';
    let specs = memo.specs;
    let bestEffort: Set<string> | undefined;
    if (helper) {
      const required = new Set(specs.map((s) => s.name));
      const extra = helper.specs(secretNamespace).filter((s) => !required.has(s.name));
      if (extra.length > 0) {
        specs = [...specs, ...extra];
        bestEffort = new Set(extra.map((s) => s.name));
      }
    }
    // Without imagePullSecrets of its own, the patch depends on the Secrets alone: built (and encoded) once per
    // memo entry. The shared array is read-only.
    const own = isObject(object.spec) ? object.spec.imagePullSecrets : undefined;
    const patch = own === undefined && !bestEffort ? (memo.patchWhenNone ??= handler.patch(object, specs)) : handler.patch(object, specs);
    return {
      action: 'mutate',
      kind: handler.name,
      source,
      specs,
      patch,
      ...(memo.optional ? { optional: memo.optional } : {}),
      ...(bestEffort ? { bestEffort } : {}),
      ...(memo.undiscovered ? { undiscovered: true } : {}),
    };
  } catch (e) {
    if (e instanceof ObjectShapeError) return { action: 'deny', code: 400, message: `${handler.name} ${e.message}` };
    throw e;
  }
}

const VENDOR_PREFIX = 'k8s.aliyun.com/';
const MEMO_ENTRIES = 2000;

/**
 * A Pod of a ServiceAccount the credential helper covers, with nothing else to serve: the helper's Secrets. A Pod
 * without imagePullSecrets of its own already has them (the ServiceAccount admission plugin copied the
 * ServiceAccount's), so the patch is empty; a Pod with its own list gets them appended, which the helper could
 * not do.
 */
function helperOnly(object: Record<string, unknown>, handler: KindHandler, namespace: string, helper: CredentialHelper): Extract<Plan, { action: 'mutate' }> {
  const specs = helper.specs(namespace);
  return { action: 'mutate', kind: handler.name, source: 'credential-helper', specs, bestEffort: new Set(specs.map((s) => s.name)), patch: handler.patch(object, specs) };
}

/** What the annotations and images decide, before policy and patch. */
type Derived =
  | { kind: 'none'; undiscovered?: boolean }
  /** `noAcrImage`: annotations without instance IDs, and no image on an ACR domain to name the registry. */
  | { kind: 'deny'; message: string; noAcrImage?: boolean }
  | {
      kind: 'bindings';
      bindings: Binding[];
      specs: PullSecretSpec[];
      annotated: boolean;
      patchWhenNone?: Operation[];
      optional?: ReadonlySet<string>;
      undiscovered?: boolean;
    };

/** Length-prefixed, so distinct inputs never share a key whatever characters they hold. */
export function memoKey(kind: string, namespace: string, vendor: string, images: string[]): string {
  let key = `${kind} ${namespace.length}:${namespace}${vendor.length}:${vendor}${images.length}#`;
  for (const image of images) key += `${image.length}:${image}`;
  return key;
}

/**
 * The vendor annotations as one string (the memo key): '' when there are none, undefined when the input
 * cannot be keyed safely (annotations not an object of strings), in which case nothing is memoized.
 */
function vendorAnnotations(annotations: unknown): string | undefined {
  if (annotations === undefined || annotations === null) return '';
  if (!isObject(annotations)) return undefined;
  let out = '';
  for (const k in annotations) {
    if (!k.startsWith(VENDOR_PREFIX)) continue;
    const v = annotations[k];
    if (typeof v !== 'string') return undefined;
    // Length-prefixed: no annotation value can imitate a separator.
    out += `${k.length}:${k}${v.length}:${v}`;
  }
  return out;
}

function derive(annotations: unknown, images: string[], secretNamespace: string, rules: ServingRules): Derived {
  const parsed = parseAcrAnnotations(annotations);
  if (parsed.kind === 'invalid') return { kind: 'deny', message: parsed.message };
  try {
    if (parsed.kind === 'none') {
      const served = servedBindings(images, rules);
      if (served.bindings.length === 0) return served.undiscovered ? { kind: 'none', undiscovered: true } : { kind: 'none' };
      const specs = uniqueSpecs(served.bindings, secretNamespace);
      const optional = new Set(specs.filter((s) => served.discovered.has(s.binding)).map((s) => s.name));
      return {
        kind: 'bindings',
        bindings: served.bindings,
        specs,
        annotated: false,
        ...(optional.size > 0 ? { optional } : {}),
        ...(served.undiscovered ? { undiscovered: true } : {}),
      };
    }
    const bindings = annotatedBindings(parsed.value.chains, parsed.value.instances, images, rules, parsed.value.instancesFrom);
    return { kind: 'bindings', bindings, specs: uniqueSpecs(bindings, secretNamespace), annotated: parsed.kind === 'ok' };
  } catch (e) {
    if (e instanceof BindingDenial) return { kind: 'deny', message: e.message, ...(e.noAcrImage ? { noAcrImage: true } : {}) };
    throw e;
  }
}

function uniqueSpecs(bindings: Binding[], namespace: string): PullSecretSpec[] {
  const byName = new Map<string, PullSecretSpec>();
  for (const binding of bindings) {
    const name = secretNameFor(binding);
    if (!byName.has(name)) byName.set(name, { namespace, name, requester: namespace, binding });
  }
  return [...byName.values()];
}
