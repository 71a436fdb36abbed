// The ACK credential helper's ConfigMap: the seed's fields and defaults, read from fixture files as they are.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
  const cfg = parse(data('seed-style.yaml'));

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
  const cfg = parse(data('later-version.yaml'), 'cn-qingdao-env17-d01');

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
