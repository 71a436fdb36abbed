// RegistryDiscovery against a stub cloud and fake timers: when it refreshes (start, interval, reload, misses),
// what a failed call leaves behind (metric, warning, index), and the order and concurrency of its look-ups.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { servedRegistryFor, type RegistryIndex } from '../../src/acr/served-registries.js';
import { RegistryDiscovery, type RegistryDiscoveryOptions } from '../../src/cloud/discovery.js';
import { CloudError } from '../../src/cloud/errors.js';
import type { CloudCaller } from '../../src/cloud/rpc.js';
import { parseConfig } from '../../src/config/config.js';
import { DenialError } from '../../src/pull-secrets/types.js';

const CREDS = { accessKeyId: 'LTAI5tDiscoStubKey000001', accessKeySecret: 'disco-stub-secret' };
const T0 = Date.UTC(2030, 0, 1);

interface Cloud {
  /** Instance IDs ListInstance returns, by region, in that order. */
  instances: Record<string, string[]>;
  /** Domains of an instance (ListInstanceEndpoint), by instance ID; default `<id>.example.com`. */
  domains?: Record<string, string[]>;
  /** Throws for a call when it returns an error. */
  fail?: (action: string, params: Record<string, string | number>) => unknown;
}

/** A bounded microtask flush: the stub cloud answers in microtasks, never on timers. */
async function settle(): Promise<void> {
  for (let i = 0; i < 200; i++) await Promise.resolve();
}

function setup(doc: unknown, cloud: Cloud, opts: Partial<RegistryDiscoveryOptions> & { credentialsFail?: () => unknown } = {}) {
  const calls: { action: string; endpoint: string; params: Record<string, string | number>; budget: unknown }[] = [];
  let inflight = 0;
  let maxInflight = 0;
  const caller = {
    rpc: async (endpoint: string, _v: string, _c: unknown, action: string, params: Record<string, string | number>, budget: unknown) => {
      calls.push({ action, endpoint, params, budget });
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      try {
        await Promise.resolve();
        await Promise.resolve();
        const e = cloud.fail?.(action, params);
        if (e) throw e;
        const region = endpoint.replace('https://cr.', '').replace('.example.test', '');
        if (action === 'ListInstance') {
          const ids = cloud.instances[region] ?? [];
          return { TotalCount: ids.length, Instances: ids.map((id) => ({ InstanceId: id, InstanceName: id.slice(4), InstanceStatus: 'RUNNING' })) };
        }
        const id = String(params.InstanceId);
        if (action === 'ListInstanceEndpoint') return { Endpoints: [{ Domains: (cloud.domains?.[id] ?? [`${id}.example.com`]).map((Domain) => ({ Domain })) }] };
        return { Domains: [] };
      } finally {
        inflight--;
      }
    },
  } as unknown as CloudCaller;
  const credentialCalls: { chain: unknown; requester: string; budget: unknown }[] = [];
  const tokens = {
    credentialsFor: async (chain: unknown, requester: string, budget: unknown) => {
      credentialCalls.push({ chain, requester, budget });
      const e = opts.credentialsFail?.();
      if (e) throw e;
      return CREDS;
    },
  } as unknown as RegistryDiscoveryOptions['tokens'];
  const metrics = { discovered: [] as number[], errors: [] as string[], successes: 0 };
  const warnings: unknown[][] = [];
  const seen: RegistryIndex[] = [];
  const { credentialsFail: _, ...rest } = opts;
  const d = new RegistryDiscovery({
    config: parseConfig(doc, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' }),
    caller,
    endpoints: { sts: 'https://sts.example.test', cr: (r: string) => `https://cr.${r}.example.test` },
    tokens,
    requester: 'acr-pull-webhook',
    onIndex: (i) => seen.push(i),
    logger: { debug: () => {}, info: () => {}, error: () => {}, warn: (...a: unknown[]) => warnings.push(a) },
    metrics: {
      discovered: (n) => metrics.discovered.push(n),
      error: (step, code) => metrics.errors.push(`${step}:${code}`),
      success: () => metrics.successes++,
    },
    ...rest,
  });
  const listed = () => calls.filter((c) => c.action === 'ListInstance').length;
  return { d, calls, credentialCalls, metrics, warnings, seen, listed, maxInflight: () => maxInflight };
}

const cfg = (doc: unknown) => parseConfig(doc, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' });
const ONE = { instances: { 'cn-hangzhou': ['cri-aaa'] } };

describe('RegistryDiscovery: what needs the cloud', () => {
  it('active: discovery on, or a configured Enterprise entry without domains; nothing else', () => {
    const active = (doc: unknown) => setup(doc, ONE).d.active;
    expect(active({ discovery: { enabled: true } })).toBe(true);
    expect(active({ registries: [{ instanceId: 'cri-aaa' }] })).toBe(true);
    expect(active({ registries: [{ instanceId: 'cri-aaa', domains: ['a.example.com'] }, { instanceId: 'cri-bbb' }] })).toBe(true);
    expect(active({ registries: [{ instanceId: 'cri-aaa', domains: ['a.example.com'] }] })).toBe(false);
    expect(active({ registries: [{ instanceId: '' }] })).toBe(false);
    expect(active({})).toBe(false);
  });

  it('a Personal Edition entry is never looked up', async () => {
    const { d, calls, credentialCalls, metrics } = setup({ registries: [{ instanceId: '' }] }, ONE);
    await d.refresh();
    expect(credentialCalls).toEqual([]);
    expect(calls).toEqual([]);
    expect(metrics.successes).toBe(1);
  });
});

describe('RegistryDiscovery: when it refreshes', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('start() refreshes at once and on every interval; stop() ends that', async () => {
    const { d, listed } = setup({ discovery: { enabled: true, interval: '1m' } }, ONE);
    d.start();
    await settle();
    expect(listed()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(listed()).toBe(2);
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(listed()).toBe(3);
    d.stop();
    await vi.advanceTimersByTimeAsync(180_000);
    await settle();
    expect(listed()).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with nothing to ask the cloud, neither start() nor the interval runs a refresh', async () => {
    const { d, metrics, seen } = setup({}, ONE);
    d.start();
    await settle();
    await vi.advanceTimersByTimeAsync(120_000);
    await settle();
    expect(metrics.successes).toBe(0);
    expect(seen).toEqual([]);
    d.stop();
  });

  it('the interval skips its refresh once a reload made discovery inactive', async () => {
    const { d, metrics } = setup({ discovery: { enabled: true, interval: '1m' } }, ONE);
    d.start();
    await settle();
    expect(metrics.successes).toBe(1);
    d.setConfig(cfg({ discovery: { interval: '1m' } }));
    await settle();
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(metrics.successes).toBe(1);
    d.stop();
  });

  it('a reload that changes the interval reschedules: the old interval no longer fires', async () => {
    const { d, listed } = setup({ discovery: { enabled: true, interval: '1m' } }, ONE);
    d.start();
    await settle();
    d.setConfig(cfg({ discovery: { enabled: true, interval: '3m' } }));
    await settle();
    expect(listed()).toBe(2);
    await vi.advanceTimersByTimeAsync(61_000);
    await settle();
    expect(listed()).toBe(2);
    await vi.advanceTimersByTimeAsync(120_000);
    await settle();
    expect(listed()).toBe(3);
    d.stop();
  });

  it('a reload with the same interval keeps the running schedule', async () => {
    const { d, listed } = setup({ discovery: { enabled: true, interval: '1m' } }, ONE);
    d.start();
    await settle();
    await vi.advanceTimersByTimeAsync(50_000);
    d.setConfig(cfg({ discovery: { enabled: true, interval: '1m', regions: ['cn-hangzhou'] } }));
    await settle();
    expect(listed()).toBe(2);
    await vi.advanceTimersByTimeAsync(11_000);
    await settle();
    expect(listed()).toBe(3);
    d.stop();
  });

  it('a reload before start() schedules nothing, whatever its interval; it refreshes once when active', async () => {
    const { d, listed } = setup({ discovery: { enabled: true, interval: '1m' } }, ONE);
    d.setConfig(cfg({ discovery: { enabled: true, interval: '3m' } }));
    await settle();
    expect(listed()).toBe(1);
    d.setConfig(cfg({ discovery: { enabled: true, interval: '3m' } }));
    await settle();
    expect(listed()).toBe(2);
    await vi.advanceTimersByTimeAsync(400_000);
    await settle();
    expect(listed()).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a reload to a configuration that needs nothing publishes the index and calls nothing', async () => {
    const { d, metrics, seen, credentialCalls } = setup({ discovery: { enabled: true } }, ONE);
    d.setConfig(cfg({ registries: [{ instanceId: 'cri-aaa', domains: ['a.example.com'] }] }));
    await settle();
    expect(credentialCalls).toEqual([]);
    expect(metrics.successes).toBe(0);
    expect(seen).toHaveLength(1);
    expect(servedRegistryFor(seen[0]!, 'a.example.com')?.instanceId).toBe('cri-aaa');
  });

  it('a miss refreshes again once missIntervalMs has passed since the last start, not before', async () => {
    let t = 5_000_000;
    const { d, listed } = setup({ discovery: { enabled: true } }, ONE, { missIntervalMs: 60_000, now: () => t });
    await d.refresh();
    t += 59_999;
    expect(await d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(false);
    t += 1;
    expect(await d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(true);
    expect(listed()).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without missIntervalMs the configuration’s discovery.missInterval applies', async () => {
    let t = 5_000_000;
    const { d, listed } = setup({ discovery: { enabled: true, missInterval: '30s' } }, ONE, { now: () => t });
    await d.refresh();
    t += 29_000;
    expect(await d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(false);
    expect(listed()).toBe(1);
    t += 1_000;
    expect(await d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(true);
    expect(listed()).toBe(2);
  });

  it('a miss with 300 ms or less of budget left starts nothing and answers false', async () => {
    const { d, credentialCalls } = setup({ discovery: { enabled: true } }, ONE, { missIntervalMs: 0 });
    expect(await d.refreshForMiss({ deadline: Date.now() - 1000 })).toBe(false);
    expect(await d.refreshForMiss({ deadline: Date.now() + 300 })).toBe(false);
    expect(credentialCalls).toEqual([]);
    expect(await d.refreshForMiss({ deadline: Date.now() + 301 })).toBe(true);
    expect(credentialCalls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('one refresh has a budget of timeoutMs, 30 s by default', async () => {
    const a = setup({ discovery: { enabled: true } }, ONE, { timeoutMs: 5000 });
    await a.d.refresh();
    expect(a.credentialCalls).toEqual([{ chain: {}, requester: 'acr-pull-webhook', budget: { deadline: T0 + 5000 } }]);
    expect(a.calls[0]!.budget).toEqual({ deadline: T0 + 5000 });
    const b = setup({ discovery: { enabled: true } }, ONE);
    await b.d.refresh();
    expect(b.credentialCalls[0]!.budget).toEqual({ deadline: T0 + 30_000 });
  });
});

const WARNING = 'registry discovery call failed; keeping what was known';

describe('RegistryDiscovery: failed calls', () => {
  it('its own credentials refused: a "list" error coded Denied, a warning, and no listing at all', async () => {
    const { d, calls, metrics, warnings } = setup({ discovery: { enabled: true, regions: ['cn-hangzhou', 'cn-beijing'] } }, ONE, {
      credentialsFail: () => new DenialError('the webhook identity was refused', 403, 'Forbidden'),
    });
    await d.refresh();
    expect(calls).toEqual([]);
    expect(metrics.errors).toEqual(['list:Denied']);
    expect(metrics.successes).toBe(0);
    expect(warnings).toEqual([[{ step: 'list', code: 'Denied', error: 'the webhook identity was refused' }, WARNING]]);
  });

  it('an unexpected failure is coded Unknown', async () => {
    const { d, metrics, warnings } = setup({ discovery: { enabled: true } }, ONE, { credentialsFail: () => new Error('boom') });
    await d.refresh();
    expect(metrics.errors).toEqual(['list:Unknown']);
    expect(warnings).toEqual([[{ step: 'list', code: 'Unknown', error: 'boom' }, WARNING]]);
  });

  it('a region whose listing fails is named in the warning', async () => {
    const { d, metrics, warnings } = setup({ discovery: { enabled: true } }, { ...ONE, fail: (a) => (a === 'ListInstance' ? new CloudError('ListInstance', 'Throttling.User', true) : undefined) });
    await d.refresh();
    expect(metrics.errors).toEqual(['list:Throttling.User']);
    expect(warnings).toEqual([[{ region: 'cn-hangzhou', step: 'list', code: 'Throttling.User', error: 'ListInstance failed: Throttling.User' }, WARNING]]);
  });

  it('a configured entry whose domains cannot be read: a "domains" error naming instance and region', async () => {
    const { d, metrics, warnings } = setup({ registries: [{ instanceId: 'cri-conf', region: 'cn-beijing' }] }, {
      instances: {},
      fail: (a) => (a === 'ListInstanceEndpoint' ? new CloudError('ListInstanceEndpoint', 'NoPermission', false) : undefined),
    });
    await d.refresh();
    expect(metrics.errors).toEqual(['domains:NoPermission']);
    expect(metrics.successes).toBe(0);
    expect(warnings).toEqual([[{ instanceId: 'cri-conf', region: 'cn-beijing', step: 'domains', code: 'NoPermission', error: 'ListInstanceEndpoint failed: NoPermission' }, WARNING]]);
  });

  it('a new instance whose endpoints fail is left out (nothing known before), the others are served', async () => {
    const { d, metrics, warnings } = setup({ discovery: { enabled: true } }, {
      instances: { 'cn-hangzhou': ['cri-aaa', 'cri-bad'] },
      fail: (a, p) => (a === 'ListInstanceEndpoint' && p.InstanceId === 'cri-bad' ? new CloudError('ListInstanceEndpoint', 'InternalError', true) : undefined),
    });
    await d.refresh();
    expect([...d.current.byInstance.keys()]).toEqual(['cn-hangzhou:cri-aaa']);
    expect(metrics.errors).toEqual(['endpoints:InternalError']);
    expect(warnings).toEqual([[{ instanceId: 'cri-bad', region: 'cn-hangzhou', step: 'endpoints', code: 'InternalError', error: 'ListInstanceEndpoint failed: InternalError' }, WARNING]]);
  });

  it('without metrics a failure is still only logged', async () => {
    const { d, warnings } = setup({ discovery: { enabled: true } }, ONE, { metrics: undefined, credentialsFail: () => new Error('boom') });
    await expect(d.refresh()).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
  });
});

describe('RegistryDiscovery: the index it builds', () => {
  it('discovered instances are ordered by ID whatever order their look-ups finish in; a shared domain goes to the first', async () => {
    const { d } = setup({ discovery: { enabled: true } }, {
      instances: { 'cn-hangzhou': ['cri-ccc', 'cri-bbb', 'cri-aaa'] },
      domains: { 'cri-ccc': ['shared.example.com', 'c.example.com'], 'cri-bbb': ['shared.example.com'], 'cri-aaa': ['a.example.com'] },
    });
    await d.refresh();
    expect([...d.current.byInstance.keys()]).toEqual(['cn-hangzhou:cri-aaa', 'cn-hangzhou:cri-bbb', 'cn-hangzhou:cri-ccc']);
    expect(servedRegistryFor(d.current, 'shared.example.com')?.instanceId).toBe('cri-bbb');
  });

  it('counts only discovered instances as discovered', async () => {
    const { d, metrics } = setup(
      { discovery: { enabled: true }, registries: [{ instanceId: 'cri-conf', domains: ['conf.example.com'] }] },
      { instances: { 'cn-hangzhou': ['cri-aaa', 'cri-bbb'] } },
    );
    await d.refresh();
    expect(d.current.byInstance.size).toBe(3);
    expect(metrics.discovered).toEqual([2]);
  });

  it('looks up at most 4 instances at a time', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `cri-i${i}`);
    const { d, maxInflight } = setup({ discovery: { enabled: true } }, { instances: { 'cn-hangzhou': ids } });
    await d.refresh();
    expect(d.current.byInstance.size).toBe(10);
    // Each instance is two calls at once (internet and VPC endpoints): 4 lanes make 8.
    expect(maxInflight()).toBe(8);
  });

  it('domains looked up for an entry are forgotten when a reload drops it: re-adding it waits for a new look-up', async () => {
    const doc = { registries: [{ instanceId: 'cri-conf' }] };
    const { d } = setup(doc, { instances: {} });
    await d.refresh();
    expect(servedRegistryFor(d.current, 'cri-conf.example.com')?.instanceId).toBe('cri-conf');
    d.setConfig(cfg({}));
    d.setConfig(cfg(doc));
    expect(servedRegistryFor(d.current, 'cri-conf.example.com')).toBeUndefined();
    await d.refresh();
    expect(servedRegistryFor(d.current, 'cri-conf.example.com')?.instanceId).toBe('cri-conf');
  });
});
