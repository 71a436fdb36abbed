// The host -> registry index behind unannotated serving: configured entries, looked-up domains, discovery.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/config.js';

type Served = typeof import('../../src/acr/served-registries.js');
let buildRegistryIndex: Served['buildRegistryIndex'];
let mayBeUndiscovered: Served['mayBeUndiscovered'];
let servedHostNames: Served['servedHostNames'];
let servedRegistryFor: Served['servedRegistryFor'];
let servedRegistryRef: Served['servedRegistryRef'];

const ctx = { ownNamespace: 'acr-pull-webhook' };
// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let configured!: ReturnType<typeof parseConfig>['registries'];
beforeEach(async () => {
  // Loaded per test: instanceKey is defined when the module loads.
  vi.resetModules();
  ({ buildRegistryIndex, mayBeUndiscovered, servedHostNames, servedRegistryFor, servedRegistryRef } = await import('../../src/acr/served-registries.js'));
  configured = parseConfig(
    {
      defaultRegion: 'cn-hangzhou',
      registries: [
        { instanceId: 'cri-listed', domains: ['registry.example.com'] },
        { instanceId: 'cri-all', region: 'cn-beijing' },
        { instanceId: '', region: 'cn-shanghai' },
        { instanceId: 'default', region: 'cn-qingdao-env17-d01', domains: ['registry.acs.example.com'], serviceArn: 'acs:ram::1234567890123456:role/apsara' },
      ],
    },
    ctx,
  ).registries;
});

describe('registry index', () => {
  it('serves configured domains, looked-up domains and Personal Edition default hosts; nothing else', () => {
    const index = buildRegistryIndex({ configured, lookedUp: new Map([['cn-beijing:cri-all', ['all-registry.cn-beijing.cr.aliyuncs.com', 'all.example.org']]]) });
    expect(servedRegistryFor(index, 'registry.example.com')?.instanceId).toBe('cri-listed');
    expect(servedRegistryFor(index, 'all.example.org')?.instanceId).toBe('cri-all');
    expect(servedRegistryFor(index, 'registry.acs.example.com')).toMatchObject({ instanceId: 'default', region: 'cn-qingdao-env17-d01', chain: { serviceArn: 'acs:ram::1234567890123456:role/apsara' } });
    for (const host of ['registry.cn-shanghai.aliyuncs.com', 'registry-vpc.cn-shanghai.aliyuncs.com', 'registry-intl.cn-shanghai.aliyuncs.com', 'crpi-abc123.cn-shanghai.personal.cr.aliyuncs.com', 'crpi-abc123-vpc.cn-shanghai.personal.cr.aliyuncs.com']) {
      expect(servedRegistryFor(index, host), host).toMatchObject({ edition: 'personal', region: 'cn-shanghai' });
    }
    for (const host of ['docker.io', 'registry.cn-hangzhou.aliyuncs.com', 'other-registry.cn-beijing.cr.aliyuncs.com', 'ghcr.io']) {
      expect(servedRegistryFor(index, host), host).toBeUndefined();
    }
    // Before the lookup the instance is known by ID, not by host.
    const before = buildRegistryIndex({ configured });
    expect(servedRegistryFor(before, 'all.example.org')).toBeUndefined();
    expect(before.byInstance.get('cn-beijing:cri-all')?.domains).toBeUndefined();
  });

  it('adds discovered instances and the discovery regions’ Personal Edition hosts, configured entries first', () => {
    const index = buildRegistryIndex({
      configured,
      discovered: [
        { instanceId: 'cri-new', region: 'cn-hangzhou', domains: ['new-registry.cn-hangzhou.cr.aliyuncs.com', 'new-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] },
        // Configured with its own domains: discovery does not override the operator.
        { instanceId: 'cri-listed', region: 'cn-hangzhou', domains: ['listed-registry.cn-hangzhou.cr.aliyuncs.com'] },
      ],
      discovery: { regions: ['cn-hangzhou'], personalEdition: true },
    });
    expect(servedRegistryFor(index, 'new-registry-vpc.cn-hangzhou.cr.aliyuncs.com')).toMatchObject({ instanceId: 'cri-new', origin: 'discovered', chain: {} });
    expect(servedRegistryFor(index, 'listed-registry.cn-hangzhou.cr.aliyuncs.com')).toBeUndefined();
    expect(servedRegistryFor(index, 'registry.cn-hangzhou.aliyuncs.com')).toMatchObject({ edition: 'personal', origin: 'discovered' });
    expect(mayBeUndiscovered(index, 'brandnew-registry.cn-hangzhou.cr.aliyuncs.com')).toBe(true);
    expect(mayBeUndiscovered(index, 'brandnew-registry.cn-beijing.cr.aliyuncs.com')).toBe(false);
    expect(mayBeUndiscovered(index, 'docker.io')).toBe(false);
    expect(mayBeUndiscovered(buildRegistryIndex({ configured }), 'brandnew-registry.cn-hangzhou.cr.aliyuncs.com')).toBe(false);
    const noPersonal = buildRegistryIndex({ configured: [], discovery: { regions: ['cn-hangzhou'], personalEdition: false } });
    expect(servedRegistryFor(noPersonal, 'registry.cn-hangzhou.aliyuncs.com')).toBeUndefined();
  });

  it('lists the served host names for matchConditions', () => {
    const index = buildRegistryIndex({ configured, discovered: [{ instanceId: 'cri-new', region: 'cn-hangzhou', domains: ['new-registry.cn-hangzhou.cr.aliyuncs.com'] }] });
    expect(servedHostNames(index)).toEqual([
      'crpi-*-vpc.cn-shanghai.personal.cr.aliyuncs.com',
      'crpi-*.cn-shanghai.personal.cr.aliyuncs.com',
      'new-registry.cn-hangzhou.cr.aliyuncs.com',
      'registry-internal.cn-shanghai.aliyuncs.com',
      'registry-intl-internal.cn-shanghai.aliyuncs.com',
      'registry-intl-vpc.cn-shanghai.aliyuncs.com',
      'registry-intl.cn-shanghai.aliyuncs.com',
      'registry-vpc.cn-shanghai.aliyuncs.com',
      'registry.acs.example.com',
      'registry.cn-shanghai.aliyuncs.com',
      'registry.example.com',
    ]);
  });

  it('turns a served registry into what the token source needs', () => {
    const index = buildRegistryIndex({ configured });
    expect(servedRegistryRef(servedRegistryFor(index, 'registry.example.com')!, ['registry.example.com'])).toEqual({
      kind: 'instance',
      instanceId: 'cri-listed',
      region: 'cn-hangzhou',
      domains: ['registry.example.com'],
    });
    expect(servedRegistryRef(index.byInstance.get('cn-beijing:cri-all')!, [])).toEqual({ kind: 'instance', instanceId: 'cri-all', region: 'cn-beijing' });
    expect(servedRegistryRef(servedRegistryFor(index, 'registry.cn-shanghai.aliyuncs.com')!, ['registry.cn-shanghai.aliyuncs.com', 'registry-vpc.cn-shanghai.aliyuncs.com'])).toEqual({
      kind: 'personal',
      region: 'cn-shanghai',
      domains: ['registry-vpc.cn-shanghai.aliyuncs.com', 'registry.cn-shanghai.aliyuncs.com'],
    });
  });
});

describe('registry index, exact entries', () => {
  const SVC = 'acs:ram::1234567890123456:role/pe';

  it('a Personal Edition registry listed with domains serves those domains only; one without, its region\'s default hosts', () => {
    const listed = parseConfig({ defaultRegion: 'cn-shanghai', registries: [{ instanceId: '', domains: ['pe.example.com', 'pe2.example.com'] }] }, ctx).registries;
    const index = buildRegistryIndex({ configured: listed });
    expect(servedRegistryFor(index, 'pe.example.com')).toEqual({ edition: 'personal', region: 'cn-shanghai', chain: {}, origin: 'configured', domains: ['pe.example.com', 'pe2.example.com'] });
    expect(servedRegistryFor(index, 'registry.cn-shanghai.aliyuncs.com')).toBeUndefined();
    expect(index.personalByRegion.size).toBe(0);
    expect(index.size).toBe(2);
    // The Secret carries the listed domains, copied, whatever hosts the images used.
    const r = servedRegistryFor(index, 'pe.example.com')!;
    const ref = servedRegistryRef(r, ['pe.example.com']);
    expect(ref).toEqual({ kind: 'personal', region: 'cn-shanghai', domains: ['pe.example.com', 'pe2.example.com'] });
    expect(ref.kind === 'personal' && ref.domains).not.toBe(r.domains);
    // Without listed domains: the hosts the images used, sorted.
    const byRegion = buildRegistryIndex({ configured: parseConfig({ registries: [{ instanceId: '', region: 'cn-shenzhen' }] }, ctx).registries });
    expect(servedRegistryRef(servedRegistryFor(byRegion, 'registry.cn-shenzhen.aliyuncs.com')!, ['registry.cn-shenzhen.aliyuncs.com', 'registry-vpc.cn-shenzhen.aliyuncs.com'])).toEqual({
      kind: 'personal',
      region: 'cn-shenzhen',
      domains: ['registry-vpc.cn-shenzhen.aliyuncs.com', 'registry.cn-shenzhen.aliyuncs.com'],
    });
  });

  it('size counts served domains plus Personal Edition regions; discovery keeps a configured Personal Edition registry and its chain', () => {
    const withChain = parseConfig({ registries: [{ instanceId: '', region: 'cn-shanghai', serviceArn: SVC }, { instanceId: 'cri-a', region: 'cn-beijing', domains: ['a.example.com'] }] }, ctx).registries;
    const index = buildRegistryIndex({
      configured: withChain,
      discovered: [{ instanceId: 'cri-d', region: 'cn-beijing', domains: ['d-registry.cn-beijing.cr.aliyuncs.com', 'd-registry-vpc.cn-beijing.cr.aliyuncs.com'] }],
      discovery: { regions: ['cn-shanghai', 'cn-beijing'], personalEdition: true },
    });
    expect(index.size).toBe(5);
    expect(servedRegistryFor(index, 'registry.cn-shanghai.aliyuncs.com')).toEqual({ edition: 'personal', region: 'cn-shanghai', chain: { serviceArn: SVC }, origin: 'configured' });
    expect(servedRegistryFor(index, 'registry.cn-beijing.aliyuncs.com')).toEqual({ edition: 'personal', region: 'cn-beijing', chain: {}, origin: 'discovered' });
    expect(servedRegistryFor(index, 'd-registry.cn-beijing.cr.aliyuncs.com')).toEqual({
      edition: 'enterprise',
      instanceId: 'cri-d',
      region: 'cn-beijing',
      domains: ['d-registry.cn-beijing.cr.aliyuncs.com', 'd-registry-vpc.cn-beijing.cr.aliyuncs.com'],
      chain: {},
      origin: 'discovered',
    });
  });

  it('an instance whose looked-up domain list is empty goes into its Secret without domains', () => {
    const one = parseConfig({ registries: [{ instanceId: 'cri-empty', region: 'cn-beijing' }] }, ctx).registries;
    const index = buildRegistryIndex({ configured: one, lookedUp: new Map([['cn-beijing:cri-empty', []]]) });
    const r = index.byInstance.get('cn-beijing:cri-empty')!;
    expect(r.domains).toEqual([]);
    expect(servedRegistryRef(r, [])).toEqual({ kind: 'instance', instanceId: 'cri-empty', region: 'cn-beijing' });
    expect(servedRegistryRef({ ...r, domains: ['e.example.com'] }, [])).toEqual({ kind: 'instance', instanceId: 'cri-empty', region: 'cn-beijing', domains: ['e.example.com'] });
  });
});

describe('registry index, precedence on a shared host', () => {
  it('a configured domain wins over the looked-up domains of an entry listed before it, and over discovery', () => {
    // cri-first has no domains (looked up at run time), cri-second lists the same host: the operator's list wins
    // whatever the order of the entries, and discovery never takes a host that is already served.
    const shared = parseConfig(
      {
        registries: [
          { instanceId: 'cri-first', region: 'cn-beijing' },
          { instanceId: 'cri-second', region: 'cn-beijing', domains: ['shared.example.com'] },
        ],
      },
      ctx,
    ).registries;
    const index = buildRegistryIndex({
      configured: shared,
      lookedUp: new Map([['cn-beijing:cri-first', ['shared.example.com', 'first.example.com']]]),
      discovered: [{ instanceId: 'cri-found', region: 'cn-beijing', domains: ['first.example.com', 'shared.example.com', 'found.example.com'] }],
    });
    expect([...index.byDomain].map(([host, r]) => [host, r.instanceId, r.origin])).toEqual([
      ['shared.example.com', 'cri-second', 'configured'],
      ['first.example.com', 'cri-first', 'configured'],
      ['found.example.com', 'cri-found', 'discovered'],
    ]);
    // The looked-up entry keeps its whole domain list for its Secret.
    expect(index.byInstance.get('cn-beijing:cri-first')?.domains).toEqual(['shared.example.com', 'first.example.com']);
  });

  it('between two looked-up entries the first listed keeps a shared host', () => {
    const two = parseConfig({ registries: [{ instanceId: 'cri-a', region: 'cn-beijing' }, { instanceId: 'cri-b', region: 'cn-beijing' }] }, ctx).registries;
    const index = buildRegistryIndex({
      configured: two,
      lookedUp: new Map([
        ['cn-beijing:cri-a', ['shared.example.com']],
        ['cn-beijing:cri-b', ['shared.example.com', 'b.example.com']],
      ]),
    });
    expect(servedRegistryFor(index, 'shared.example.com')?.instanceId).toBe('cri-a');
    expect(servedRegistryFor(index, 'b.example.com')?.instanceId).toBe('cri-b');
    expect(index.size).toBe(2);
  });
});
