// The configuration file's text patterns at their limits, with whole messages: host names (label lengths, one-letter
// labels, ports), the credential helper's ConfigMap location (namespace and name lengths, no dot in a namespace),
// endpoint URLs (http too, paths of several characters, a host before the path), policy instance entries, and
// the policy rule checks no other test reached (a rule without namespaces, a selector with labels only).
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Config = typeof import('../../src/config/config.js');
let ConfigError: Config['ConfigError'];
let parseConfig: Config['parseConfig'];

beforeEach(async () => {
  // Loaded per test: the host, ExternalId and URL patterns are built when the module loads.
  vi.resetModules();
  ({ ConfigError, parseConfig } = await import('../../src/config/config.js'));
});

const ctx = { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' };
const ARN = 'acs:ram::1234567890123456:role/acr-pull';

function refusal(doc: unknown): string {
  try {
    parseConfig(doc, ctx, 'c.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(doc)}`);
}
const domains = (...hosts: string[]) => ({ registries: [{ instanceId: 'cri-a', domains: hosts }] });
const configMap = (location: string) => ({ credentialHelper: { configMap: location } });
const rule = (extra: Record<string, unknown>) => ({ policy: { rules: [{ name: 'r', namespaces: { names: ['a'] }, ...extra }] } });

describe('host names (registries[].domains, policy instances)', () => {
  it('accepted: a one-letter label after the first, a 63-character label anywhere, a five-digit port', () => {
    const hosts = ['r.x.io', 'a.b.c', `x.${'b'.repeat(63)}.com`, `${'a'.repeat(63)}.example.com`, 'registry.example.com:65535', 'localhost:5'];
    expect(parseConfig(domains(...hosts), ctx).registries[0]!.domains).toEqual(hosts);
  });

  it.each([
    `${'a'.repeat(64)}.example.com`,
    `x.${'b'.repeat(64)}.com`,
    'registry.example.com:123456',
    'registry.example.com:',
    'registry.example.com:port',
    'x..example.com',
    'x.-b.com',
    'x.b-.com',
  ])('refused: %s', (host) => {
    expect(refusal(domains(host))).toBe(`c.yaml: registries[0].domains[0]: ${JSON.stringify(host)} is not a host name`);
  });

  it('at most 253 characters in all, the port included', () => {
    const at253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    const at254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`;
    const port254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}:1`;
    expect(at253.length).toBe(253);
    expect(parseConfig(domains(at253), ctx).registries[0]!.domains).toEqual([at253]);
    for (const host of [at254, port254]) {
      expect(refusal(domains(host)), host).toBe(`c.yaml: registries[0].domains[0]: ${JSON.stringify(host)} is not a host name`);
    }
  });

  it('the whole text: a valid host after or before junk is refused', () => {
    for (const host of ['a_b.example.com', 'registry.example.com_x', 'registry.example.com/x', 'registry.example.com:80x']) {
      expect(refusal(domains(host)), host).toBe(`c.yaml: registries[0].domains[0]: ${JSON.stringify(host)} is not a host name`);
    }
  });

  it('a policy instance entry that is a host takes a port of up to five digits', () => {
    expect(parseConfig(rule({ instances: ['Registry.Example.com:65535', 'r.x.io'] }), ctx).policy!.rules[0]!.instances).toEqual(['registry.example.com:65535', 'r.x.io']);
    expect(refusal(rule({ instances: ['registry.example.com:123456'] }))).toBe(
      'c.yaml: policy.rules[0].instances[0]: "registry.example.com:123456" is not region:cri-..., a registry host or "*"',
    );
  });
});

describe('the credential helper ConfigMap location', () => {
  it('accepted: a 63-character namespace, a 253-character name', () => {
    expect(parseConfig(configMap(`${'n'.repeat(63)}/x`), ctx).credentialHelper).toEqual({ configMap: { namespace: 'n'.repeat(63), name: 'x' } });
    expect(parseConfig(configMap(`x/${'m'.repeat(253)}`), ctx).credentialHelper).toEqual({ configMap: { namespace: 'x', name: 'm'.repeat(253) } });
  });

  it.each([`${'n'.repeat(64)}/x`, `x/${'m'.repeat(254)}`, 'ops.team/acr', 'ops/acr.', 'ops/.acr', '-ops/acr', 'ops/acr_config'])('refused: %s', (location) => {
    expect(refusal(configMap(location))).toBe(`c.yaml: credentialHelper.configMap: ${JSON.stringify(location)} is not namespace/name (or "" to not read one)`);
  });
});

describe('endpoint URLs', () => {
  it('accepted: http as well as https, a port, paths of several characters', () => {
    const endpoints = { sts: 'http://127.0.0.1:8080', ram: 'https://ram.example.com/', cr: { 'cn-beijing': 'https://cr.example.com/api/v1' } };
    expect(parseConfig({ endpoints }, ctx).endpoints).toEqual(endpoints);
    expect(parseConfig({ endpoints: { cr: 'http://cr.{region}.example.com/v2' } }, ctx).endpoints).toEqual({ cr: 'http://cr.{region}.example.com/v2' });
  });

  it.each(['xhttps://sts.example.com', ' https://sts.example.com', 'https://sts.example.com x', 'https://sts.example.com/a b', 'https:///sts', 'https://', 'https:// sts.example.com', 'httpss://sts.example.com', 'HTTPS://sts.example.com', 'https:sts.example.com'])('refused: %j', (url) => {
    expect(refusal({ endpoints: { sts: url } })).toBe(`c.yaml: endpoints.sts: ${JSON.stringify(url)} is not a full URL with scheme (https://...)`);
  });
});

describe('policy instance entries', () => {
  it.each(['cn-beijing:cri-a-b', 'cn.beijing:cri-a', 'cn-beijing:cri-', ':cri-a', 'cn-beijing:cri-a:x'])('refused: %j', (entry) => {
    expect(refusal(rule({ instances: [entry] }))).toBe(`c.yaml: policy.rules[0].instances[0]: ${JSON.stringify(entry)} is not region:cri-..., a registry host or "*"`);
  });

  it('accepted: a region prefix with digits, an ID of one character', () => {
    expect(parseConfig(rule({ instances: ['cn-qingdao-env17-d01:cri-0', 'cri-x'] }), ctx).policy!.rules[0]!.instances).toEqual(['cn-qingdao-env17-d01:cri-0', 'cn-hangzhou:cri-x']);
  });
});

describe('policy rules', () => {
  it('a rule must say which namespaces it covers', () => {
    expect(refusal({ policy: { rules: [{ name: 'r', namespaces: {} }] } })).toBe('c.yaml: policy.rules[0].namespaces: give names, globs or a selector');
    expect(refusal({ policy: { rules: [{ name: 'ok', namespaces: { globs: ['*'] } }, { name: 'r2', namespaces: {} }] } })).toBe(
      'c.yaml: policy.rules[1].namespaces: give names, globs or a selector',
    );
  });

  it('each of names, globs or a selector is enough on its own', () => {
    const rules = parseConfig(
      {
        policy: {
          rules: [
            { name: 'n', namespaces: { names: ['a'] } },
            { name: 'g', namespaces: { globs: ['b-*'] } },
            { name: 's', namespaces: { selector: { matchLabels: { tier: 'prod' } } } },
          ],
        },
      },
      ctx,
    ).policy!.rules.map((r) => r.namespaces);
    expect(rules).toStrictEqual([{ names: ['a'] }, { globs: ['b-*'] }, { selector: { matchLabels: { tier: 'prod' } } }]);
  });

  it('a selector with expressions only has no matchLabels, one with labels only no matchExpressions', () => {
    const selector = (s: Record<string, unknown>) => parseConfig({ policy: { rules: [{ name: 's', namespaces: { selector: s } }] } }, ctx).policy!.rules[0]!.namespaces.selector;
    expect(selector({ matchLabels: { tier: 'prod' } })).toStrictEqual({ matchLabels: { tier: 'prod' } });
    expect(selector({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a'] }] })).toStrictEqual({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a'] }] });
    expect(selector({})).toStrictEqual({});
  });
});

describe('ExternalIds', () => {
  it('take "/" and ":" like an ARN inside them', () => {
    expect(parseConfig({ credentials: { externalIds: { [ARN]: 'a/b' } } }, ctx).credentials.externalIds).toEqual({ [ARN]: 'a/b' });
    expect(parseConfig({ credentials: { externalIds: { [ARN]: 'acs:x' } } }, ctx).credentials.externalIds).toEqual({ [ARN]: 'acs:x' });
  });

  it('the whole value: a space anywhere, or one character past 1224, is refused', () => {
    expect(parseConfig({ credentials: { externalIds: { [ARN]: 'x'.repeat(1224) } } }, ctx).credentials.externalIds).toEqual({ [ARN]: 'x'.repeat(1224) });
    for (const id of ['ab cd', ' abcd', 'abcd ', 'ab\ncd', 'x'.repeat(1225)]) {
      expect(refusal({ credentials: { externalIds: { [ARN]: id } } }), id).toBe(
        `c.yaml: credentials.externalIds[${JSON.stringify(ARN)}]: an ExternalId is 2-1224 characters of letters, digits and +=,.@:/-_`,
      );
    }
  });
});
