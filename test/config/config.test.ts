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
      namespaces: { include: [], exclude: [] },
      imageCacheSecretNamespace: 'acr-pull-webhook',
      credentials: { sessionDurationSeconds: 3600, refreshThresholdMs: 15 * 60_000, externalIds: {}, cacheEntries: 1000 },
      secrets: { idleTimeoutMs: 24 * 3_600_000, refreshIntervalMs: 30_000 },
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
    const policy = { policy: { rules: [{ name: 'a', namespaces: { names: ['a'] }, instances: ['cri-abc123'] }] } };
    expect(() => parseConfig(policy, ctx, 'config.yaml')).toThrow(
      'config.yaml: policy.rules[0].instances[0]: "cri-abc123" has no region prefix (cn-beijing:cri-abc123), and there is no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set',
    );
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
    expect(c.registries).toEqual([{ instanceId: 'cri-abc123', region: 'cn-shanghai', domains: ['reg.example.com', 'myreg-registry.cn-shanghai.cr.aliyuncs.com'] }]);
    expect(c.namespaces.exclude).toEqual(['sandbox-*']);
    expect(c.imageCacheSecretNamespace).toBe('eci-cache');
    expect(c.credentials).toEqual({ sessionDurationSeconds: 7200, refreshThresholdMs: 20 * 60_000, externalIds: {}, cacheEntries: 250 });
    expect(c.secrets.idleTimeoutMs).toBe(90 * 60_000);
  });

  it.each([
    [{ defaultRegion: 'Hangzhou' }, 'defaultRegion: "Hangzhou" is not a region ID'],
    [{ registries: [{ instanceId: 'abc', domains: ['a.example.com'] }] }, 'registries[0].instanceId: "abc" is not an instance ID'],
    [{ registries: [{ instanceId: 'cri-a', domains: [] }] }, 'registries[0].domains: list at least one domain'],
    [{ registries: [{ instanceId: 'cri-a', domains: ['https://x'] }] }, 'registries[0].domains[0]: "https://x" is not a host name'],
    [{ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-a', domains: ['x.io'] }, { instanceId: 'cri-b', domains: ['X.io'] }] }, 'registries[1].domains: x.io is already listed by registries[0]'],
    [{ registries: [{ instanceId: 'cri-a', domain: ['x.io'] }] }, 'registries[0].domain: unknown field'],
    [{ registry: [] }, 'registry: unknown field'],
    [{ credentials: { sessionDurationSeconds: 600 } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got 600'],
    [{ credentials: { refreshThreshold: 'soon' } }, 'credentials.refreshThreshold: expected a duration'],
    [{ credentials: { sessionDurationSeconds: 900, refreshThreshold: '15m' } }, 'credentials.refreshThreshold: must be shorter'],
    [{ credentials: { cacheEntries: 0 } }, 'credentials.cacheEntries: expected a whole number from 10 to 100000, got 0'],
    [{ namespaces: { exclude: 'kube-*' } }, 'namespaces.exclude: expected a list'],
    [[], '(root): expected a mapping'],
  ])('rejects %j', (doc, message) => {
    expect(() => parseConfig(doc, ctx, 'config.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(doc, ctx, 'config.yaml')).toThrow(`config.yaml: ${message}`);
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
