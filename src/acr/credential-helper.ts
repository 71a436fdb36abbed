// The ACK credential helper's model as pure rules: which ServiceAccounts of which namespaces get pull Secrets,
// and which Secrets (one per credential chain of `acr-registry-info`, per namespace). Read from its ConfigMap
// (src/config/acr-configuration.ts); used by the Pod and ServiceAccount admissions and by the leader's loop.
import type { RegistryConfig } from '../config/config.js';
import type { HelperCoverage } from '../pull-secrets/service-account-sync.js';
import type { Binding, PullSecretSpec, RegistryRef } from './model.js';
import { secretNameFor } from './secret-name.js';
import { personalDefaultHosts } from './served-registries.js';

export interface HelperScope {
  /** `service-account`: "*" for every ServiceAccount, else names (default `default`). */
  serviceAccounts: '*' | readonly string[];
  /** `watch-namespace`: "all" for every namespace, else names (default `default`). */
  namespaces: 'all' | readonly string[];
}

export interface CredentialHelper extends HelperCoverage {
  /** Which ServiceAccounts of which namespaces it covers (besides the webhook's own exclusions). */
  scope: HelperScope;
  /** `expiring-threshold`. */
  expiringThresholdMs: number;
  bindings: readonly Binding[];
}

/**
 * `isExcluded` is the webhook's own namespace rule (kube-system, its own namespace, the configuration's
 * exclusions, the opt-out label): those are never served, whatever the helper's configuration says.
 */
export function credentialHelper(scope: HelperScope, bindings: readonly Binding[], expiringThresholdMs: number, isExcluded: (namespace: string) => boolean): CredentialHelper {
  const accounts = scope.serviceAccounts === '*' ? undefined : new Set(scope.serviceAccounts);
  const namespaces = scope.namespaces === 'all' ? undefined : new Set(scope.namespaces);
  const names = bindings.map(secretNameFor);
  const specsByNamespace = new Map<string, PullSecretSpec[]>();
  return {
    scope,
    expiringThresholdMs,
    bindings,
    covers: (namespace, name) =>
      bindings.length > 0 && (!accounts || accounts.has(name)) && (!namespaces || namespaces.has(namespace)) && !isExcluded(namespace),
    specs(namespace) {
      let specs = specsByNamespace.get(namespace);
      if (!specs) {
        specs = bindings.map((binding, i) => ({ namespace, name: names[i]!, requester: namespace, binding }));
        // Bounded by the namespaces of the cluster; rebuilt with the rules when the ConfigMap changes.
        if (specsByNamespace.size >= 20_000) specsByNamespace.clear();
        specsByNamespace.set(namespace, specs);
      }
      return specs;
    },
  };
}

/**
 * One binding per credential chain (most often just the webhook's own identity, or one per `assumeRoleARN`),
 * each opening its registries: the helper's one Secret per namespace, split where the chains differ.
 */
export function helperBindings(registries: readonly RegistryConfig[]): Binding[] {
  const byChain = new Map<string, Binding>();
  for (const r of registries) {
    const key = `${r.chain.serviceArn ?? ''}|${r.chain.userArn ?? ''}`;
    let b = byChain.get(key);
    if (!b) byChain.set(key, (b = { chain: r.chain, registries: [] }));
    const ref: RegistryRef =
      r.edition === 'personal'
        ? // The region's classic hosts: crpi-* instance hosts cannot be listed ahead of the images.
          { kind: 'personal', region: r.region, domains: r.domains ?? personalDefaultHosts(r.region).filter((h) => !h.includes('*')) }
        : { kind: 'instance', instanceId: r.instanceId, region: r.region, ...(r.domains ? { domains: r.domains } : {}) };
    b.registries.push(ref);
  }
  return [...byChain.values()];
}
