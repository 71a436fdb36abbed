// Which credential chains open which registries, from parsed annotations, the images and the operator's
// registries. Pure and shared by both front ends: the admission webhook (one Secret per binding) and the
// kubelet credential provider (the binding that serves one image's registry).
import type { InstanceRef } from './annotations.js';
import type { Binding, RegistryRef, RoleChain } from './model.js';
import { parseAcrHost, registryHost } from './registry-hosts.js';
import { quote } from '../util/quote.js';

/** A registry the operator listed (configuration) or that was discovered: served without annotations. */
export interface KnownRegistry {
  instanceId: string;
  region: string;
  domains: string[];
}

/** The lookups the rules need; the webhook's ServingRules and the provider's rules both have them. */
export interface RegistryRules {
  defaultRegion: string;
  registryByDomain: ReadonlyMap<string, KnownRegistry>;
  registryById: ReadonlyMap<string, KnownRegistry>;
}

/** A denial whose message names the annotation and the fix. */
export class BindingDenial extends Error {}

export function registryIndex(registries: readonly KnownRegistry[]): Pick<RegistryRules, 'registryByDomain' | 'registryById'> {
  const registryByDomain = new Map<string, KnownRegistry>();
  for (const r of registries) for (const d of r.domains) registryByDomain.set(d, r);
  return { registryByDomain, registryById: new Map(registries.map((r) => [r.instanceId, r])) };
}

/** Unannotated objects: the operator's registries that the images are on, served with the front end's own identity. */
export function configuredRegistries(images: string[], rules: RegistryRules): RegistryRef[] {
  const seen = new Map<string, RegistryRef>();
  for (const image of images) {
    const r = rules.registryByDomain.get(registryHost(image));
    if (r && !seen.has(r.instanceId)) seen.set(r.instanceId, instanceRef({ instanceId: r.instanceId }, rules));
  }
  return [...seen.values()];
}

export function instanceRef(i: InstanceRef, rules: RegistryRules): RegistryRef {
  const configured = rules.registryById.get(i.instanceId);
  const region = i.region ?? configured?.region ?? rules.defaultRegion;
  // Operator-listed domains only apply when the region agrees: an ID in another region is another instance.
  return configured && configured.region === region
    ? { kind: 'instance', instanceId: i.instanceId, region, domains: configured.domains }
    : { kind: 'instance', instanceId: i.instanceId, region };
}

/** Annotated objects: chains paired with the named instances, or one chain for the images' registries. */
export function annotatedBindings(chains: RoleChain[], instances: InstanceRef[], images: string[], rules: RegistryRules): Binding[] {
  if (instances.length > 0) {
    const refs = instances.map((i) => instanceRef(i, rules));
    if (chains.length === 1) return [{ chain: chains[0]!, registries: refs }];
    return refs.map((r, i) => ({ chain: chains[i]!, registries: [r] }));
  }
  const registries = registriesFromImages(images, rules);
  if (registries.length === 0) {
    throw new BindingDenial(
      'ACR annotations are set but no image is on an ACR default domain (<name>-registry.<region>.cr.aliyuncs.com ' +
        'or a Personal Edition registry) and k8s.aliyun.com/acr-instance-ids names no instance: for custom ' +
        `domains add the instance IDs (first image: ${quote(images[0] ?? '(none)')})`,
    );
  }
  return [{ chain: chains[0]!, registries }];
}

/** Default-domain images name their instance (Enterprise) or region (Personal); configured domains their instance. */
function registriesFromImages(images: string[], rules: RegistryRules): RegistryRef[] {
  const out = new Map<string, RegistryRef>();
  const personal = new Map<string, Set<string>>();
  for (const image of images) {
    const host = registryHost(image);
    const configured = rules.registryByDomain.get(host);
    if (configured) {
      out.set(`i:${configured.instanceId}`, instanceRef({ instanceId: configured.instanceId }, rules));
      continue;
    }
    const acr = parseAcrHost(host);
    if (acr?.kind === 'enterprise') {
      out.set(`n:${acr.region}:${acr.instanceName}`, { kind: 'instance-name', instanceName: acr.instanceName, region: acr.region });
    } else if (acr?.kind === 'personal') {
      const hosts = personal.get(acr.region) ?? new Set<string>();
      hosts.add(host);
      personal.set(acr.region, hosts);
    }
  }
  for (const [region, hosts] of personal) out.set(`p:${region}`, { kind: 'personal', region, domains: [...hosts].sort() });
  return [...out.values()];
}

/**
 * Whether a registry can serve `host`: 'yes', 'no', or 'unknown' for an instance named by ID whose domains
 * are not configured (only its endpoint list, a cloud call, can tell).
 */
export function servesHost(r: RegistryRef, host: string): 'yes' | 'no' | 'unknown' {
  switch (r.kind) {
    case 'personal':
      return r.domains.includes(host) ? 'yes' : 'no';
    case 'instance-name': {
      const acr = parseAcrHost(host);
      return acr?.kind === 'enterprise' && acr.instanceName === r.instanceName && acr.region === r.region ? 'yes' : 'no';
    }
    case 'instance':
      if (r.domains) return r.domains.includes(host) ? 'yes' : 'no';
      return 'unknown';
  }
}
