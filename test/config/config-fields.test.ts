// Configuration fields with exact results: every refusal is compared as a whole message (field and detail), and
// accepted values as parsed, so that a changed limit, key list or hint shows.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/config.js';

const ctx = { ownNamespace: 'acr-pull-webhook', regionFromEnv: 'cn-hangzhou' };
const ARN = 'acs:ram::1234567890123456:role/acr-pull';

function refusal(doc: unknown): string {
  try {
    parseConfig(doc, ctx, 'config.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(doc)}`);
}

const rule = (extra: Record<string, unknown>) => ({ policy: { rules: [{ name: 'r', namespaces: { names: ['a'] }, ...extra }] } });

describe('refusals, whole messages', () => {
  it.each([
    // Shapes of values, through every helper.
    [{ namespaces: [] }, 'namespaces: expected a mapping'],
    [{ namespaces: { include: [3] } }, 'namespaces.include[0]: expected a string, got 3'],
    [{ namespaces: { exclude: ['a', { b: 1 }] } }, 'namespaces.exclude[1]: expected a string, got {"b":1}'],
    [{ namespaces: { include: 'x' } }, 'namespaces.include: expected a list'],
    [{ imageCacheSecretNamespace: 5 }, 'imageCacheSecretNamespace: expected a string, got 5'],
    [{ defaultRegion: 7 }, 'defaultRegion: expected a string, got 7'],
    [{ discovery: { enabled: true, regions: 'cn-beijing' } }, 'discovery.regions: expected a list'],
    [{ discovery: { personalEdition: 1 } }, 'discovery.personalEdition: expected true or false, got 1'],
    [{ discovery: { regions: [] } }, 'discovery.regions: list at least one region, or leave the field out for the default region'],
    [{ discovery: { interval: '59s' } }, 'discovery.interval: at least 1m: each refresh lists every instance of every region'],
    [{ discovery: { missInterval: '999ms' } }, 'discovery.missInterval: at least 1s: every Pod of a foreign instance could otherwise cause a refresh'],
    [{ discovery: { interval: 600 } }, 'discovery.interval: expected a duration such as 90s, 15m or 24h, got 600'],
    [{ discovery: { interval: '0s' } }, 'discovery.interval: expected a duration such as 90s, 15m or 24h, got "0s"'],
    [{ credentials: { sessionDurationSeconds: 43201 } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got 43201'],
    [{ credentials: { sessionDurationSeconds: 899 } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got 899'],
    [{ credentials: { sessionDurationSeconds: 1000.5 } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got 1000.5'],
    [{ credentials: { sessionDurationSeconds: '3600' } }, 'credentials.sessionDurationSeconds: expected a whole number from 900 to 43200, got "3600"'],
    [{ credentials: { cacheEntries: 100_001 } }, 'credentials.cacheEntries: expected a whole number from 10 to 100000, got 100001'],
    [{ credentials: { cacheEntries: 9 } }, 'credentials.cacheEntries: expected a whole number from 10 to 100000, got 9'],
    [{ credentials: { sessionDurationSeconds: 900, refreshThreshold: '15m' } }, 'credentials.refreshThreshold: must be shorter than credentials.sessionDurationSeconds, or every token is stale at birth'],
    [{ credentials: { ttl: 1 } }, 'credentials.ttl: unknown field (known: sessionDurationSeconds, refreshThreshold, externalIds, cacheEntries)'],
    [{ secrets: { idle: '1h' } }, 'secrets.idle: unknown field (known: idleTimeout, refreshInterval)'],
    [{ secrets: { idleTimeout: '1d1' } }, 'secrets.idleTimeout: expected a duration such as 90s, 15m or 24h, got "1d1"'],
    [{ secrets: { refreshInterval: true } }, 'secrets.refreshInterval: expected a duration such as 90s, 15m or 24h, got true'],
    [{ secrets: [] }, 'secrets: expected a mapping'],
    [{ regions: [] }, 'regions: unknown field (known: defaultRegion, registries, discovery, endpoints, namespaces, imageCacheSecretNamespace, credentials, secrets, policy, credentialHelper, credentialProvider)'],
    [{ registries: [{ instanceId: 'cri-a', userArn: ARN }] }, "registries[0].userArn: needs serviceArn: the user role is assumed with the service role's credentials"],
    [{ registries: [{ instanceId: 'cri-a', serviceArn: 'role/x' }] }, 'registries[0].serviceArn: "role/x" is not a RAM role ARN (acs:ram::<account id>:role/<name>)'],
    [{ registries: [{ instanceId: 'cri-a', domains: [] }] }, 'registries[0].domains: list at least one domain, or leave the field out to serve every domain of the registry'],
    [{ registries: [{ instanceId: 3 }] }, 'registries[0].instanceId: expected a string, got 3'],
    [{ registries: {} }, 'registries: expected a list'],
    [{ registries: ['cri-a'] }, 'registries[0]: expected a mapping'],
    [{ endpoints: { ram: 'ram.example.com' } }, 'endpoints.ram: "ram.example.com" is not a full URL with scheme (https://...)'],
    [{ endpoints: { cr: 'ftp://cr.example.com' } }, 'endpoints.cr: "ftp://cr.example.com" is not a full URL with scheme (https://...)'],
    [{ endpoints: { cr: [] } }, 'endpoints.cr: expected a mapping'],
    [{ endpoints: { sts: 'https://sts.example.com/a b' } }, 'endpoints.sts: "https://sts.example.com/a b" is not a full URL with scheme (https://...)'],
    // The credential helper's ConfigMap location.
    [{ credentialHelper: { configMap: 'a/b/c' } }, 'credentialHelper.configMap: "a/b/c" is not namespace/name (or "" to not read one)'],
    [{ credentialHelper: { configMap: 'Kube-System/acr' } }, 'credentialHelper.configMap: "Kube-System/acr" is not namespace/name (or "" to not read one)'],
    [{ credentialHelper: { configMap: 3 } }, 'credentialHelper.configMap: expected a string, got 3'],
    // ExternalIds.
    [{ credentials: { externalIds: { 'role/x': 'abc' } } }, 'credentials.externalIds["role/x"]: keys must be RAM role ARNs (acs:ram::<account id>:role/<name>)'],
    [{ credentials: { externalIds: { [ARN]: 'a' } } }, `credentials.externalIds["${ARN}"]: an ExternalId is 2-1224 characters of letters, digits and +=,.@:/-_`],
    [{ credentials: { externalIds: { [ARN]: 'x'.repeat(1225) } } }, `credentials.externalIds["${ARN}"]: an ExternalId is 2-1224 characters of letters, digits and +=,.@:/-_`],
    [{ credentials: { externalIds: { [ARN]: 'has space' } } }, `credentials.externalIds["${ARN}"]: an ExternalId is 2-1224 characters of letters, digits and +=,.@:/-_`],
    [{ credentials: { externalIds: { [ARN]: 12 } } }, `credentials.externalIds["${ARN}"]: expected a string, got 12`],
    [{ credentials: { externalIds: ['x'] } }, 'credentials.externalIds: expected a mapping'],
    // The policy.
    [{ policy: [] }, 'policy: expected a mapping'],
    [{ policy: { rule: [] } }, 'policy.rule: unknown field (known: rules)'],
    [{ policy: {} }, 'policy.rules: expected a list'],
    [{ policy: { rules: ['r'] } }, 'policy.rules[0]: expected a mapping'],
    [{ policy: { rules: [{ namespaces: { names: ['a'] } }] } }, 'policy.rules[0].name: expected a string, got undefined'],
    [{ policy: { rules: [{ name: 'r', namespaces: { names: ['a'] } }, { name: 'r', namespaces: { names: ['b'] } }] } }, 'policy.rules[1].name: "r" is used by another rule'],
    [{ policy: { rules: [{ name: 'r', namespace: {} }] } }, 'policy.rules[0].namespace: unknown field (known: name, namespaces, serviceArns, userArns, instances)'],
    [{ policy: { rules: [{ name: 'r' }] } }, 'policy.rules[0].namespaces: expected a mapping'],
    [{ policy: { rules: [{ name: 'r', namespaces: { labels: {} } }] } }, 'policy.rules[0].namespaces.labels: unknown field (known: names, globs, selector)'],
    [{ policy: { rules: [{ name: 'r', namespaces: { names: 'a' } }] } }, 'policy.rules[0].namespaces.names: expected a list'],
    [{ policy: { rules: [{ name: 'r', namespaces: { globs: ['a', 1] } }] } }, 'policy.rules[0].namespaces.globs[1]: expected a string, got 1'],
    [rule({ serviceArns: [ARN, 'role/x'] }), 'policy.rules[0].serviceArns[1]: "role/x" is not a RAM role ARN or "*"'],
    [rule({ userArns: ['acs:ram::1:role/'] }), 'policy.rules[0].userArns[0]: "acs:ram::1:role/" is not a RAM role ARN or "*"'],
    [rule({ instances: ['*', 'not a host'] }), 'policy.rules[0].instances[1]: "not a host" is not region:cri-..., a registry host or "*"'],
    [rule({ instances: ['cn-beijing:cri-ABC'] }), 'policy.rules[0].instances[0]: "cn-beijing:cri-ABC" is not region:cri-..., a registry host or "*"'],
    [{ policy: { rules: [{ name: 'r', namespaces: { selector: { labels: {} } } }] } }, 'policy.rules[0].namespaces.selector.labels: unknown field (known: matchLabels, matchExpressions)'],
    [{ policy: { rules: [{ name: 'r', namespaces: { selector: { matchLabels: { team: 1 } } } }] } }, 'policy.rules[0].namespaces.selector.matchLabels.team: expected a string, got 1'],
    [{ policy: { rules: [{ name: 'r', namespaces: { selector: { matchExpressions: {} } } }] } }, 'policy.rules[0].namespaces.selector.matchExpressions: expected a list'],
    [
      { policy: { rules: [{ name: 'r', namespaces: { selector: { matchExpressions: [{ key: 'a', operator: 'Has' }] } } }] } },
      'policy.rules[0].namespaces.selector.matchExpressions[0].operator: expected In, NotIn, Exists or DoesNotExist',
    ],
    [
      { policy: { rules: [{ name: 'r', namespaces: { selector: { matchExpressions: [{ key: 'a', operator: 'In', value: ['x'] }] } } }] } },
      'policy.rules[0].namespaces.selector.matchExpressions[0].value: unknown field (known: key, operator, values)',
    ],
    [
      { policy: { rules: [{ name: 'r', namespaces: { selector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 2] }] } } }] } },
      'policy.rules[0].namespaces.selector.matchExpressions[0].values[1]: expected a string, got 2',
    ],
    [
      { policy: { rules: [{ name: 'r', namespaces: { selector: { matchExpressions: [{ operator: 'Exists' }] } } }] } },
      'policy.rules[0].namespaces.selector.matchExpressions[0].key: expected a string, got undefined',
    ],
  ])('%j', (doc, message) => {
    expect(refusal(doc)).toBe(`config.yaml: ${message}`);
  });
});

describe('accepted values, as parsed', () => {
  it('the edges of each range are accepted', () => {
    const lo = parseConfig({ credentials: { sessionDurationSeconds: 900, refreshThreshold: '899s', cacheEntries: 10 }, discovery: { interval: '1m', missInterval: '1s' } }, ctx);
    expect(lo.credentials).toEqual({ sessionDurationSeconds: 900, refreshThresholdMs: 899_000, externalIds: {}, cacheEntries: 10 });
    expect([lo.discovery.intervalMs, lo.discovery.missIntervalMs]).toEqual([60_000, 1000]);
    const hi = parseConfig({ credentials: { sessionDurationSeconds: 43200, cacheEntries: 100_000, externalIds: { [ARN]: `${'x'.repeat(1223)}=` } } }, ctx);
    expect([hi.credentials.sessionDurationSeconds, hi.credentials.cacheEntries]).toEqual([43200, 100_000]);
    expect(hi.credentials.externalIds[ARN]).toHaveLength(1224);
    expect(parseConfig({ credentials: { externalIds: { [ARN]: 'ab' } } }, ctx).credentials.externalIds).toEqual({ [ARN]: 'ab' });
    expect(parseConfig({ credentials: { externalIds: { [ARN]: 'a-Z_0+=,.@:/b' } } }, ctx).credentials.externalIds).toEqual({ [ARN]: 'a-Z_0+=,.@:/b' });
  });

  it('namespaces, the ImageCache Secret namespace, the ConfigMap location (trimmed), secrets and discovery regions (deduplicated)', () => {
    const c = parseConfig(
      {
        namespaces: { include: ['team-*'], exclude: ['team-x'] },
        imageCacheSecretNamespace: 'caches',
        credentialHelper: { configMap: ' ops/acr.config ' },
        secrets: { idleTimeout: '2h', refreshInterval: '5s' },
        discovery: { enabled: true, regions: ['cn-beijing', 'cn-beijing', 'cn-shanghai'], personalEdition: false },
      },
      ctx,
    );
    expect(c.namespaces).toEqual({ include: ['team-*'], exclude: ['team-x'] });
    expect(c.imageCacheSecretNamespace).toBe('caches');
    expect(c.credentialHelper).toEqual({ configMap: { namespace: 'ops', name: 'acr.config' } });
    expect(c.secrets).toEqual({ idleTimeoutMs: 7_200_000, refreshIntervalMs: 5000 });
    expect(c.discovery).toEqual({ enabled: true, regions: ['cn-beijing', 'cn-shanghai'], intervalMs: 600_000, missIntervalMs: 30_000, personalEdition: false });
    expect(parseConfig({ imageCacheSecretNamespace: '' }, ctx).imageCacheSecretNamespace).toBe('acr-pull-webhook');
    // An empty YAML section (null) is the defaults.
    expect(parseConfig({ namespaces: null, secrets: null }, ctx)).toMatchObject({ namespaces: { include: [], exclude: [] }, secrets: { idleTimeoutMs: 86_400_000, refreshIntervalMs: 30_000 } });
    expect(parseConfig({ discovery: { enabled: false } }, ctx).discovery.regions).toEqual(['cn-hangzhou']);
  });

  it('a policy: rules as written, instance IDs given the default region, hosts lower-cased, selectors kept', () => {
    const c = parseConfig(
      {
        policy: {
          rules: [
            {
              name: 'teams',
              namespaces: { names: ['a'], globs: ['team-*'], selector: { matchLabels: { tier: 'prod' }, matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }, { key: 'y', operator: 'Exists' }] } },
              serviceArns: [ARN, '*'],
              userArns: ['*'],
              instances: ['cri-abc', 'cn-beijing:cri-def', 'Team-Registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com:5000', '*'],
            },
            { name: 'open', namespaces: { globs: ['*'] } },
          ],
        },
      },
      ctx,
    );
    expect(c.policy).toEqual({
      rules: [
        {
          name: 'teams',
          namespaces: { names: ['a'], globs: ['team-*'], selector: { matchLabels: { tier: 'prod' }, matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }, { key: 'y', operator: 'Exists' }] } },
          serviceArns: [ARN, '*'],
          userArns: ['*'],
          instances: ['cn-hangzhou:cri-abc', 'cn-beijing:cri-def', 'team-registry.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com:5000', '*'],
        },
        { name: 'open', namespaces: { globs: ['*'] }, serviceArns: undefined, userArns: undefined, instances: undefined },
      ],
    });
    expect(c.policy!.rules[0]!.namespaces.selector!.matchExpressions![1]).toStrictEqual({ key: 'y', operator: 'Exists' });
    expect(parseConfig({}, ctx).policy).toBeUndefined();
    expect('policy' in parseConfig({}, ctx)).toBe(false);
  });
});
