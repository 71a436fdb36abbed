// The provider's rules from the configuration: the same registry index as the webhook's (configured registries,
// their chains, Personal Edition regions). `discovered` is the seam for Enterprise discovery (src/cloud/discovery.ts
// runs as a loop in the webhook; a plugin started per pull would keep its results in the disk cache): until the
// provider runs it, a discovery region's Enterprise default domains are served only when configured or annotated.
import { registriesById, type BindingRules } from '../acr/bindings.js';
import { buildRegistryIndex, type DiscoveredInstance } from '../acr/served-registries.js';
import type { WebhookConfig } from '../config/config.js';
import type { ProviderRules } from './decide.js';

export function providerRules(config: WebhookConfig, discovered: readonly DiscoveredInstance[] = []): ProviderRules {
  const d = config.discovery;
  const registries = buildRegistryIndex({
    configured: config.registries,
    discovered,
    // Personal Edition needs no listing: its default hosts name the region.
    ...(d.enabled && d.personalEdition ? { discovery: { regions: d.regions, personalEdition: true } } : {}),
  });
  const rules: BindingRules = { defaultRegion: config.defaultRegion, registries, registryById: registriesById(registries) };
  return {
    ...rules,
    // Configured Enterprise instances listed without domains: the plugin lists their domains (cached like tokens).
    unlisted: config.registries.flatMap((r) => (r.edition === 'enterprise' && !r.domains ? [{ chain: r.chain, registries: [{ kind: 'instance' as const, instanceId: r.instanceId, region: r.region }] }] : [])),
    ...(config.policy ? { policy: config.policy } : {}),
    ...(config.credentialProvider.oidcProviderArn ? { oidcProviderArn: config.credentialProvider.oidcProviderArn } : {}),
  };
}
