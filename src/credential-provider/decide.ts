// The credential provider's decision as a pure function: one image (and, in workload identity mode, the
// ServiceAccount's annotations and token claims) in; "no credentials from me", a denial, or the bindings
// that can serve the image's registry out. The same annotation grammar, binding rules and policy as the
// webhook's admission path (src/admission/plan.ts).
import { parseAcrAnnotations } from '../acr/annotations.js';
import { annotatedBindings, BindingDenial, servedBindings, servesHost, type BindingRules } from '../acr/bindings.js';
import type { Binding } from '../acr/model.js';
import { parseAcrHost, registryHost, type AcrHost } from '../acr/registry-hosts.js';
import { mayBeUndiscovered } from '../acr/served-registries.js';
import { checkPolicy, ruleMatchesNamespace, type Policy } from '../config/policy.js';
import type { ServiceAccountToken } from './sa-token.js';

export interface ProviderRules extends BindingRules {
  /** Configured Enterprise instances without listed domains: candidates for any host, until their domains are listed. */
  unlisted: Binding[];
  policy?: Policy;
  /** RRSA provider of the cluster; without it a service ARN cannot be assumed with a ServiceAccount token. */
  oidcProviderArn?: string;
  /** Discovery is on and has not run for this request: an unknown Enterprise default domain of a discovery region asks for it. */
  discoverByName: boolean;
}

export type Decision =
  /** An empty answer: the kubelet pulls without credentials from this plugin. `why` goes to stderr. */
  | { kind: 'none'; host: string; why: string }
  | { kind: 'deny'; message: string }
  /**
   * Node identity, an Enterprise default domain of a discovery region that no configured registry serves: look up
   * the instance it names (./discovery.ts), then decide again with what was found.
   */
  | { kind: 'discover'; host: string; instanceName: string; region: string }
  /**
   * Ask the chain of each binding in turn for the registry `host`. `workload` (annotated ServiceAccounts only):
   * the service hop is assumed with the ServiceAccount token. Without it a service ARN (a configured registry's
   * chain) is assumed with the node's identity.
   */
  | { kind: 'fetch'; host: string; bindings: Binding[]; requester: string; workload?: ServiceAccountToken };

export interface ProviderInput {
  image: string;
  annotations?: Record<string, string>;
  /** Claims of the request's ServiceAccount token, when there is one. */
  token?: ServiceAccountToken;
}

export function decide(input: ProviderInput, rules: ProviderRules): Decision {
  const host = registryHost(input.image);
  const parsed = parseAcrAnnotations(input.annotations);
  if (parsed.kind === 'invalid') return { kind: 'deny', message: `ServiceAccount annotations: ${parsed.message}` };

  let bindings: Binding[];
  let workload: ServiceAccountToken | undefined;
  if (parsed.kind === 'none') {
    // Node identity: the operator's registries with their chains, like the webhook's unannotated Pods.
    bindings = servedBindings([input.image], rules).bindings;
    if (bindings.length === 0 && rules.discoverByName && mayBeUndiscovered(rules.registries, host)) {
      const acr = parseAcrHost(host) as Extract<AcrHost, { kind: 'enterprise' }>;
      return { kind: 'discover', host, instanceName: acr.instanceName, region: acr.region };
    }
    if (bindings.length === 0) bindings = rules.unlisted;
    if (bindings.length === 0) return { kind: 'none', host, why: `${host} is not a registry this node is configured to serve and the ServiceAccount has no ACR annotations` };
  } else {
    const token = input.token;
    if (!token) {
      return {
        kind: 'deny',
        message:
          "ServiceAccount annotations came without the ServiceAccount's token: set tokenAttributes.serviceAccountTokenAudience " +
          "in the kubelet's CredentialProviderConfig (feature gate KubeletServiceAccountTokenForCredentialProviders)",
      };
    }
    try {
      bindings = annotatedBindings(parsed.value.chains, parsed.value.instances, [input.image], rules, parsed.value.instancesFrom);
    } catch (e) {
      if (e instanceof BindingDenial) return { kind: 'deny', message: e.message };
      throw e;
    }
    if (rules.policy) {
      // Namespace labels are not known on the node (the plugin has no API access): selector rules never match here.
      for (const b of bindings) {
        const verdict = checkPolicy(rules.policy, token.namespace, undefined, b, rules.defaultRegion);
        if (!verdict.allowed) return { kind: 'deny', message: verdict.message + unseenSelectors(rules.policy, token.namespace) };
      }
    }
    workload = token;
    if (!rules.oidcProviderArn && bindings.some((b) => b.chain.serviceArn)) {
      return {
        kind: 'deny',
        message:
          `k8s.aliyun.com/acr-service-arns is assumed with the ServiceAccount's token (RRSA), but this node's ` +
          'acr-credential-provider configuration sets no credentialProvider.oidcProviderArn: set it to the cluster\'s RRSA OIDC provider',
      };
    }
  }

  // Only what can open this image's registry is fetched: a pull needs one registry's token, not every instance's.
  const candidates: Binding[] = [];
  for (const b of bindings) {
    const registries = b.registries.filter((r) => servesHost(r, host) !== 'no');
    if (registries.length > 0) candidates.push({ chain: b.chain, registries });
  }
  if (candidates.length === 0) {
    return { kind: 'none', host, why: workload ? `none of the instances in the ServiceAccount's annotations serves ${host}` : `${host} is not a registry this node is configured to serve` };
  }
  return { kind: 'fetch', host, bindings: candidates, requester: input.token?.namespace ?? 'node', ...(workload ? { workload } : {}) };
}

/**
 * For a policy denial: the rules that select namespaces by label and were therefore not applied, since the plugin
 * cannot read namespace labels. Names them and the fix; '' when there are none.
 */
function unseenSelectors(policy: Policy, namespace: string): string {
  const unseen = policy.rules.filter((r) => r.namespaces.selector && !ruleMatchesNamespace(r, namespace, undefined)).map((r) => r.name);
  if (unseen.length === 0) return '';
  return (
    `. Rule${unseen.length > 1 ? 's' : ''} ${unseen.join(', ')} select${unseen.length > 1 ? '' : 's'} namespaces by label, which ` +
    `acr-credential-provider cannot see on the node, so ${unseen.length > 1 ? 'they never apply' : 'it never applies'} to pulls through it: ` +
    `to cover namespace ${namespace} here, add it to the rule's namespaces.names or namespaces.globs`
  );
}
