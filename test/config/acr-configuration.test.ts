// The ACK credential helper's ConfigMap: the seed's fields and defaults, read from fixture files as they are.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { credentialHelper, helperBindings } from '../../src/acr/credential-helper.js';
import { ConfigError } from '../../src/config/config.js';
import { parseAcrConfiguration } from '../../src/config/acr-configuration.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/acr-configuration');
const data = (file: string): Record<string, string> => parseYaml(readFileSync(join(FIXTURES, file), 'utf8')).data;
const SOURCE = 'kube-system/acr-configuration';
const parse = (d: Record<string, string>, region = 'cn-hangzhou') => parseAcrConfiguration(d, region);
const fails = (d: Record<string, string>) => {
  try {
    parse(d);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('acr-configuration (the seed-style fixture, verbatim)', () => {
  let cfg!: ReturnType<typeof parse>;
  beforeEach(() => {
    cfg = parse(data('seed-style.yaml'));
  });

  it('reads every documented field', () => {
    expect(cfg.scope).toEqual({ serviceAccounts: ['default'], namespaces: 'all' });
    expect(cfg.expiringThresholdMs).toBe(15 * 60_000);
    expect(cfg.registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-demo0000000001', region: 'cn-hangzhou', domains: ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'], chain: {} },
      { edition: 'personal', region: 'cn-hangzhou', chain: {} },
    ]);
  });

  it('names what it accepts without acting on it, and why: notify-email; acr-api-version 2018-12-01 is what it calls anyway', () => {
    expect(cfg.notHonoured).toEqual([expect.stringMatching(/^notify-email \(no mail is sent: failures are Warning Events .* acr_webhook_credential_helper_failures_total\)$/)]);
  });

  it('gives every default ServiceAccount of every namespace one Secret for the whole registry list (the helper\'s one Secret per namespace)', () => {
    const helper = credentialHelper(cfg.scope, helperBindings(cfg.registries), cfg.expiringThresholdMs, (ns) => ns === 'kube-system');
    expect(helper.covers('team-a', 'default')).toBe(true);
    expect(helper.covers('team-a', 'builder')).toBe(false);
    expect(helper.covers('kube-system', 'default')).toBe(false);
    const [spec, ...rest] = helper.specs('team-a');
    expect(rest).toEqual([]);
    expect(spec!.name).toMatch(/^acr-pull-[0-9a-f]{20}$/);
    expect(spec).toMatchObject({ namespace: 'team-a', requester: 'team-a' });
    expect(spec!.binding).toEqual({
      chain: {},
      registries: [
        { kind: 'instance', instanceId: 'cri-demo0000000001', region: 'cn-hangzhou', domains: ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'] },
        // Standard (Personal) Edition of the cluster's region: its classic hosts (crpi-* ones cannot be listed).
        {
          kind: 'personal',
          region: 'cn-hangzhou',
          domains: [
            'registry.cn-hangzhou.aliyuncs.com',
            'registry-vpc.cn-hangzhou.aliyuncs.com',
            'registry-internal.cn-hangzhou.aliyuncs.com',
            'registry-intl.cn-hangzhou.aliyuncs.com',
            'registry-intl-vpc.cn-hangzhou.aliyuncs.com',
            'registry-intl-internal.cn-hangzhou.aliyuncs.com',
          ],
        },
      ],
    });
    // The same name in every namespace and on every call: ServiceAccounts, Pods and replicas agree on it.
    expect(helper.specs('team-b')[0]!.name).toBe(spec!.name);
    expect(helper.specs('team-a')).toBe(helper.specs('team-a'));
  });
});

describe('acr-configuration (a later version: regionId, assumeRoleARN, lists)', () => {
  let cfg!: ReturnType<typeof parse>;
  beforeEach(() => {
    cfg = parse(data('later-version.yaml'), 'cn-qingdao-env17-d01');
  });

  it('maps regionId to the region, assumeRoleARN to the first hop, and leaves empty ones unset', () => {
    expect(cfg.scope).toEqual({ serviceAccounts: ['default', 'builder'], namespaces: ['team-a', 'team-b'] });
    expect(cfg.expiringThresholdMs).toBe(30 * 60_000);
    expect(cfg.registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-owner000000001', region: 'cn-beijing', chain: { serviceArn: 'acs:ram::6543210987654321:role/acr-pull-cross' } },
      { edition: 'enterprise', instanceId: 'cri-local000000001', region: 'cn-qingdao-env17-d01', chain: {} },
    ]);
    expect(cfg.notHonoured).toEqual([]);
  });

  it('one Secret per credential chain', () => {
    const helper = credentialHelper(cfg.scope, helperBindings(cfg.registries), cfg.expiringThresholdMs, () => false);
    expect(helper.specs('team-a').map((s) => s.binding.chain)).toEqual([{ serviceArn: 'acs:ram::6543210987654321:role/acr-pull-cross' }, {}]);
    expect(helper.covers('team-a', 'builder')).toBe(true);
    expect(helper.covers('team-c', 'builder')).toBe(false);
    expect(helper.covers('team-b', 'other')).toBe(false);
  });
});

describe('acr-configuration defaults and mistakes', () => {
  it('an empty ConfigMap: the default ServiceAccount of the default namespace, 15m, the Personal Edition registry of the region', () => {
    const cfg = parse({});
    expect(cfg.scope).toEqual({ serviceAccounts: ['default'], namespaces: ['default'] });
    expect(cfg.expiringThresholdMs).toBe(15 * 60_000);
    expect(cfg.registries).toEqual([{ edition: 'personal', region: 'cn-hangzhou', chain: {} }]);
    expect(parse({ 'acr-registry-info': '' }).registries).toEqual([{ edition: 'personal', region: 'cn-hangzhou', chain: {} }]);
  });

  it('"*" is every ServiceAccount, "all" every namespace; Apsara Stack\'s instanceId default; a YAML list of domains', () => {
    const cfg = parse({ 'service-account': '*', 'watch-namespace': 'all', 'acr-registry-info': '- instanceId: default\n  domains: [registry.acs.example.com]\n' }, 'cn-qingdao-env17-d01');
    expect(cfg.scope).toEqual({ serviceAccounts: '*', namespaces: 'all' });
    expect(cfg.registries).toEqual([{ edition: 'enterprise', instanceId: 'default', region: 'cn-qingdao-env17-d01', domains: ['registry.acs.example.com'], chain: {} }]);
    const helper = credentialHelper(cfg.scope, helperBindings(cfg.registries), cfg.expiringThresholdMs, () => false);
    expect(helper.covers('anything', 'any-sa')).toBe(true);
  });

  it('an entry key named like an Object property (constructor, toString) is an unknown field, not a crash in the message', () => {
    const cfg = parse({ 'acr-registry-info': '- instanceId: cri-a1\n  constructor: 1\n  toString: x\n' });
    expect(cfg.notHonoured).toEqual([
      'acr-registry-info[0].constructor (not a field acr-pull-webhook knows; ignored)',
      'acr-registry-info[0].toString (not a field acr-pull-webhook knows; ignored)',
    ]);
    expect(cfg.registries).toHaveLength(1);
  });

  it('unknown fields are accepted and named in the notice; another acr-api-version too', () => {
    const cfg = parse({ 'acr-api-version': '2016-06-07', 'webhook-configuration': 'enable: true', 'acr-registry-info': '- instanceId: cri-a1\n  expireDuration: 3600\n' });
    expect(cfg.notHonoured).toEqual([
      'webhook-configuration (not a field acr-pull-webhook knows; ignored)',
      expect.stringMatching(/^acr-api-version "2016-06-07" \(the webhook calls Enterprise Edition 2018-12-01/),
      'acr-registry-info[0].expireDuration (not a field acr-pull-webhook knows; ignored)',
    ]);
  });

  it.each([
    [{ 'service_account': 'default' }, 'service_account: unknown field: did you mean "service-account"?'],
    [{ 'service-account': 'default,*' }, 'service-account: "*" means every one and cannot be combined with names'],
    [{ 'watch-namespace': 'team-a,Team B' }, 'watch-namespace: item 2 "Team B" is not a Kubernetes name'],
    [{ 'expiring-threshold': 'soon' }, 'expiring-threshold: expected a duration such as 15m or 1h, got "soon"'],
    // The seed's own sample, as extracted, lost the indentation of `domains`: a YAML error, said plainly.
    [{ 'acr-registry-info': '- instanceId: "cri-xxx"\ndomains: "xxx.com,yyy.com"\n' }, 'acr-registry-info: not valid YAML'],
    [{ 'acr-registry-info': 'instanceId: cri-a1' }, 'acr-registry-info: expected a YAML list of entries'],
    [{ 'acr-registry-info': '- instanceID: cri-a1' }, 'acr-registry-info[0].instanceID: unknown field: did you mean "instanceId"?'],
    [{ 'acr-registry-info': '- instanceId: crixxx' }, 'acr-registry-info[0].instanceId: "crixxx" is not an instance ID'],
    [{ 'acr-registry-info': '- instanceId: cri-a1\n  regionId: Beijing' }, 'acr-registry-info[0].regionId: "Beijing" is not a region ID'],
    [{ 'acr-registry-info': '- instanceId: cri-a1\n  assumeRoleARN: role/x' }, 'acr-registry-info[0].assumeRoleARN: "role/x" is not a RAM role ARN'],
    [{ 'acr-registry-info': '- instanceId: cri-a1\n  domains: "https://x.example.com"' }, 'acr-registry-info[0].domains[0]: "https://x.example.com" is not a host name'],
    [{ 'acr-registry-info': '- instanceId: ""\n- instanceId: ""' }, 'acr-registry-info[1]: personal cn-hangzhou is already listed by acr-registry-info[0]'],
  ])('refuses %j, naming the field', (d, message) => {
    expect(fails(d as Record<string, string>)).toContain(`${SOURCE}: ${message}`);
  });
});

describe('acr-configuration without a default region (neither defaultRegion nor ALIBABA_CLOUD_REGION_ID)', () => {
  it('refuses what would need the cluster\'s region, naming the field and the fix, and reads what names its region', () => {
    const noRegion = (d: Record<string, string>) => () => parseAcrConfiguration(d, undefined);
    expect(noRegion({ 'acr-registry-info': '' })).toThrow(
      `${SOURCE}: acr-registry-info: empty means the cluster's region, and the webhook has none: set ALIBABA_CLOUD_REGION_ID`,
    );
    expect(noRegion({ 'acr-registry-info': '- instanceId: cri-abc123' })).toThrow('acr-registry-info[0].regionId: required: no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set');
    expect(parseAcrConfiguration({ 'acr-registry-info': '- instanceId: cri-abc123\n  regionId: cn-beijing' }, undefined).registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-abc123', region: 'cn-beijing', chain: {} },
    ]);
  });
});

describe('acr-configuration, field by field (exact values and whole messages)', () => {
  it('lists are trimmed and deduplicated; "*" and "all" only alone; an empty expiring-threshold is the default', () => {
    const cfg = parse({ 'service-account': ' builder , default,builder ', 'watch-namespace': ' team-a ', 'expiring-threshold': ' 1h30m ' });
    expect(cfg.scope).toEqual({ serviceAccounts: ['builder', 'default'], namespaces: ['team-a'] });
    expect(cfg.expiringThresholdMs).toBe(5_400_000);
    expect(parse({ 'expiring-threshold': '  ', 'service-account': ' ', 'watch-namespace': '' })).toMatchObject({
      scope: { serviceAccounts: ['default'], namespaces: ['default'] },
      expiringThresholdMs: 900_000,
    });
    expect(parse({ 'service-account': ' * ', 'watch-namespace': ' all ' }).scope).toEqual({ serviceAccounts: '*', namespaces: 'all' });
    // "all" is a ServiceAccount name like any other, and "*" a (bad) namespace name.
    expect(parse({ 'service-account': 'all' }).scope.serviceAccounts).toEqual(['all']);
    expect(fails({ 'watch-namespace': '*' })).toBe(`${SOURCE}: watch-namespace: item 1 "*" is not a Kubernetes name`);
    expect(fails({ 'watch-namespace': 'a,all' })).toBe(`${SOURCE}: watch-namespace: "all" means every one and cannot be combined with names`);
    expect(fails({ 'service-account': 'a,,b' })).toBe(`${SOURCE}: service-account: item 2 "" is not a Kubernetes name`);
    expect(fails({ 'expiring-threshold': '0s' })).toBe(`${SOURCE}: expiring-threshold: expected a duration such as 15m or 1h, got "0s"`);
    expect(fails({ 'Watch_Namespace': 'a' })).toBe(`${SOURCE}: Watch_Namespace: unknown field: did you mean "watch-namespace"?`);
  });

  it('acr-api-version 2018-12-01 and an absent notify-email add nothing to the notice; an empty notify-email is named', () => {
    expect(parse({ 'acr-api-version': ' 2018-12-01 ' }).notHonoured).toEqual([]);
    expect(parse({ 'acr-api-version': '' }).notHonoured).toEqual([]);
    expect(parse({ 'notify-email': '' }).notHonoured).toEqual([
      'notify-email (no mail is sent: failures are Warning Events on the ServiceAccount or Secret, and the metric acr_webhook_credential_helper_failures_total)',
    ]);
    expect(parse({ 'acr-api-version': '2019-01-01' }).notHonoured).toEqual([
      'acr-api-version "2019-01-01" (the webhook calls Enterprise Edition 2018-12-01 and Personal Edition 2016-06-07)',
    ]);
  });

  it('entries: numbers as text, null and empty fields unset, domains as a string or a list with empty items dropped', () => {
    const info = [
      '- instanceId: cri-a1',
      '  regionId: ""',
      '  assumeRoleARN: " "',
      '  domains: " a.example.com , ,b.example.com "',
      '- instanceId: cri-b2',
      '  domains: ["c.example.com", " "]',
      '  regionId: cn-beijing',
      '- instanceId: default',
      '  domains: ""',
      '  regionId: null',
      '- regionId: cn-shanghai',
      '  assumeRoleARN: acs:ram::1234567890123456:role/pull',
    ].join('\n');
    expect(parse({ 'acr-registry-info': info }).registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-a1', region: 'cn-hangzhou', domains: ['a.example.com', 'b.example.com'], chain: {} },
      { edition: 'enterprise', instanceId: 'cri-b2', region: 'cn-beijing', domains: ['c.example.com'], chain: {} },
      { edition: 'enterprise', instanceId: 'default', region: 'cn-hangzhou', chain: {} },
      { edition: 'personal', region: 'cn-shanghai', chain: { serviceArn: 'acs:ram::1234567890123456:role/pull' } },
    ]);
    expect(parse({ 'acr-registry-info': '[]' }).registries).toEqual([{ edition: 'personal', region: 'cn-hangzhou', chain: {} }]);
  });

  it.each([
    ['- cri-a1', 'acr-registry-info[0]: expected a mapping with instanceId and domains'],
    ['- null', 'acr-registry-info[0]: expected a mapping with instanceId and domains'],
    ['- [cri-a1]', 'acr-registry-info[0]: expected a mapping with instanceId and domains'],
    ['- instanceId: cri-a1\n  domains: 5', 'acr-registry-info[0].domains: expected comma-separated host names'],
    ['- instanceId: cri-a1\n  domains: [a.example.com, 5]', 'acr-registry-info[0].domains[1]: expected a host name'],
    ['- instanceId: [cri-a1]', 'acr-registry-info[0].instanceId: expected a string, got ["cri-a1"]'],
    ['- instanceId: cri-a1\n  RegionID: cn-beijing', 'acr-registry-info[0].RegionID: unknown field: did you mean "regionId"?'],
    ['- instanceId: 12', 'acr-registry-info[0].instanceId: "12" is not an instance ID (cri-..., "default" on Apsara Stack, "" for Personal Edition)'],
    ['- instanceId: cri-a1\n  regionId: cn_beijing', 'acr-registry-info[0].regionId: "cn_beijing" is not a region ID'],
    ['- instanceId: cri-a1\n  assumeRoleARN: 5', 'acr-registry-info[0].assumeRoleARN: "5" is not a RAM role ARN (acs:ram::<account id>:role/<name>)'],
  ])('refuses %j', (info, message) => {
    expect(fails({ 'acr-registry-info': info })).toBe(`${SOURCE}: ${message}`);
  });

  it('a YAML error: the parser\'s first line (its wording is the yaml library\'s), then how to indent an entry', () => {
    expect(fails({ 'acr-registry-info': '"- instanceId: cri-a1\n' })).toMatch(
      /^kube-system\/acr-configuration: acr-registry-info: not valid YAML \([^\n]*quote[^\n]*\); indent each entry's fields under its "- ", e\.g\. "- instanceId: cri-xxx" then " {2}domains: a\.example\.com"$/,
    );
  });
});

describe('acr-configuration, names at their limits and near-miss field names', () => {
  it('a name is 1 to 253 characters of lower-case letters, digits, "-" and ".", starting and ending with a letter or digit', () => {
    const long = 'a'.repeat(253);
    expect(parse({ 'service-account': `sa.v2,${long},b,b-2` }).scope.serviceAccounts).toEqual(['sa.v2', long, 'b', 'b-2']);
    expect(fails({ 'service-account': `b,${'a'.repeat(254)}` })).toBe(`${SOURCE}: service-account: item 2 "${'a'.repeat(254)}" is not a Kubernetes name`);
    expect(fails({ 'watch-namespace': 'team.' })).toBe(`${SOURCE}: watch-namespace: item 1 "team." is not a Kubernetes name`);
    expect(fails({ 'watch-namespace': 'team_a' })).toBe(`${SOURCE}: watch-namespace: item 1 "team_a" is not a Kubernetes name`);
    expect(fails({ 'watch-namespace': 'x,team a' })).toBe(`${SOURCE}: watch-namespace: item 2 "team a" is not a Kubernetes name`);
  });

  it('every "_" of a field name is read as "-" when suggesting the field meant', () => {
    expect(fails({ 'acr_registry_info': '' })).toBe(`${SOURCE}: acr_registry_info: unknown field: did you mean "acr-registry-info"?`);
    expect(fails({ 'ACR_API_VERSION': '2018-12-01' })).toBe(`${SOURCE}: ACR_API_VERSION: unknown field: did you mean "acr-api-version"?`);
    // Not a near miss: named in the notice instead.
    expect(parse({ 'acr registry info': '' }).notHonoured).toEqual(['acr registry info (not a field acr-pull-webhook knows; ignored)']);
  });
});
