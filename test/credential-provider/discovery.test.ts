// Enterprise discovery by instance name (src/credential-provider/discovery.ts), called directly against the emulator
// with an in-memory store: what it looks up, what it keeps and for how long, what it serves when a re-check fails,
// and the denials. run.test.ts covers the same path through run() with the disk cache.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DiscoveredInstance } from '../../src/acr/served-registries.js';
import type { Expiring, PersistentStore } from '../../src/cloud/cache.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { discoverInstance, type DiscoverOptions, type StoredDiscovery } from '../../src/credential-provider/discovery.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { startEmulator, type Emulator } from '../../emulator/index.js';
import { DISCOVERING_NODE_KEY, NODE_KEY, providerWorld, STARTING_INSTANCE, type ProviderWorld } from './world.js';

const T = 1_800_000_000_000;
const MINUTE = 60_000;
const DAY = 24 * 3600_000;
const HZ_DOMAINS = ['demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com', 'demo-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'];

/** A PersistentStore in memory that serves an entry until its usableUntil (as the disk cache does) and records writes. */
class MemoryStore implements PersistentStore {
  readonly entries = new Map<string, Expiring<unknown>>();
  readonly writes: Array<{ cache: string; key: string; entry: Expiring<unknown> }> = [];
  read<V>(cache: string, key: string, now: number): Expiring<V> | undefined {
    const e = this.entries.get(`${cache}/${key}`);
    return e && e.usableUntil > now ? (e as Expiring<V>) : undefined;
  }
  write<V>(cache: string, key: string, entry: Expiring<V>): void {
    this.writes.push({ cache, key, entry });
    this.entries.set(`${cache}/${key}`, entry);
  }
}

let w: ProviderWorld;
let emu: Emulator;
let caller: CloudCaller;
let store: MemoryStore;
let warnings: string[];
let now: number;
let hz: DiscoveredInstance;

beforeAll(async () => {
  w = providerWorld();
  emu = await startEmulator({ world: w.world });
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.reset();
  caller = new CloudCaller({ maxAttempts: 1 });
  store = new MemoryStore();
  warnings = [];
  now = T;
  hz = { instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: HZ_DOMAINS };
});
afterEach(() => caller.close());

function options(key = DISCOVERING_NODE_KEY, over: Partial<DiscoverOptions> = {}): DiscoverOptions {
  return {
    caller,
    endpoint: emu.crEndpoint('cn-hangzhou'),
    credentials: async () => ({ accessKeyId: key.id, accessKeySecret: key.secret }),
    as: "the node's own identity",
    store,
    intervalMs: 10 * MINUTE,
    missIntervalMs: 30_000,
    budget: { deadline: Date.now() + 20_000 },
    now: () => now,
    warn: (m) => warnings.push(m),
    ...over,
  };
}

const target = (instanceName: string) => ({ instanceName, region: 'cn-hangzhou' });
const lookups = () => emu.calls.count({ action: 'ListInstance' });
/** The denial's message with its request ID (random) replaced. */
async function denial(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DenialError);
  return (e as Error).message.replace(/\(request ID [0-9A-F-]{36}\)/, '(request ID <id>)');
}

describe('discoverInstance', () => {
  it('finds a running instance by name with its domains, and stores it for discovery.interval, usable a day longer', async () => {
    expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    expect(['ListInstance', 'ListInstanceEndpoint', 'GetInstanceVpcEndpoint'].map((action) => emu.calls.count({ action, caller: DISCOVERING_NODE_KEY.id }))).toEqual([1, 1, 1]);
    expect(store.writes).toEqual([{ cache: 'discovery', key: 'cn-hangzhou|demo', entry: { value: { instance: hz, checkAfter: T + 10 * MINUTE }, usableUntil: T + 10 * MINUTE + DAY } }]);
    expect(warnings).toEqual([]);
  });

  it('remembers that no running instance has the name (none at all, or one being created) for discovery.missInterval only', async () => {
    expect(await discoverInstance(target('nosuch'), options())).toBeUndefined();
    expect(await discoverInstance(target(STARTING_INSTANCE.name), options())).toBeUndefined();
    expect(store.writes).toEqual([
      { cache: 'discovery', key: 'cn-hangzhou|nosuch', entry: { value: { instance: null, checkAfter: T + 30_000 }, usableUntil: T + 30_000 } },
      { cache: 'discovery', key: `cn-hangzhou|${STARTING_INSTANCE.name}`, entry: { value: { instance: null, checkAfter: T + 30_000 }, usableUntil: T + 30_000 } },
    ]);
    // A name with no running instance: its domains are never listed.
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(0);
    expect(lookups()).toBe(2);
  });

  it('answers from the store until checkAfter (a finding or a miss), and looks up again from checkAfter on', async () => {
    await discoverInstance(target('demo'), options());
    await discoverInstance(target('nosuch'), options());
    expect(lookups()).toBe(2);
    now = T + 30_000 - 1;
    expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    expect(await discoverInstance(target('nosuch'), options())).toBeUndefined();
    expect(emu.calls.count({})).toBe(4);
    // The miss is due again.
    now = T + 30_000;
    expect(await discoverInstance(target('nosuch'), options())).toBeUndefined();
    expect(lookups()).toBe(3);
    now = T + 10 * MINUTE - 1;
    expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    expect(lookups()).toBe(3);
    // The finding is due for its re-check: looked up again, and stored anew from now.
    now = T + 10 * MINUTE;
    expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    expect(lookups()).toBe(4);
    expect(store.writes.at(-1)).toEqual({ cache: 'discovery', key: 'cn-hangzhou|demo', entry: { value: { instance: hz, checkAfter: T + 20 * MINUTE }, usableUntil: T + 20 * MINUTE + DAY } });
  });

  it('keys the store by region and name: the same name in another region is another lookup', async () => {
    await discoverInstance(target('demo'), options());
    const beijing = await discoverInstance({ instanceName: 'demo', region: 'cn-beijing' }, options(DISCOVERING_NODE_KEY, { endpoint: emu.crEndpoint('cn-beijing') }));
    expect(beijing).toBeUndefined();
    expect(store.writes.map((x) => x.key)).toEqual(['cn-hangzhou|demo', 'cn-beijing|demo']);
    expect(lookups()).toBe(2);
  });

  it('serves the instance found before, with a warning naming the cloud error, when its re-check fails; the stored entry is left as it was', async () => {
    await discoverInstance(target('demo'), options());
    now = T + 10 * MINUTE;
    const fault = emu.injectServerError(503, { action: 'ListInstance' });
    try {
      expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    } finally {
      fault.remove();
    }
    expect(warnings).toEqual(['re-checking ACR instance demo in cn-hangzhou failed (ServiceUnavailable); serving it as discovered before']);
    expect(store.writes).toHaveLength(1);
    // Listing its domains failing is a failed re-check too.
    const listing = emu.injectServerError(500, { action: 'ListInstanceEndpoint' });
    try {
      expect(await discoverInstance(target('demo'), options())).toEqual(hz);
    } finally {
      listing.remove();
    }
    expect(warnings[1]).toBe('re-checking ACR instance demo in cn-hangzhou failed (InternalError); serving it as discovered before');
    // A failure that is not the cloud's (the node's credentials): no code to show.
    expect(await discoverInstance(target('demo'), options(DISCOVERING_NODE_KEY, { credentials: () => Promise.reject(new Error('no metadata service')) }))).toEqual(hz);
    expect(warnings[2]).toBe('re-checking ACR instance demo in cn-hangzhou failed (error); serving it as discovered before');
    expect(store.writes).toHaveLength(1);
  });

  it('denies when the lookup fails and nothing was found before (a remembered miss serves nothing)', async () => {
    expect(await denial(discoverInstance(target('demo'), options(NODE_KEY)))).toBe(
      "acr-pull-webhook failed looking up ACR instance demo in cn-hangzhou (discovery) as the node's own identity: NoPermission (request ID <id>). " +
        'Grant cr:ListInstance (on instance/*), cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint to that identity in RAM, or turn discovery off and list the instance under registries',
    );
    // A miss kept past its checkAfter (as a store may keep it): nothing to serve when the re-check fails.
    store.entries.set('discovery/cn-hangzhou|nosuch', { value: { instance: null, checkAfter: T } satisfies StoredDiscovery, usableUntil: T + DAY });
    const fault = emu.injectServerError(503, { action: 'ListInstance' });
    try {
      const message = await denial(discoverInstance(target('nosuch'), options(DISCOVERING_NODE_KEY, { as: 'whoever' })));
      expect(message).toBe(
        `acr-pull-webhook failed looking up ACR instance nosuch in cn-hangzhou (discovery) as whoever: ServiceUnavailable (request ID <id>). This is a transient Alibaba Cloud service error of Container Registry (${emu.crEndpoint('cn-hangzhou')}) on this step (retried while the admission deadline allowed). Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again`,
      );
    } finally {
      fault.remove();
    }
    expect(warnings).toEqual([]);
    expect(store.writes).toEqual([]);
  });

  it('names the domain listing in its denial when that step fails', async () => {
    const fault = emu.injectServerError(500, { action: 'GetInstanceVpcEndpoint' });
    try {
      expect(await denial(discoverInstance(target('demo'), options()))).toBe(
        `acr-pull-webhook failed listing the domains of ACR instance demo in cn-hangzhou (discovery) as the node's own identity: InternalError (request ID <id>). This is a transient Alibaba Cloud service error of Container Registry (${emu.crEndpoint('cn-hangzhou')}) on this step (retried while the admission deadline allowed). Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again`,
      );
    } finally {
      fault.remove();
    }
    expect(store.writes).toEqual([]);
  });

  it('passes a denial of the credentials on as it is', async () => {
    const refused = new DenialError('the node has no credentials');
    await expect(discoverInstance(target('demo'), options(DISCOVERING_NODE_KEY, { credentials: () => Promise.reject(refused) }))).rejects.toBe(refused);
    expect(emu.calls.count({})).toBe(0);
  });

  it('works without a store: every call looks up', async () => {
    expect(await discoverInstance(target('demo'), options(DISCOVERING_NODE_KEY, { store: undefined }))).toEqual(hz);
    expect(await discoverInstance(target('demo'), options(DISCOVERING_NODE_KEY, { store: undefined }))).toEqual(hz);
    expect(lookups()).toBe(2);
  });
});
