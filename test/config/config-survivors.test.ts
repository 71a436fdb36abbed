// What the first mutation run of src/config left alive, pinned with exact values: the remaining field names in
// refusals, anchors of the host, URL, instance and name patterns, trimming, durations with decimals, file errors,
// and the policy check's selectors and denials.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/acr/model.js';
import { parseAcrConfiguration } from '../../src/config/acr-configuration.js';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/config.js';
import { parseDuration } from '../../src/config/duration.js';
import { checkPolicy, selectorMatches, type Policy } from '../../src/config/policy.js';

const ctx = { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' };
function refusal(doc: unknown): string {
  try {
    parseConfig(doc, ctx, 'c.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.slice('c.yaml: '.length);
  }
  throw new Error(`accepted ${JSON.stringify(doc)}`);
}
const rule = (extra: Record<string, unknown>) => ({ policy: { rules: [{ name: 'r', namespaces: { names: ['a'] }, ...extra }] } });
const sel = (selector: Record<string, unknown>) => ({ policy: { rules: [{ name: 'r', namespaces: { selector } }] } });

describe('configuration refusals, the remaining fields', () => {
  it.each([
    [{ namespaces: { includes: [] } }, 'namespaces.includes: unknown field (known: include, exclude)'],
    [{ credentialHelper: { configmap: 'a/b' } }, 'credentialHelper.configmap: unknown field (known: configMap)'],
    [{ credentialHelper: [] }, 'credentialHelper: expected a mapping'],
    [{ credentials: [] }, 'credentials: expected a mapping'],
    [{ credentialProvider: [] }, 'credentialProvider: expected a mapping'],
    [{ credentialProvider: { cacheDir: 5 } }, 'credentialProvider.cacheDir: expected a string, got 5'],
    [{ credentialProvider: { oidcProviderArn: 5 } }, 'credentialProvider.oidcProviderArn: expected a string, got 5'],
    [{ registries: [{ instanceId: 'cri-a', region: 5 }] }, 'registries[0].region: expected a string, got 5'],
    [{ registries: [{ instanceId: 'cri-a', domains: 'a.example.com' }] }, 'registries[0].domains: expected a list'],
    [{ registries: [{ instanceId: 'cri-a', domains: [5] }] }, 'registries[0].domains[0]: expected a string, got 5'],
    [{ registries: [{ instanceId: 'cri-a', serviceArn: 5 }] }, 'registries[0].serviceArn: expected a string, got 5'],
    [{ registries: [{ instanceId: 'cri-a', domains: [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`] }] }, `registries[0].domains[0]: "${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}" is not a host name`],
    [{ discovery: [] }, 'discovery: expected a mapping'],
    [{ discovery: { regions: [5] } }, 'discovery.regions[0]: expected a string, got 5'],
    [{ discovery: { missInterval: '0s' } }, 'discovery.missInterval: expected a duration such as 90s, 15m or 24h, got "0s"'],
    [{ endpoints: [] }, 'endpoints: expected a mapping'],
    [{ endpoints: { rpc: 'https://x.example.com' } }, 'endpoints.rpc: unknown field (known: sts, cr, ram)'],
    [{ endpoints: { sts: 'see https://sts.example.com' } }, 'endpoints.sts: "see https://sts.example.com" is not a full URL with scheme (https://...)'],
    [{ policy: { rules: [null] } }, 'policy.rules[0]: expected a mapping'],
    [rule({ serviceArns: 'x' }), 'policy.rules[0].serviceArns: expected a list'],
    [rule({ userArns: [5] }), 'policy.rules[0].userArns[0]: expected a string, got 5'],
    [rule({ instances: 'x' }), 'policy.rules[0].instances: expected a list'],
    [rule({ instances: ['Team:cri-abc'] }), 'policy.rules[0].instances[0]: "Team:cri-abc" is not region:cri-..., a registry host or "*"'],
    [sel({ matchLabels: [] }), 'policy.rules[0].namespaces.selector.matchLabels: expected a mapping'],
    [sel({ matchExpressions: [{ key: 'a', operator: 5 }] }), 'policy.rules[0].namespaces.selector.matchExpressions[0].operator: expected a string, got 5'],
    [sel({ matchExpressions: [{ key: 'a', operator: 'In', values: 'x' }] }), 'policy.rules[0].namespaces.selector.matchExpressions[0].values: expected a list'],
  ])('%j', (doc, message) => {
    expect(refusal(doc)).toBe(message);
  });

  it('accepted: one-letter ConfigMap namespace and name, a host-like instance entry, DoesNotExist, no defaultRegion key without one', () => {
    expect(parseConfig({ credentialHelper: { configMap: 'a/b' } }, ctx).credentialHelper).toEqual({ configMap: { namespace: 'a', name: 'b' } });
    expect(parseConfig(rule({ instances: ['cri-abc.example.com'] }), ctx).policy!.rules[0]!.instances).toEqual(['cri-abc.example.com']);
    expect(parseConfig(sel({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }), ctx).policy!.rules[0]!.namespaces.selector).toEqual({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] });
    expect('defaultRegion' in parseConfig({}, { ownNamespace: 'x' })).toBe(false);
    const host253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(parseConfig({ registries: [{ instanceId: 'cri-a', domains: [host253] }] }, ctx).registries[0]!.domains).toEqual([host253]);
  });

  it('errors name their source: "configuration" by default; a file\'s errors are "(file)" with the first line of a YAML error', () => {
    expect(new ConfigError('a', 'b').message).toBe('configuration: a: b');
    expect(() => parseConfig([], ctx)).toThrow(new ConfigError('(root)', 'expected a mapping'));
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const missing = join(dir, 'missing.yaml');
    expect(() => loadConfigFile(missing, ctx)).toThrow(new ConfigError('(file)', `cannot read ${missing}: ENOENT`, missing));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'registries: [\n');
    let message = '';
    try {
      loadConfigFile(bad, ctx);
    } catch (e) {
      message = (e as Error).message;
    }
    // The yaml library's own wording, with the position (prettyErrors), on one line.
    expect(message).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: \\(file\\): not valid YAML: [^\\n]* at line \\d+, column \\d+:$`));
  });

  it('durations with decimals', () => {
    expect(parseDuration('0.25h')).toBe(900_000);
    expect(parseDuration('1.5m30s')).toBe(120_000);
    expect(parseDuration('1.h')).toBeUndefined();
  });
});

describe('acr-configuration, the remaining rules', () => {
  it('names must be whole Kubernetes names; values are trimmed', () => {
    const fail = (d: Record<string, string>) => {
      try {
        parseAcrConfiguration(d, 'cn-hangzhou');
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(fail({ 'watch-namespace': '-team' })).toBe('kube-system/acr-configuration: watch-namespace: item 1 "-team" is not a Kubernetes name');
    expect(fail({ 'watch-namespace': 'team-' })).toBe('kube-system/acr-configuration: watch-namespace: item 1 "team-" is not a Kubernetes name');
    expect(parseAcrConfiguration({ 'acr-registry-info': '- instanceId: " cri-a1 "\n  regionId: " cn-beijing "\n  assumeRoleARN: " acs:ram::1234567890123456:role/r "' }, 'cn-hangzhou').registries).toEqual([
      { edition: 'enterprise', instanceId: 'cri-a1', region: 'cn-beijing', chain: { serviceArn: 'acs:ram::1234567890123456:role/r' } },
    ]);
  });
});

describe('checkPolicy and selectors', () => {
  const SVC = 'acs:ram::1234567890123456:role/svc';
  const USR = 'acs:ram::6543210987654321:role/usr';
  const policy: Policy = {
    rules: [
      { name: 'a', namespaces: { globs: ['x-*', 'team-*'] }, serviceArns: [SVC], userArns: ['*'], instances: ['cn-beijing:cri-one'] },
      { name: 'b', namespaces: { names: ['team-a', 'only-b'] }, serviceArns: ['*'], instances: ['p.example.com', 'cn-beijing:cri-two'] },
    ],
  };
  const binding = (chain: Binding['chain'], registries: Binding['registries']): Binding => ({ chain, registries });
  const msg = (ns: string, rules: string, what: string) => `forbidden by the acr-pull-webhook policy for namespace ${ns} (${rules} apply): ${what}; ask the cluster operator to extend the policy`;

  it('allowed when one rule matching by any glob allows every hop and every registry key', () => {
    expect(checkPolicy(policy, 'team-a', undefined, binding({ serviceArn: SVC, userArn: USR }, [{ kind: 'instance', instanceId: 'cri-one', region: 'cn-beijing' }]), undefined)).toEqual({ allowed: true });
    expect(checkPolicy(policy, 'team-a', undefined, binding({}, [{ kind: 'personal', region: 'cn-hangzhou', domains: ['p.example.com'] }]), undefined)).toEqual({ allowed: true });
  });

  it('each denial says what is not allowed, and which rules apply (or none)', () => {
    const one = { kind: 'instance' as const, instanceId: 'cri-one', region: 'cn-beijing' };
    const two = { kind: 'instance' as const, instanceId: 'cri-two', region: 'cn-beijing' };
    expect(checkPolicy(policy, 'other', undefined, binding({}, [one]), undefined)).toEqual({ allowed: false, message: msg('other', 'no rule', "namespace other is not covered by any rule of the webhook's policy") });
    expect(checkPolicy(policy, 'team-b', undefined, binding({ serviceArn: USR }, [one]), undefined)).toEqual({ allowed: false, message: msg('team-b', 'rules a', `service role ${USR} is not allowed`) });
    expect(checkPolicy(policy, 'only-b', undefined, binding({ serviceArn: SVC, userArn: USR }, [two]), undefined)).toEqual({ allowed: false, message: msg('only-b', 'rules b', `user role ${USR} is not allowed`) });
    expect(checkPolicy(policy, 'team-b', undefined, binding({ serviceArn: SVC }, [one, { kind: 'personal', region: 'cn-hangzhou', domains: ['p.example.com', 'q.example.com'] }]), undefined)).toEqual({
      allowed: false,
      message: msg('team-b', 'rules a', 'registry p.example.com, q.example.com is not allowed'),
    });
    expect(checkPolicy(policy, 'team-b', undefined, binding({ serviceArn: SVC }, [{ kind: 'instance-name', instanceName: 'x', region: 'cn-beijing' }]), undefined)).toEqual({
      allowed: false,
      message: msg('team-b', 'rules a', 'registry x-registry.cn-beijing.cr.aliyuncs.com is not allowed'),
    });
    // Each part allowed by some rule, but no single rule allows them all.
    expect(checkPolicy(policy, 'team-a', undefined, binding({ serviceArn: SVC, userArn: USR }, [two]), undefined)).toEqual({
      allowed: false,
      message: msg('team-a', 'rules a, b', 'this combination of roles and registries is not allowed by any single rule'),
    });
  });

  it('selectors: In needs the label with a listed value; DoesNotExist the label absent', () => {
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] }, { other: 'a' })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'In' }] }, { team: 'a' })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'NotIn' }] }, { team: 'a' })).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['a'] }] }, {})).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, { team: '' })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, { team: '' })).toBe(true);
    expect(selectorMatches({ matchLabels: { team: 'a' } }, {})).toBe(false);
  });
});
