// The provider's rules from the configuration: the same registry index as the webhook's (configured registries,
// their chains, Personal Edition regions, discovery regions). `discovered`: the Enterprise instances discovery found
// for this request (./discovery.ts); until it has run (undefined), an unknown Enterprise default domain of a
// discovery region asks for it (decide's 'discover').
import { registriesById, type BindingRules } from '../acr/bindings.js';
import { buildRegistryIndex, type DiscoveredInstance } from '../acr/served-registries.js';
import type { WebhookConfig } from '../config/config.js';
import type { ProviderRules } from './decide.js';

export function providerRules(config: WebhookConfig, discovered?: readonly DiscoveredInstance[]): ProviderRules {
  const d = config.discovery;
  const registries = buildRegistryIndex({
    configured: config.registries,
    discovered: discovered ?? [],
    // Personal Edition needs no listing: its default hosts name the region.
    ...(d.enabled ? { discovery: { regions: d.regions, personalEdition: d.personalEdition } } : {}),
  });
  const rules: BindingRules = { defaultRegion: config.defaultRegion, registries, registryById: registriesById(registries) };
  return {
    ...rules,
    discoverByName: d.enabled && discovered === undefined,
    // Configured Enterprise instances listed without domains: the plugin lists their domains (cached like tokens).
    unlisted: config.registries.flatMap((r) => (r.edition === 'enterprise' && !r.domains ? [{ chain: r.chain, registries: [{ kind: 'instance' as const, instanceId: r.instanceId, region: r.region }] }] : [])),
    ...(config.policy ? { policy: config.policy } : {}),
    ...(config.credentialProvider.oidcProviderArn ? { oidcProviderArn: config.credentialProvider.oidcProviderArn } : {}),
  };
}
