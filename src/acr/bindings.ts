// Which credential chains open which registries, from parsed annotations, the images and the registries served
// without annotations. Pure, and shared by both front ends: the admission webhook (one Secret per binding) and the
// kubelet credential provider (the binding that serves one image's registry).
import type { InstanceRef } from './annotations.js';
import type { Binding, RegistryRef, RoleChain } from './model.js';
import { parseAcrHost, registryHost } from './registry-hosts.js';
import { instanceKey, mayBeUndiscovered, servedRegistryFor, servedRegistryRef, type RegistryIndex, type ServedRegistry } from './served-registries.js';
import { quote } from '../util/quote.js';

/** The lookups the rules need; the webhook's ServingRules and the credential provider's rules both have them. */
export interface BindingRules {
  /** Region of unprefixed instance IDs; undefined when neither the configuration nor ALIBABA_CLOUD_REGION_ID gives one. */
  defaultRegion?: string;
  /** Registries served without annotations: configured, looked up and discovered. */
  registries: RegistryIndex;
  /** Served Enterprise instances by ID alone, for annotations that name an instance without its region. */
  registryById: ReadonlyMap<string, ServedRegistry>;
}

/** A denial whose message names the annotation and the fix. */
export class BindingDenial extends Error {
  constructor(
    message: string,
    /** Annotations without instance IDs, and no image on an ACR domain to name the registry. */
    readonly noAcrImage = false,
  ) {
    super(message);
  }
}

export function registriesById(registries: RegistryIndex): Map<string, ServedRegistry> {
  const byId = new Map<string, ServedRegistry>();
  for (const r of registries.byInstance.values()) if (!byId.has(r.instanceId!)) byId.set(r.instanceId!, r);
  return byId;
}

/**
 * Unannotated images on served registries: one binding per credential chain (most often the front end's own), with
 * discovered registries in bindings of their own so that failing to serve them never costs a configured one.
 */
export function servedBindings(images: string[], rules: BindingRules): { bindings: Binding[]; discovered: Set<Binding>; undiscovered: boolean } {
  const byRegistry = new Map<ServedRegistry, Set<string>>();
  let undiscovered = false;
  for (const image of images) {
    const host = registryHost(image);
    const r = servedRegistryFor(rules.registries, host);
    if (!r) {
      undiscovered ||= mayBeUndiscovered(rules.registries, host);
      continue;
    }
    const hosts = byRegistry.get(r) ?? new Set<string>();
    hosts.add(host);
    byRegistry.set(r, hosts);
  }
  const byChain = new Map<string, Binding>();
  const discovered = new Set<Binding>();
  for (const [r, hosts] of byRegistry) {
    const key = `${r.origin}|${r.chain.serviceArn ?? ''}|${r.chain.userArn ?? ''}`;
    let b = byChain.get(key);
    if (!b) {
      byChain.set(key, (b = { chain: r.chain, registries: [] }));
      if (r.origin === 'discovered') discovered.add(b);
    }
    b.registries.push(servedRegistryRef(r, [...hosts]));
  }
  return { bindings: [...byChain.values()], discovered, undiscovered };
}

/** `key` names the annotation the ID came from (served registries always have a region). */
function instanceRef(i: InstanceRef, rules: BindingRules, key: string): RegistryRef {
  const region = i.region ?? rules.registryById.get(i.instanceId)?.region ?? rules.defaultRegion;
  if (region === undefined) {
    // No built-in region: a guess would look the instance up in the wrong place.
    throw new BindingDenial(
      `${key}: ${quote(i.instanceId)} has no region prefix and acr-pull-webhook has no default region: write it as ` +
        `<region>:${i.instanceId} (e.g. cn-beijing:${i.instanceId}), or ask the cluster operator to set ` +
        'ALIBABA_CLOUD_REGION_ID or defaultRegion',
    );
  }
  // Served domains only apply when the region agrees: an ID in another region is another instance.
  const served = rules.registries.byInstance.get(instanceKey(region, i.instanceId));
  return served?.domains && served.domains.length > 0
    ? { kind: 'instance', instanceId: i.instanceId, region, domains: served.domains }
    : { kind: 'instance', instanceId: i.instanceId, region };
}

/** Annotated objects: chains paired with the named instances, or one chain for the images' registries. */
export function annotatedBindings(chains: RoleChain[], instances: InstanceRef[], images: string[], rules: BindingRules, instancesFrom = 'k8s.aliyun.com/acr-instance-ids'): Binding[] {
  if (instances.length > 0) {
    const refs = instances.map((i) => instanceRef(i, rules, instancesFrom));
    if (chains.length === 1) return [{ chain: chains[0]!, registries: refs }];
    return refs.map((r, i) => ({ chain: chains[i]!, registries: [r] }));
  }
  const registries = registriesFromImages(images, rules);
  if (registries.length === 0) {
    throw new BindingDenial(
      'ACR annotations are set but no image is on an ACR default domain (<name>-registry.<region>.cr.aliyuncs.com ' +
        'or a Personal Edition registry) and k8s.aliyun.com/acr-instance-ids names no instance: for custom ' +
        `domains add the instance IDs (first image: ${quote(images[0] ?? '(none)')})`,
      true,
    );
  }
  return [{ chain: chains[0]!, registries }];
}

/** Default-domain images name their instance (Enterprise) or region (Personal); configured domains their instance. */
function registriesFromImages(images: string[], rules: BindingRules): RegistryRef[] {
  const out = new Map<string, RegistryRef>();
  const personal = new Map<string, Set<string>>();
  for (const image of images) {
    const host = registryHost(image);
    const served = rules.registries.byDomain.get(host);
    if (served?.edition === 'enterprise') {
      out.set(`i:${served.region}:${served.instanceId}`, instanceRef({ instanceId: served.instanceId!, region: served.region }, rules, 'registries'));
      continue;
    }
    if (served?.edition === 'personal' && served.domains) {
      // A Personal Edition registry listed with its own domains: the Secret carries all of them.
      const hosts = personal.get(served.region) ?? new Set<string>();
      for (const d of served.domains) hosts.add(d);
      personal.set(served.region, hosts);
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
 * are not known (only its endpoint list, a cloud call, can tell).
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
