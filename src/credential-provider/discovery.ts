// Enterprise discovery for a plugin that lives for one pull. The webhook's discovery loop (src/cloud/discovery.ts)
// lists every instance of the discovery regions on a timer; a plugin has neither a timer nor memory between
// pulls. So it looks up, on demand, the one instance an image's default domain names (ListInstance filtered by
// name, as `instance-name` refs of annotated workloads do) with the node's own identity, and keeps the answer in
// the disk cache:
//   - a running instance, with its domains, until `discovery.interval` has passed; it is then re-checked, and kept
//     for up to a day when the re-check fails (discovery failing never takes a registry away, as in the webhook);
//   - no such running instance (another account's registry, a typo, an instance being created) until
//     `discovery.missInterval` has passed: the rate limit of lookups that misses cause, as in the webhook.
import type { DiscoveredInstance } from '../acr/served-registries.js';
import { instanceByName, instanceDomains, SERVING_INSTANCE_STATES } from '../cloud/acr.js';
import type { PersistentStore } from '../cloud/cache.js';
import { denialFor, type Step } from '../cloud/denials.js';
import { CloudError } from '../cloud/errors.js';
import type { CloudCaller, Credentials } from '../cloud/rpc.js';
import type { Budget } from '../pull-secrets/types.js';

/** The instance an Enterprise default domain `<name>-registry[-vpc].<region>.cr.aliyuncs.com` names. */
export interface DiscoveryTarget {
  instanceName: string;
  region: string;
}

/** What the disk cache holds per name: the instance (null: none running) and when to look again. */
export interface StoredDiscovery {
  instance: DiscoveredInstance | null;
  checkAfter: number;
}

export const DISCOVERY_CACHE = 'discovery';
/** How long a found instance keeps serving past its re-check while re-checks fail. */
export const STALE_LIMIT_MS = 24 * 3600_000;

export interface DiscoverOptions {
  caller: CloudCaller;
  /** The CR endpoint of the target's region. */
  endpoint: string;
  /** The node's own credentials (discovery never uses a chain, as in the webhook). */
  credentials: () => Promise<Credentials>;
  /** Whose credentials, for messages ("the node's own identity"). */
  as: string;
  store: PersistentStore | undefined;
  intervalMs: number;
  missIntervalMs: number;
  budget: Budget;
  now: () => number;
  warn: (message: string) => void;
}

/** The running instance of that name in the node's account, or undefined; a cloud failure is a DenialError. */
export async function discoverInstance(target: DiscoveryTarget, o: DiscoverOptions): Promise<DiscoveredInstance | undefined> {
  const key = `${target.region}|${target.instanceName}`;
  const cached = o.store?.read<StoredDiscovery>(DISCOVERY_CACHE, key, o.now());
  if (cached && cached.value.checkAfter > o.now()) return cached.value.instance ?? undefined;
  let found: DiscoveredInstance | undefined;
  try {
    found = await lookUp(target, o);
  } catch (e) {
    const failure = e as LookupFailure;
    const stale = cached?.value.instance;
    if (stale) {
      const code = failure.cause instanceof CloudError ? failure.cause.code : 'error';
      o.warn(`re-checking ACR instance ${target.instanceName} in ${target.region} failed (${code}); serving it as discovered before`);
      return stale;
    }
    throw denialFor(failure.step, failure.cause);
  }
  const checkAfter = o.now() + (found ? o.intervalMs : o.missIntervalMs);
  o.store?.write<StoredDiscovery>(DISCOVERY_CACHE, key, { value: { instance: found ?? null, checkAfter }, usableUntil: found ? checkAfter + STALE_LIMIT_MS : checkAfter });
  return found;
}

/** A lookup call that failed: the step (for the denial) and what it threw (its cloud code, for the warning). Never shown. */
class LookupFailure extends Error {
  constructor(
    readonly step: Step,
    override readonly cause: unknown,
  ) {
    super();
  }
}

async function lookUp(target: DiscoveryTarget, o: DiscoverOptions): Promise<DiscoveredInstance | undefined> {
  const step = (what: string): Step => ({ kind: 'discover', what, instanceName: target.instanceName, region: target.region, as: o.as, endpoint: o.endpoint });
  let creds: Credentials;
  let instance;
  try {
    creds = await o.credentials();
    instance = await instanceByName(o.caller, o.endpoint, creds, target.instanceName, o.budget);
  } catch (e) {
    throw new LookupFailure(step('looking up'), e);
  }
  if (!instance || !SERVING_INSTANCE_STATES.has(instance.status)) return undefined;
  try {
    const domains = await instanceDomains(o.caller, o.endpoint, creds, instance.instanceId, o.budget);
    return { instanceId: instance.instanceId, region: target.region, domains };
  } catch (e) {
    throw new LookupFailure(step('listing the domains of'), e);
  }
}
