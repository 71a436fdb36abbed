// Discovery of the account's own registries and domain look-ups, with the real client against the emulator.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type InstanceSpec, type WorldSpec } from '../../emulator/index.js';
import { servedRegistryFor, type RegistryIndex } from '../../src/acr/served-registries.js';
import { RegistryDiscovery } from '../../src/cloud/discovery.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { parseConfig } from '../../src/config/config.js';

const A = '1111111111111111';
const B = '2222222222222222';
const KEY = { accessKeyId: 'LTAI5tDiscoveryKey000001', accessKeySecret: 'discovery-secret-00000000000000' };
const LIST_ONLY = { accessKeyId: 'LTAI5tListOnlyKey0000001', accessKeySecret: 'listonly-secret-000000000000000' };

const running = Array.from({ length: 32 }, (_, i): InstanceSpec => ({ id: `cri-own${String(i).padStart(13, '0')}`, name: `own${i}`, region: 'cn-hangzhou', accountId: A }));

function world(): WorldSpec {
  return {
    accounts: [
      {
        id: A,
        users: [
          { name: 'webhook', accessKeys: [{ id: KEY.accessKeyId, secret: KEY.accessKeySecret }], permissions: { assumeRole: '*', crReadInstance: '*', crGetAuthorizationToken: '*' } },
          { name: 'lister', accessKeys: [{ id: LIST_ONLY.accessKeyId, secret: LIST_ONLY.accessKeySecret }], permissions: { crReadInstance: ['cri-nothing'] } },
        ],
        roles: [{ name: 'reader', trust: [{ account: A }], permissions: { crReadInstance: '*' } }],
      },
      { id: B, roles: [] },
    ],
    instances: [
      ...running,
      { id: 'cri-stopped0000000001', name: 'stopped', region: 'cn-hangzhou', accountId: A, status: 'STOPPED' },
      { id: 'cri-beijing0000000001', name: 'north', region: 'cn-beijing', accountId: A, customDomains: ['north.example.com'] },
      { id: 'cri-foreign0000000001', name: 'foreign', region: 'cn-hangzhou', accountId: B },
    ],
  };
}

const w = world();
const emu = await startEmulator({ world: w });
const callers: CloudCaller[] = [];
afterEach(() => emu.reset());
afterAll(async () => {
  for (const c of callers) c.close();
  await emu.close();
});

function discovery(doc: unknown, opts: { key?: typeof KEY; missIntervalMs?: number } = {}) {
  const caller = new CloudCaller({ backoffMs: 5, maxAttempts: 2 });
  callers.push(caller);
  const endpoints = { sts: emu.stsEndpoint, cr: (r: string) => emu.crEndpoint(r) };
  const identity = staticIdentity('test', opts.key ?? KEY);
  const tokens = new AcrTokenSource({ identity, endpoints, caller, sessionDurationSeconds: 3600, refreshThresholdMs: 900_000 });
  const seen: RegistryIndex[] = [];
  const metrics = { discovered: [] as number[], errors: [] as string[], successes: 0 };
  const d = new RegistryDiscovery({
    config: parseConfig(doc, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' }),
    caller,
    endpoints,
    tokens,
    requester: 'acr-pull-webhook',
    onIndex: (i) => seen.push(i),
    missIntervalMs: opts.missIntervalMs,
    metrics: {
      discovered: (n) => metrics.discovered.push(n),
      error: (step, code) => metrics.errors.push(`${step}:${code}`),
      success: () => metrics.successes++,
    },
  });
  return { d, seen, metrics };
}

const host = (i: number, vpc = false) => `own${i}-registry${vpc ? '-vpc' : ''}.cn-hangzhou.cr.aliyuncs.com`;

describe('registry discovery', () => {
  it('lists every page of ListInstance, keeps running instances of the own account, and serves all their domains', async () => {
    const { d, metrics } = discovery({ discovery: { enabled: true, regions: ['cn-hangzhou', 'cn-beijing'] } });
    await d.refresh();
    // 33 instances of account A in cn-hangzhou at 30 per page: two pages; cn-beijing: one.
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(3);
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(33);
    expect(emu.calls.count({ action: 'GetInstanceVpcEndpoint' })).toBe(33);
    const index = d.current;
    for (const i of [0, 17, 31]) {
      expect(servedRegistryFor(index, host(i))).toMatchObject({ instanceId: running[i]!.id, region: 'cn-hangzhou', origin: 'discovered', chain: {} });
      expect(servedRegistryFor(index, host(i, true))?.instanceId).toBe(running[i]!.id);
    }
    expect(servedRegistryFor(index, 'north.example.com')?.instanceId).toBe('cri-beijing0000000001');
    expect(servedRegistryFor(index, 'stopped-registry.cn-hangzhou.cr.aliyuncs.com')).toBeUndefined();
    expect(servedRegistryFor(index, 'foreign-registry.cn-hangzhou.cr.aliyuncs.com')).toBeUndefined();
    expect(servedRegistryFor(index, 'registry-vpc.cn-beijing.aliyuncs.com')).toMatchObject({ edition: 'personal', region: 'cn-beijing' });
    expect(servedRegistryFor(index, 'docker.io')).toBeUndefined();
    expect(metrics).toEqual({ discovered: [33], errors: [], successes: 1 });
  });

  it('a failed call keeps what was known, counts the error and does not report success', async () => {
    const { d, metrics } = discovery({ discovery: { enabled: true, regions: ['cn-hangzhou'] } });
    await d.refresh();
    emu.inject({ kind: 'error', status: 403, code: 'NoPermission' }, { action: 'ListInstance' });
    await d.refresh();
    expect(servedRegistryFor(d.current, host(3))?.instanceId).toBe(running[3]!.id);
    emu.reset();
    emu.inject({ kind: 'error', status: 400, code: 'PARAM_INVALID' }, { action: 'ListInstanceEndpoint', times: 1 });
    await d.refresh();
    expect(d.current.byInstance.size).toBe(32);
    expect(metrics.errors).toEqual(['list:NoPermission', 'endpoints:PARAM_INVALID']);
    expect(metrics.successes).toBe(1);
  });

  it('without cr:ListInstance nothing is discovered, and nothing else breaks', async () => {
    const { d, metrics } = discovery({ discovery: { enabled: true } }, { key: LIST_ONLY });
    await d.refresh();
    expect(d.current.byInstance.size).toBe(0);
    expect(metrics.errors).toEqual(['list:NoPermission']);
    // Personal Edition hosts need no listing.
    expect(servedRegistryFor(d.current, 'registry.cn-hangzhou.aliyuncs.com')?.edition).toBe('personal');
  });

  it('looks up the domains of configured instances that list none, through their own chain, even with discovery off', async () => {
    const { d, metrics } = discovery({
      registries: [{ instanceId: 'cri-beijing0000000001', region: 'cn-beijing', serviceArn: `acs:ram::${A}:role/reader` }, { instanceId: 'cri-own0000000000001', domains: ['listed.example.com'] }],
    });
    expect(servedRegistryFor(d.current, 'north.example.com')).toBeUndefined();
    await d.refresh();
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(0);
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(1);
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(1);
    expect(servedRegistryFor(d.current, 'north.example.com')).toMatchObject({ instanceId: 'cri-beijing0000000001', origin: 'configured', chain: { serviceArn: `acs:ram::${A}:role/reader` } });
    expect(servedRegistryFor(d.current, 'north-registry-vpc.cn-beijing.cr.aliyuncs.com')?.instanceId).toBe('cri-beijing0000000001');
    expect(servedRegistryFor(d.current, 'listed.example.com')?.instanceId).toBe('cri-own0000000000001');
    expect(metrics.successes).toBe(1);
  });

  it('a miss refreshes at most once per interval, and finds an instance created meanwhile', async () => {
    const { d } = discovery({ discovery: { enabled: true } }, { missIntervalMs: 60_000 });
    await d.refresh();
    w.instances!.push({ id: 'cri-fresh0000000001', name: 'fresh', region: 'cn-hangzhou', accountId: A });
    try {
      // The refresh just ran: a miss within the interval waits for nothing and calls nothing.
      const before = emu.calls.count({ action: 'ListInstance' });
      expect(await d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(false);
      expect(emu.calls.count({ action: 'ListInstance' })).toBe(before);
      const eager = discovery({ discovery: { enabled: true } }, { missIntervalMs: 0 });
      expect(await eager.d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(true);
      expect(servedRegistryFor(eager.d.current, 'fresh-registry.cn-hangzhou.cr.aliyuncs.com')?.instanceId).toBe('cri-fresh0000000001');
      // Concurrent misses share one refresh.
      const listed = emu.calls.count({ action: 'ListInstance' });
      const all = await Promise.all([1, 2, 3].map(() => eager.d.refreshForMiss({ deadline: Date.now() + 5000 })));
      expect(all).toEqual([true, true, true]);
      expect(emu.calls.count({ action: 'ListInstance' }) - listed).toBe(2);
    } finally {
      w.instances!.pop();
    }
  });

  it('a miss never waits past the review’s budget, and never happens with discovery off', async () => {
    const { d } = discovery({ discovery: { enabled: true } }, { missIntervalMs: 0 });
    emu.injectLatency(1500, { action: 'ListInstance', times: 1 });
    const started = Date.now();
    expect(await d.refreshForMiss({ deadline: Date.now() + 800 })).toBe(false);
    expect(Date.now() - started).toBeLessThan(800);
    const off = discovery({}, { missIntervalMs: 0 });
    expect(await off.d.refreshForMiss({ deadline: Date.now() + 5000 })).toBe(false);
    await d.refresh();
  });

  it('a reloaded configuration drops what it no longer asks for', async () => {
    const { d, seen } = discovery({ discovery: { enabled: true } });
    await d.refresh();
    expect(d.current.byInstance.size).toBe(32);
    d.setConfig(parseConfig({}, { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' }));
    expect(d.current.byInstance.size).toBe(0);
    expect(d.current.size).toBe(0);
    expect(seen.at(-1)).toBe(d.current);
  });
});
