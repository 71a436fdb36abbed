// The provider's rules from the configuration. Registries served with the node's identity are the
// configured ones plus `discovered`: the seam for registry discovery (the account's instances found through
// ListInstance/ListInstanceEndpoint, issue 13), which passes its results here once it exists.
import { registryIndex, type KnownRegistry } from '../acr/bindings.js';
import type { WebhookConfig } from '../config/config.js';
import type { ProviderRules } from './decide.js';

export function providerRules(config: WebhookConfig, discovered: readonly KnownRegistry[] = []): ProviderRules {
  // Configured entries win over discovered ones for the same domain: they are listed later and overwrite.
  const { registryByDomain, registryById } = registryIndex([...discovered, ...config.registries]);
  return {
    defaultRegion: config.defaultRegion,
    registryByDomain,
    registryById,
    ...(config.policy ? { policy: config.policy } : {}),
    ...(config.credentialProvider.oidcProviderArn ? { oidcProviderArn: config.credentialProvider.oidcProviderArn } : {}),
  };
}
