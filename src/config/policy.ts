// Who may use which role and instance: the operator's answer to the confused-deputy problem. Pure data and a
// pure check; the namespace labels come from the caller (an informer in a cluster).
import type { Binding, RegistryRef } from '../acr/model.js';
import { globToRegExp } from '../util/glob.js';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface PolicyRule {
  name: string;
  namespaces: { names?: string[]; globs?: string[]; selector?: LabelSelector };
  /** Allowed ARNs; "*" allows any. Absent: only chains without that hop. */
  serviceArns?: string[];
  userArns?: string[];
  /** `region:cri-xxx`, a registry host (default domains, Personal Edition), or "*". */
  instances?: string[];
}

export interface Policy {
  rules: PolicyRule[];
}

export type PolicyVerdict = { allowed: true } | { allowed: false; message: string };

export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    const inValues = has && (e.values ?? []).includes(value!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export function ruleMatchesNamespace(rule: PolicyRule, namespace: string, labels: Record<string, string> | undefined): boolean {
  const ns = rule.namespaces;
  if (ns.names?.includes(namespace)) return true;
  if (ns.globs?.some((g) => globToRegExp(g).test(namespace))) return true;
  // Without labels (namespace not known yet) a selector cannot match: fail closed.
  if (ns.selector && labels) return selectorMatches(ns.selector, labels);
  return false;
}

const allows = (list: string[] | undefined, value: string) => list !== undefined && (list.includes('*') || list.includes(value));

/** The keys under which a registry may be listed in `instances`. */
function registryKeys(r: RegistryRef, defaultRegion: string | undefined): string[] {
  switch (r.kind) {
    case 'instance': {
      // Without any region the bare ID matches no `region:cri-...` entry: fail closed.
      const region = r.region ?? defaultRegion;
      return [region ? `${region}:${r.instanceId}` : r.instanceId];
    }
    case 'instance-name':
      return [`${r.instanceName}-registry.${r.region}.cr.aliyuncs.com`];
    case 'personal':
      return r.domains;
  }
}

function describe(r: RegistryRef, defaultRegion: string | undefined): string {
  return r.kind === 'instance' ? `instance ${registryKeys(r, defaultRegion)[0]}` : `registry ${registryKeys(r, defaultRegion).join(', ')}`;
}

/**
 * Allowed when one rule matching the namespace allows the whole binding. A denial names the rules that apply
 * to this namespace (its own rule set), never what other namespaces may use.
 */
export function checkPolicy(policy: Policy, namespace: string, labels: Record<string, string> | undefined, binding: Binding, defaultRegion: string | undefined): PolicyVerdict {
  const applicable = policy.rules.filter((r) => ruleMatchesNamespace(r, namespace, labels));
  const ruleAllows = (rule: PolicyRule) =>
    (binding.chain.serviceArn === undefined || allows(rule.serviceArns, binding.chain.serviceArn)) &&
    (binding.chain.userArn === undefined || allows(rule.userArns, binding.chain.userArn)) &&
    binding.registries.every((reg) => registryKeys(reg, defaultRegion).every((k) => allows(rule.instances, k)));
  if (applicable.some(ruleAllows)) return { allowed: true };

  const ruleSet = applicable.length > 0 ? `rules ${applicable.map((r) => r.name).join(', ')}` : 'no rule';
  let what: string;
  if (applicable.length === 0) what = `namespace ${namespace} is not covered by any rule of the webhook's policy`;
  else if (binding.chain.serviceArn && !applicable.some((r) => allows(r.serviceArns, binding.chain.serviceArn!))) what = `service role ${binding.chain.serviceArn} is not allowed`;
  else if (binding.chain.userArn && !applicable.some((r) => allows(r.userArns, binding.chain.userArn!))) what = `user role ${binding.chain.userArn} is not allowed`;
  else {
    const reg = binding.registries.find((x) => !applicable.some((r) => registryKeys(x, defaultRegion).every((k) => allows(r.instances, k))));
    what = reg ? `${describe(reg, defaultRegion)} is not allowed` : 'this combination of roles and registries is not allowed by any single rule';
  }
  return { allowed: false, message: `forbidden by the acr-pull-webhook policy for namespace ${namespace} (${ruleSet} apply): ${what}; ask the cluster operator to extend the policy` };
}
