import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/config.js';
import { parseDuration } from '../../src/config/duration.js';

const ctx = { ownNamespace: 'acr-pull-webhook' };

describe('configuration file', () => {
  it('fills defaults', () => {
    expect(parseConfig({}, ctx)).toEqual({
      registries: [],
      discovery: { enabled: false, regions: [], intervalMs: 10 * 60_000, missIntervalMs: 30_000, personalEdition: true },
      endpoints: {},
      namespaces: { include: [], exclude: [] },
      imageCacheSecretNamespace: 'acr-pull-webhook',
      credentials: { sessionDurationSeconds: 3600, refreshThresholdMs: 15 * 60_000, externalIds: {}, cacheEntries: 1000 },
      secrets: { idleTimeoutMs: 24 * 3_600_000, refreshIntervalMs: 30_000 },
      credentialHelper: { configMap: { namespace: 'kube-system', name: 'acr-configuration' } },
      credentialProvider: { cacheDir: '/var/lib/acr-credential-provider' },
    });
  });

  it('region: the file\'s defaultRegion wins, ALIBABA_CLOUD_REGION_ID is the default, and there is no built-in one', () => {
    expect(parseConfig({ defaultRegion: 'cn-shanghai' }, { ...ctx, regionFromEnv: 'cn-beijing' }).defaultRegion).toBe('cn-shanghai');
    expect(parseConfig({}, { ...ctx, regionFromEnv: 'cn-beijing' }).defaultRegion).toBe('cn-beijing');
    expect(parseConfig({}, { ...ctx, regionFromEnv: '' }).defaultRegion).toBeUndefined();
    expect(parseConfig({}, ctx).defaultRegion).toBeUndefined();
    expect(() => parseConfig({}, { ...ctx, regionFromEnv: 'Beijing' }, 'config.yaml')).toThrow(
      'config.yaml: defaultRegion (from ALIBABA_CLOUD_REGION_ID): "Beijing" is not a region ID such as cn-hangzhou',
    );
    // What needs a region and has none is refused at load, naming the field and both ways to give one.
    const registry = { registries: [{ instanceId: 'cri-abc123', domains: ['reg.example.com'] }] };
    expect(() => parseConfig(registry, ctx, 'config.yaml')).toThrow(
      'config.yaml: registries[0].region: required: no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set',
    );
    expect(parseConfig(registry, { ...ctx, regionFromEnv: 'cn-beijing' }).registries[0]!.region).toBe('cn-beijing');
    expect(() => parseConfig({ discovery: { enabled: true } }, ctx, 'config.yaml')).toThrow(
      'config.yaml: discovery.regions: required: no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set',
    );
    expect(parseConfig({ discovery: { enabled: true } }, { ...ctx, regionFromEnv: 'cn-beijing' }).discovery.regions).toEqual(['cn-beijing']);
    const policy = { policy: { rules: [{ name: 'a', namespaces: { names: ['a'] }, instances: ['cri-abc123'] }] } };
    expect(() => parseConfig(policy, ctx, 'config.yaml')).toThrow(
      'config.yaml: policy.rules[0].instances[0]: "cri-abc123" has no region prefix (cn-beijing:cri-abc123), and there is no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set',
    );
  });

  it('reads the credential helper ConfigMap from where it is told, or not at all', () => {
    expect(parseConfig({ credentialHelper: { configMap: 'ops/acr-config' } }, ctx).credentialHelper).toEqual({ configMap: { namespace: 'ops', name: 'acr-config' } });
    expect(parseConfig({ credentialHelper: { configMap: '' } }, ctx).credentialHelper).toEqual({});
    expect(() => parseConfig({ credentialHelper: { configMap: 'acr-configuration' } }, ctx, 'config.yaml')).toThrow(
      'config.yaml: credentialHelper.configMap: "acr-configuration" is not namespace/name (or "" to not read one)',
    );
    expect(() => parseConfig({ credentialHelper: { name: 'x' } }, ctx, 'config.yaml')).toThrow('config.yaml: credentialHelper.name: unknown field');
  });

  it('reads a full YAML file, lower-casing domains', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      [
        'defaultRegion: cn-shanghai',
        'registries:',
        '  - instanceId: cri-abc123',
        '    domains: [Reg.Example.com, myreg-registry.cn-shanghai.cr.aliyuncs.com]',
        'namespaces:',
        '  exclude: ["sandbox-*"]',
        'imageCacheSecretNamespace: eci-cache',
        'credentials: {sessionDurationSeconds: 7200, refreshThreshold: 20m, cacheEntries: 250}',
        'secrets: {idleTimeout: 1h30m}',
      ].join('\n'),
    );
    const c = loadConfigFile(file, ctx);
    expect(c.registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-abc123', region: 'cn-shanghai', domains: ['reg.example.com', 'myreg-registry.cn-shanghai.cr.aliyuncs.com'], chain: {} },
    ]);
    expect(c.namespaces.exclude).toEqual(['sandbox-*']);
    expect(c.imageCacheSecretNamespace).toBe('eci-cache');
    expect(c.credentials).toEqual({ sessionDurationSeconds: 7200, refreshThresholdMs: 20 * 60_000, externalIds: {}, cacheEntries: 250 });
    expect(c.secrets.idleTimeoutMs).toBe(90 * 60_000);
  });

  it('expresses every registry the credential helper can: Enterprise with or without domains, Personal, Apsara Stack, chains', () => {
    const c = parseConfig(
      {
        defaultRegion: 'cn-qingdao-env17-d01',
        registries: [
          { instanceId: 'cri-all', region: 'cn-beijing' },
          { instanceId: '' },
          { instanceId: '', region: 'cn-shanghai', domains: ['xxx.com', ' YYY.com'] },
          { instanceId: 'default', domains: ['registry.acs.example.com'] },
          { instanceId: 'cri-other', region: 'cn-beijing', serviceArn: 'acs:ram::1234567890123456:role/reader' },
          { instanceId: 'cri-chain', serviceArn: 'acs:ram::1234567890123456:role/svc', userArn: 'acs:ram::6543210987654321:role/user' },
        ],
      },
      ctx,
    );
    expect(c.registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-all', region: 'cn-beijing', chain: {} },
      { edition: 'personal', region: 'cn-qingdao-env17-d01', chain: {} },
      { edition: 'personal', region: 'cn-shanghai', domains: ['xxx.com', 'yyy.com'], chain: {} },
      { edition: 'enterprise', instanceId: 'default', region: 'cn-qingdao-env17-d01', domains: ['registry.acs.example.com'], chain: {} },
      { edition: 'enterprise', instanceId: 'cri-other', region: 'cn-beijing', chain: { serviceArn: 'acs:ram::1234567890123456:role/reader' } },
      {
        edition: 'enterprise',
        instanceId: 'cri-chain',
        region: 'cn-qingdao-env17-d01',
        chain: { serviceArn: 'acs:ram::1234567890123456:role/svc', userArn: 'acs:ram::6543210987654321:role/user' },
      },
    ]);
  });

  it('reads discovery and endpoints', () => {
    const c = parseConfig(
      {
        discovery: { enabled: true, regions: ['cn-beijing', 'cn-beijing', 'cn-qingdao-env17-d01'], interval: '5m', missInterval: '2s', personalEdition: false },
        endpoints: { sts: 'https://sts.inter.env17e.shuguang.com', cr: { 'cn-qingdao-env17-d01': 'https://cr.inter.env17e.shuguang.com' }, ram: 'https://ram.inter.env17e.shuguang.com' },
      },
      ctx,
    );
    expect(c.discovery).toEqual({ enabled: true, regions: ['cn-beijing', 'cn-qingdao-env17-d01'], intervalMs: 5 * 60_000, missIntervalMs: 2000, personalEdition: false });
    expect(c.endpoints).toEqual({
      sts: 'https://sts.inter.env17e.shuguang.com',
      cr: { 'cn-qingdao-env17-d01': 'https://cr.inter.env17e.shuguang.com' },
      ram: 'https://ram.inter.env17e.shuguang.com',
    });
    expect(parseConfig({ endpoints: { cr: 'https://cr.{region}.example.com' } }, ctx).endpoints.cr).toBe('https://cr.{region}.example.com');
  });

  it.each([
    [{ registries: [{ domains: ['a.example.com'] }] }, 'registries[0].instanceId: required: cri-... for an Enterprise Edition instance, "default" on Apsara Stack, "" for Personal Edition'],
    [{ registries: [{ instanceId: 'cri-a', serviceArn: 'role/x' }] }, 'registries[0].serviceArn: "role/x" is not a RAM role ARN'],
    [{ registries: [{ instanceId: 'cri-a', userArn: 'acs:ram::1:role/u' }] }, 'registries[0].userArn: needs serviceArn'],
    [{ registries: [{ instanceId: 'cri-a' }, { instanceId: 'cri-a' }] }, 'registries[1]: cn-hangzhou:cri-a is already listed by registries[0]'],
    [{ registries: [{ instanceId: '' }, { instanceId: '', region: 'cn-hangzhou' }] }, 'registries[1]: personal cn-hangzhou is already listed by registries[0]'],
    [{ registries: [{ instanceId: 'cri-a', region: 'Beijing' }] }, 'registries[0].region: "Beijing" is not a region ID'],
    [{ discovery: { enabled: 'yes' } }, 'discovery.enabled: expected true or false, got "yes"'],
    [{ discovery: { regions: [] } }, 'discovery.regions: list at least one region'],
    [{ discovery: { regions: ['cn_beijing'] } }, 'discovery.regions[0]: "cn_beijing" is not a region ID'],
    [{ discovery: { interval: '10s' } }, 'discovery.interval: at least 1m'],
    [{ discovery: { missInterval: '100ms' } }, 'discovery.missInterval: at least 1s'],
    [{ discovery: { region: ['cn-beijing'] } }, 'discovery.region: unknown field'],
    [{ endpoints: { sts: 'sts.example.com' } }, 'endpoints.sts: "sts.example.com" is not a full URL'],
    [{ endpoints: { cr: { Qingdao: 'https://cr.example.com' } } }, 'endpoints.cr.Qingdao: keys must be region IDs'],
    [{ endpoints: { cr: { 'cn-beijing': 'cr.example.com' } } }, 'endpoints.cr.cn-beijing: "cr.example.com" is not a full URL'],
  ])('rejects %j', (doc, message) => {
    // With a default region, as a cluster sets ALIBABA_CLOUD_REGION_ID: the errors under test are others.
    expect(() => parseConfig(doc, { ...ctx, regionFromEnv: 'cn-hangzhou' }, 'config.yaml')).toThrow(`config.yaml: ${message}`);
  });

  it.each([
    [{ defaultRegion: 'Hangzhou' }, 'defaultRegion: "Hangzhou" is not a region ID'],
    [{ registries: [{ instanceId: 'abc', domains: ['a.example.com'] }] }, 'registries[0].instanceId: "abc" is not an instance ID (cri-..., "default" on Apsara Stack, "" for Personal Edition)'],
    [{ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-a', domains: [] }] }, 'registries[0].domains: list at least one domain'],
    [{ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-a', domains: ['https://x'] }] }, 'registries[0].domains[0]: "https://x" is not a host name'],
    [{ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-a', domains: ['x.io'] }, { instanceId: 'cri-b', domains: ['X.io'] }] }, 'registries[1].domains: x.io is already listed by registries[0]'],
    [{ registries: [{ instanceId: 'cri-a', domain: ['x.io'] }] }, 'registries[0].domain: unknown field'],
    [{ registry: [] }, 'registry: unknown field'],
    [{ credentials: { sessionDurationSeconds: 600 } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got 600'],
    [{ credentials: { refreshThreshold: 'soon' } }, 'credentials.refreshThreshold: expected a duration'],
    [{ credentials: { sessionDurationSeconds: 900, refreshThreshold: '15m' } }, 'credentials.refreshThreshold: must be shorter'],
    [{ credentials: { cacheEntries: 0 } }, 'credentials.cacheEntries: expected a whole number from 10 to 100000, got 0'],
    [{ namespaces: { exclude: 'kube-*' } }, 'namespaces.exclude: expected a list'],
    [{ credentialProvider: { cacheDir: 'cache' } }, 'credentialProvider.cacheDir: "cache" is not an absolute path'],
    [{ credentialProvider: { oidcProviderArn: 'acs:ram::1:role/x' } }, 'credentialProvider.oidcProviderArn: "acs:ram::1:role/x" is not an OIDC provider ARN'],
    [{ credentialProvider: { cachedir: '/x' } }, 'credentialProvider.cachedir: unknown field'],
    [[], '(root): expected a mapping'],
  ])('rejects %j', (doc, message) => {
    expect(() => parseConfig(doc, ctx, 'config.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(doc, ctx, 'config.yaml')).toThrow(`config.yaml: ${message}`);
  });

  it('reads the credential provider section, from a JSON file too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const json = join(dir, 'config.json');
    const section = { cacheDir: '/run/acr-cp', oidcProviderArn: 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1' };
    writeFileSync(json, JSON.stringify({ defaultRegion: 'cn-beijing', credentialProvider: section }));
    const c = loadConfigFile(json, ctx);
    expect(c.credentialProvider).toEqual(section);
    expect(c.defaultRegion).toBe('cn-beijing');
    // A YAML flow mapping starts like JSON but is not: the YAML parser still reads it.
    writeFileSync(json, '{defaultRegion: cn-shanghai, credentialProvider: {cacheDir: /run/x}}');
    expect(loadConfigFile(json, ctx).credentialProvider.cacheDir).toBe('/run/x');
  });

  it('points at unreadable and non-YAML files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    expect(() => loadConfigFile(join(dir, 'missing.yaml'), ctx)).toThrow(/cannot read .*missing.yaml: ENOENT/);
    writeFileSync(join(dir, 'bad.yaml'), 'registries: [\n');
    expect(() => loadConfigFile(join(dir, 'bad.yaml'), ctx)).toThrow(/not valid YAML/);
  });
});

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['24h', 86_400_000],
    ['250ms', 250],
    ['1d', 86_400_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '15', 'm', '1h 30m', '-5m', '1w'])('rejects %j', (text) => expect(parseDuration(text)).toBeUndefined());
});
