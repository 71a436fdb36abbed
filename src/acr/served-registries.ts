// Which registries the webhook serves without annotations, by host name: the operator's `registries`, their
// looked-up domains, and (with discovery) the account's own instances and Personal Edition registries.
// Pure data and pure functions; the lookups and the discovery loop that feed them live in src/cloud/.
import type { RegistryConfig } from '../config/config.js';
import type { RegistryRef, RoleChain } from './model.js';
import { parseAcrHost } from './registry-hosts.js';

export interface ServedRegistry {
  edition: 'enterprise' | 'personal';
  /** Enterprise only. */
  instanceId?: string;
  region: string;
  /**
   * Hosts that map to this registry and go into its Secrets. Undefined for a Personal Edition registry served by
   * its default hosts (any of them in its region matches; the Secret lists the ones the images use).
   */
  domains?: string[];
  chain: RoleChain;
  origin: 'configured' | 'discovered';
}

/** An Enterprise instance found by discovery (ListInstance + ListInstanceEndpoint + GetInstanceVpcEndpoint). */
export interface DiscoveredInstance {
  instanceId: string;
  region: string;
  domains: string[];
}

export interface RegistryIndex {
  byDomain: ReadonlyMap<string, ServedRegistry>;
  /** Personal Edition registries served by their default hosts, by region. */
  personalByRegion: ReadonlyMap<string, ServedRegistry>;
  /** `region:instanceId` of every served Enterprise instance. */
  byInstance: ReadonlyMap<string, ServedRegistry>;
  /** Regions whose Enterprise default domains may name an instance discovery has not seen yet. */
  discoveryRegions: ReadonlySet<string>;
  size: number;
}

export interface IndexInput {
  configured: readonly RegistryConfig[];
  /** Domains looked up for configured Enterprise entries that list none, by `region:instanceId`. */
  lookedUp?: ReadonlyMap<string, readonly string[]>;
  discovered?: readonly DiscoveredInstance[];
  /** Present when discovery is on. */
  discovery?: { regions: readonly string[]; personalEdition: boolean };
}

export const instanceKey = (region: string, instanceId: string) => `${region}:${instanceId}`;

/**
 * Builds the index. Precedence on a shared host: configured domains, then looked-up domains of configured
 * entries, then discovered ones; the configuration parser already refuses a host listed twice.
 */
export function buildRegistryIndex(input: IndexInput): RegistryIndex {
  const byDomain = new Map<string, ServedRegistry>();
  const personalByRegion = new Map<string, ServedRegistry>();
  const byInstance = new Map<string, ServedRegistry>();
  const add = (r: ServedRegistry, domains: readonly string[]) => {
    for (const d of domains) if (!byDomain.has(d)) byDomain.set(d, r);
  };
  const pending: [ServedRegistry, readonly string[]][] = [];
  for (const c of input.configured) {
    if (c.edition === 'personal') {
      const r: ServedRegistry = { edition: 'personal', region: c.region, chain: c.chain, origin: 'configured', ...(c.domains ? { domains: c.domains } : {}) };
      if (c.domains) add(r, c.domains);
      else personalByRegion.set(c.region, r);
      continue;
    }
    const key = instanceKey(c.region, c.instanceId);
    const domains = c.domains ?? input.lookedUp?.get(key);
    const r: ServedRegistry = { edition: 'enterprise', instanceId: c.instanceId, region: c.region, chain: c.chain, origin: 'configured', ...(domains ? { domains: [...domains] } : {}) };
    byInstance.set(key, r);
    if (c.domains) add(r, c.domains);
    else if (domains) pending.push([r, domains]);
  }
  for (const [r, domains] of pending) add(r, domains);
  for (const d of input.discovered ?? []) {
    const key = instanceKey(d.region, d.instanceId);
    if (byInstance.has(key)) continue;
    const r: ServedRegistry = { edition: 'enterprise', instanceId: d.instanceId, region: d.region, domains: [...d.domains], chain: {}, origin: 'discovered' };
    byInstance.set(key, r);
    add(r, d.domains);
  }
  if (input.discovery?.personalEdition) {
    for (const region of input.discovery.regions) {
      if (!personalByRegion.has(region)) personalByRegion.set(region, { edition: 'personal', region, chain: {}, origin: 'discovered' });
    }
  }
  return {
    byDomain,
    personalByRegion,
    byInstance,
    discoveryRegions: new Set(input.discovery?.regions ?? []),
    size: byDomain.size + personalByRegion.size,
  };
}

/** The registry serving an image host, if any. */
export function servedRegistryFor(index: RegistryIndex, host: string): ServedRegistry | undefined {
  const exact = index.byDomain.get(host);
  if (exact) return exact;
  if (index.personalByRegion.size === 0) return undefined;
  const acr = parseAcrHost(host);
  return acr?.kind === 'personal' ? index.personalByRegion.get(acr.region) : undefined;
}

/**
 * True for a host that may belong to an instance discovery has not seen yet: an Enterprise default domain in a
 * discovery region. Docker Hub and custom domains never are (they cannot be told apart from foreign hosts).
 */
export function mayBeUndiscovered(index: RegistryIndex, host: string): boolean {
  if (index.discoveryRegions.size === 0) return false;
  const acr = parseAcrHost(host);
  return acr?.kind === 'enterprise' && index.discoveryRegions.has(acr.region);
}

/** What the token source needs for one served registry; `hosts` are the image hosts that matched it. */
export function servedRegistryRef(r: ServedRegistry, hosts: readonly string[]): RegistryRef {
  if (r.edition === 'personal') return { kind: 'personal', region: r.region, domains: r.domains ? [...r.domains] : [...hosts].sort() };
  return { kind: 'instance', instanceId: r.instanceId!, region: r.region, ...(r.domains && r.domains.length > 0 ? { domains: r.domains } : {}) };
}

/**
 * Every host name served without annotations, sorted: exact names, plus `crpi-*.<region>.personal.cr.aliyuncs.com`
 * style globs for Personal Edition regions served by their default hosts. For generating the webhook's
 * matchConditions (issue 18) and for the start-up log.
 */
export function servedHostNames(index: RegistryIndex): string[] {
  const out = new Set(index.byDomain.keys());
  for (const region of index.personalByRegion.keys()) for (const h of personalDefaultHosts(region)) out.add(h);
  return [...out].sort();
}

/** The default Personal Edition hosts of a region; `*` stands for the instance part of crpi-* hosts. */
export function personalDefaultHosts(region: string): string[] {
  const classic = ['registry', 'registry-vpc', 'registry-internal', 'registry-intl', 'registry-intl-vpc', 'registry-intl-internal'].map((p) => `${p}.${region}.aliyuncs.com`);
  return [...classic, `crpi-*.${region}.personal.cr.aliyuncs.com`, `crpi-*-vpc.${region}.personal.cr.aliyuncs.com`];
}
