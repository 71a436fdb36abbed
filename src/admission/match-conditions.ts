// The CEL matchCondition that keeps Pods and ImageCaches that need nothing away from the webhook: the API server
// sends an object without ACR annotations only when it may need this webhook, by what planAdmission reads:
//  - an image on a registry served without annotations (configured, looked up, discovered; Personal Edition
//    default hosts by region), or on an Enterprise default domain of a discovery region (an instance discovery
//    has not seen yet: the webhook refreshes and decides);
//  - (Pods) a ServiceAccount with k8s.aliyun.com/acr-* annotations, or one the credential helper's ConfigMap covers.
// The expression is a superset: it may send an object the webhook then leaves alone, never the other way round
// (test/admission/match-conditions.test.ts checks that against planAdmission for random Pods, with a CEL
// evaluator). When the inputs cannot be expressed within the bounds below, there is no condition and every such
// object is sent, as without one. Pure: the leader's loop (src/kube/webhook-conditions.ts) writes it.
import { hasAcrAnnotations } from './service-account-context.js';
import { servedHostNames, type RegistryIndex } from '../acr/served-registries.js';

/** The name of the generated entry in the default webhook's matchConditions. */
export const SEND_CONDITION = 'needs-acr-pull-webhook';

/**
 * The API server evaluates each expression under a cost limit (1,000,000 per expression, 2,500,000 per webhook)
 * and stores the configuration in etcd: the expression stays well below both. Per image the cost is a few string
 * traversals and one regex over the host alone; map look-ups are constant.
 */
export const MAX_EXPRESSION_BYTES = 32 * 1024;

export interface SendInputs {
  registries: RegistryIndex;
  /** ServiceAccounts (`namespace/name`) whose annotations include k8s.aliyun.com/acr-* keys. */
  annotatedServiceAccounts: Iterable<string>;
  /** The credential helper's scope, when its ConfigMap is in force with at least one registry. */
  helper?: { namespaces: 'all' | readonly string[]; serviceAccounts: '*' | readonly string[] };
}

export interface MatchCondition {
  name: string;
  expression: string;
}

/** `namespace/name` of a ServiceAccount whose annotations put its Pods in the webhook's hands. */
export function annotatedAccountKeys(accounts: Iterable<{ namespace: string; name: string; vendorAnnotations?: Record<string, string> }>): string[] {
  const out: string[] = [];
  for (const sa of accounts) if (hasAcrAnnotations(sa.vendorAnnotations)) out.push(`${sa.namespace}/${sa.name}`);
  return out.sort();
}

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const set = (items: Iterable<string>) => `{${[...items].map((i) => `${quote(i)}: true`).join(', ')}}`;
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

/** The host test on one image expression `img`, or undefined when some served host cannot be expressed. */
function hostTest(registries: RegistryIndex, img: string): string | undefined {
  const exact = new Set<string>();
  const patterns: string[] = [];
  for (const h of servedHostNames(registries)) {
    if (h.includes('*')) {
      // crpi-*.<region>.personal.cr.aliyuncs.com: the instance part as registry-hosts.ts reads it.
      patterns.push(h.split('*').map(reEscape).join('[a-z0-9]+'));
      continue;
    }
    // A served name that is not a host by the Docker rule (no dot, no colon, not localhost) would stand for
    // Docker Hub images without a host: not expressed, so no condition at all.
    if (!h.includes('.') && !h.includes(':') && h !== 'localhost') return undefined;
    exact.add(h);
  }
  for (const region of registries.discoveryRegions) {
    // A superset of registry-hosts.ts's Enterprise default domain of that region.
    patterns.push(`[a-z0-9][a-z0-9-]*-registry(-vpc)?\\.${reEscape(region)}\\.cr\\.aliyuncs\\.com`);
  }
  if (exact.size === 0 && patterns.length === 0) return 'false';
  // registryHost(): the part before the first '/', lower-cased, when there is one (a first part without a dot,
  // colon or `localhost` is a Docker Hub path; no served name looks like that, see above).
  const host = `${img}.substring(0, ${img}.indexOf('/')).lowerAscii()`;
  const tests: string[] = [];
  if (exact.size > 0) tests.push(`${host} in ${set([...exact].sort())}`);
  if (patterns.length > 0) tests.push(`${host}.matches(${quote(`^(${patterns.join('|')})$`)})`);
  return `(${img}.indexOf('/') > 0 && (${tests.join(' || ')}))`;
}

/** The ServiceAccount a Pod runs as, in CEL (podServiceAccountName()). */
const POD_ACCOUNT =
  "(has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' ? object.spec.serviceAccountName : " +
  "(has(object.spec.serviceAccount) && object.spec.serviceAccount != '' ? object.spec.serviceAccount : 'default'))";

function accountTests(inputs: SendInputs, byNamespaceOnly: boolean): string[] {
  const tests: string[] = [];
  const annotated = [...inputs.annotatedServiceAccounts];
  if (annotated.length > 0) {
    tests.push(
      byNamespaceOnly
        ? `request.namespace in ${set(new Set(annotated.map((k) => k.slice(0, k.indexOf('/')))))}`
        : `(request.namespace + '/' + ${POD_ACCOUNT}) in ${set(annotated)}`,
    );
  }
  const h = inputs.helper;
  if (h) {
    const parts: string[] = [];
    if (h.namespaces !== 'all') parts.push(`request.namespace in ${set(h.namespaces)}`);
    if (h.serviceAccounts !== '*' && !byNamespaceOnly) parts.push(`${POD_ACCOUNT} in ${set(h.serviceAccounts)}`);
    tests.push(parts.length === 0 ? 'true' : `(${parts.join(' && ')})`);
  }
  return tests;
}

/**
 * The condition, or undefined: send every object without ACR annotations (the inputs are not expressible, or too
 * large even with ServiceAccounts reduced to their namespaces).
 */
export function sendCondition(inputs: SendInputs): MatchCondition | undefined {
  const image = hostTest(inputs.registries, 'c.image');
  const cached = hostTest(inputs.registries, 'i');
  if (image === undefined || cached === undefined) return undefined;
  const containers = (field: string) => `(has(object.spec.${field}) && object.spec.${field}.exists(c, has(c.image) && ${image}))`;
  const podImages = ['initContainers', 'containers', 'ephemeralContainers'].map(containers).join(' || ');
  // An ImageCache without a list of images is refused by the webhook (when it serves registries): sent.
  const imageCache = `(!has(object.spec) || !has(object.spec.images) || object.spec.images.exists(i, ${cached}))`;
  for (const byNamespaceOnly of [false, true]) {
    const pod = [`has(object.spec) && (${podImages})`, ...accountTests(inputs, byNamespaceOnly)].join(' || ');
    const expression = `request.kind.group == '' && request.kind.kind == 'Pod' ? (${pod}) : ${imageCache}`;
    if (Buffer.byteLength(expression) <= MAX_EXPRESSION_BYTES) return { name: SEND_CONDITION, expression };
  }
  return undefined;
}

/** The inputs in the webhook's own terms (for the start-up log and the metric): what the condition lets through. */
export function describeInputs(inputs: SendInputs): { hosts: number; discoveryRegions: number; serviceAccounts: number; helper: boolean } {
  return {
    hosts: servedHostNames(inputs.registries).length,
    discoveryRegions: inputs.registries.discoveryRegions.size,
    serviceAccounts: [...inputs.annotatedServiceAccounts].length,
    helper: Boolean(inputs.helper),
  };
}
