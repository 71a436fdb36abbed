// Exact values of the pull Secret as built and read back. The module is loaded in beforeEach (after
// vi.resetModules) so its load-time constants (annotation keys, the label-value pattern) count for every test.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Binding, PullSecretSpec } from '../../src/acr/model.js';
import type { SecretObject } from '../../src/pull-secrets/store.js';

type DockerConfig = typeof import('../../src/pull-secrets/docker-config.js');
type Types = typeof import('../../src/pull-secrets/types.js');
let m: DockerConfig;
let types: Types;

const T0 = Date.parse('2025-01-01T00:00:00Z');
const HOUR = 3_600_000;
const SVC = 'acs:ram::1:role/svc';
const USER = 'acs:ram::2:role/pull';
const INSTANCE = { kind: 'instance', instanceId: 'cri-x', region: 'cn-hangzhou' } as const;

function binding(): Binding {
  return { chain: { serviceArn: SVC, userArn: USER }, registries: [{ ...INSTANCE }] };
}

function spec(): PullSecretSpec {
  return { namespace: 'apps', name: 'acr-pull-abc', requester: 'team-a', binding: binding() };
}

const AUTHS = {
  auths: {
    'b.cr.aliyuncs.com': { username: 'u', password: 'p2' },
    'a.cr.aliyuncs.com': { username: 'u', password: 'p1' },
  },
  expiresAt: T0 + HOUR,
};

function dataText(s: SecretObject): string {
  return Buffer.from(s.data!['.dockerconfigjson']!, 'base64').toString('utf8');
}

beforeEach(async () => {
  vi.resetModules();
  m = await import('../../src/pull-secrets/docker-config.js');
  types = await import('../../src/pull-secrets/types.js');
});

describe('constants', () => {
  it('names the label selector, the keys and the Secret type exactly', () => {
    expect(m.MANAGED_SELECTOR).toBe('app.kubernetes.io/managed-by=acr-pull-webhook');
    expect(m.MANAGED_BY_LABEL).toBe('app.kubernetes.io/managed-by');
    expect(m.MANAGED_BY_VALUE).toBe('acr-pull-webhook');
    expect(m.REQUESTER_LABEL).toBe('acr-pull-webhook.k8s.aliyun.com/requester');
    expect(m.CHAIN_LABEL).toBe('acr-pull-webhook.k8s.aliyun.com/chain');
    expect(m.REGISTRIES_LABEL).toBe('acr-pull-webhook.k8s.aliyun.com/registries');
    expect(m.BINDING_ANNOTATION).toBe('acr-pull-webhook.k8s.aliyun.com/binding');
    expect(m.EXPIRES_AT_ANNOTATION).toBe('acr-pull-webhook.k8s.aliyun.com/expires-at');
    expect(m.REFRESHED_AT_ANNOTATION).toBe('acr-pull-webhook.k8s.aliyun.com/refreshed-at');
    expect(m.LAST_USED_AT_ANNOTATION).toBe('acr-pull-webhook.k8s.aliyun.com/last-used-at');
    expect(m.DOCKER_CONFIG_JSON_TYPE).toBe('kubernetes.io/dockerconfigjson');
    expect(m.DOCKER_CONFIG_JSON_KEY).toBe('.dockerconfigjson');
  });
});

describe('labelValue', () => {
  it('keeps label-safe texts of up to 63 characters', () => {
    expect(m.labelValue('')).toBe('');
    expect(m.labelValue('a')).toBe('a');
    expect(m.labelValue('apps')).toBe('apps');
    expect(m.labelValue('team-a_b.c')).toBe('team-a_b.c');
    expect(m.labelValue('a'.repeat(63))).toBe('a'.repeat(63));
  });

  it('hashes texts that are too long or not label-safe', () => {
    expect(m.labelValue('a'.repeat(64))).toBe('ffe054fe7ae0cb6dc65c');
    expect(m.labelValue('Team_A!')).toBe('f5028007d09a034dac85');
    expect(m.labelValue('-apps')).toBe('bf6f0c717e250ec17307');
    expect(m.labelValue('apps-')).toBe('f80a174d9fa732ff3391');
  });
});

describe('chainHash', () => {
  it('hashes the JSON pair of ARNs, an absent ARN as the empty text', () => {
    expect(m.chainHash({ serviceArn: SVC, userArn: USER })).toBe('21e998abe59552ec6c43');
    expect(m.chainHash({ userArn: USER })).toBe('6b0684c3e47851b9e588');
    expect(m.chainHash({ serviceArn: SVC })).toBe('c2f3b90645e95e73a1d5');
  });
});

describe('dockerConfigJson', () => {
  it('sorts the domains and skips empty entries', () => {
    const auths = {
      'b.example': { username: 'u', password: 'p2' },
      'c.example': undefined,
      'a.example': { username: 'u', password: 'p1' },
    } as unknown as Parameters<DockerConfig['dockerConfigJson']>[0];
    expect(m.dockerConfigJson(auths)).toBe(
      '{"auths":{"a.example":{"username":"u","password":"p1","auth":"dTpwMQ=="},' +
        '"b.example":{"username":"u","password":"p2","auth":"dTpwMg=="}}}',
    );
  });
});

describe('buildPullSecret', () => {
  it('builds the whole object exactly', () => {
    const s = m.buildPullSecret(spec(), AUTHS, { now: T0 });
    expect(s).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'acr-pull-abc',
        namespace: 'apps',
        labels: {
          'app.kubernetes.io/managed-by': 'acr-pull-webhook',
          'acr-pull-webhook.k8s.aliyun.com/requester': 'team-a',
          'acr-pull-webhook.k8s.aliyun.com/chain': '21e998abe59552ec6c43',
          'acr-pull-webhook.k8s.aliyun.com/registries': s.metadata.labels!['acr-pull-webhook.k8s.aliyun.com/registries'],
        },
        annotations: {
          'acr-pull-webhook.k8s.aliyun.com/binding':
            '{"chain":{"serviceArn":"acs:ram::1:role/svc","userArn":"acs:ram::2:role/pull"},' +
            '"registries":[{"kind":"instance","instanceId":"cri-x","region":"cn-hangzhou"}]}',
          'acr-pull-webhook.k8s.aliyun.com/expires-at': '2025-01-01T01:00:00.000Z',
          'acr-pull-webhook.k8s.aliyun.com/refreshed-at': '2025-01-01T00:00:00.000Z',
        },
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': s.data!['.dockerconfigjson'] },
    });
    expect(s.metadata.labels!['acr-pull-webhook.k8s.aliyun.com/registries']).toMatch(/^[0-9a-f]{20}$/);
    expect(dataText(s)).toBe(
      '{"auths":{"a.cr.aliyuncs.com":{"username":"u","password":"p1","auth":"dTpwMQ=="},' +
        '"b.cr.aliyuncs.com":{"username":"u","password":"p2","auth":"dTpwMg=="}}}',
    );
  });

  it('refuses an empty set of credentials with a message naming the Secret', () => {
    let err: unknown;
    try {
      m.buildPullSecret(spec(), { auths: {}, expiresAt: T0 }, { now: T0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(types.DenialError);
    expect((err as Error).message).toBe('no registry credentials were obtained for pull Secret apps/acr-pull-abc');
    expect((err as InstanceType<Types['DenialError']>).code).toBe(500);
  });

  it('takes the last use from the options when the previous object has no annotations at all', () => {
    const prev: SecretObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'acr-pull-abc', namespace: 'apps' } };
    const s = m.buildPullSecret(spec(), AUTHS, { now: T0, previous: prev, lastUsedAt: T0 + 5000 });
    expect(s.metadata.annotations!['acr-pull-webhook.k8s.aliyun.com/last-used-at']).toBe('2025-01-01T00:00:05.000Z');
    expect(s.metadata.resourceVersion).toBeUndefined();
    expect('ownerReferences' in s.metadata).toBe(false);
    expect('finalizers' in s.metadata).toBe(false);
  });

  it('keeps foreign annotations, owner references and finalizers of the previous object', () => {
    const prev: SecretObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'acr-pull-abc',
        namespace: 'apps',
        annotations: { team: 'x', 'acr-pull-webhook.k8s.aliyun.com/last-used-at': '2025-01-01T00:00:09.000Z' },
        ownerReferences: [{ kind: 'Namespace', name: 'apps' }],
        finalizers: ['example.com/keep'],
      },
    };
    const s = m.buildPullSecret(spec(), AUTHS, { now: T0, previous: prev });
    expect(s.metadata.annotations!.team).toBe('x');
    expect(s.metadata.annotations!['acr-pull-webhook.k8s.aliyun.com/last-used-at']).toBe('2025-01-01T00:00:09.000Z');
    expect(s.metadata.ownerReferences).toEqual([{ kind: 'Namespace', name: 'apps' }]);
    expect(s.metadata.finalizers).toEqual(['example.com/keep']);
  });
});

describe('parseBinding', () => {
  const parse = (v: unknown): Binding | undefined => m.parseBinding(JSON.stringify(v));
  const chain = { serviceArn: SVC, userArn: USER };

  it('reads back every kind of registry', () => {
    const registries = [
      { kind: 'instance', instanceId: 'cri-x' },
      { kind: 'instance', instanceId: 'cri-y', region: 'cn-beijing', domains: ['y.example'] },
      { kind: 'instance-name', instanceName: 'team1', region: 'cn-hangzhou' },
      { kind: 'personal', region: 'cn-shanghai', domains: ['registry.cn-shanghai.aliyuncs.com'] },
    ];
    expect(parse({ chain, registries })).toStrictEqual({ chain, registries });
  });

  it('keeps only the ARNs that are present', () => {
    expect(parse({ chain: {}, registries: [INSTANCE] })).toStrictEqual({ chain: {}, registries: [INSTANCE] });
    expect(parse({ chain: { userArn: USER }, registries: [INSTANCE] })).toStrictEqual({
      chain: { userArn: USER },
      registries: [INSTANCE],
    });
    expect(parse({ chain: { serviceArn: SVC }, registries: [INSTANCE] })).toStrictEqual({
      chain: { serviceArn: SVC },
      registries: [INSTANCE],
    });
  });

  it('refuses a malformed top level or chain', () => {
    expect(m.parseBinding('null')).toBeUndefined();
    expect(parse({ chain: null, registries: [INSTANCE] })).toBeUndefined();
    expect(parse({ chain: 'acs:ram::1:role/svc', registries: [INSTANCE] })).toBeUndefined();
    expect(parse({ chain: { serviceArn: 5, userArn: USER }, registries: [INSTANCE] })).toBeUndefined();
    expect(parse({ chain: { serviceArn: SVC, userArn: 5 }, registries: [INSTANCE] })).toBeUndefined();
  });

  it('refuses an empty registry list or any malformed registry in it', () => {
    const bad: unknown[] = [
      null,
      { kind: 'other', region: 'r', domains: ['d'] },
      { kind: 'instance' },
      { kind: 'instance', instanceId: 5 },
      { kind: 'instance', instanceId: 'cri-x', region: 5 },
      { kind: 'instance', instanceId: 'cri-x', domains: 'd' },
      { kind: 'instance', instanceId: 'cri-x', domains: ['d', 1] },
      { kind: 'instance', instanceId: 'cri-x', domains: [1] },
      { kind: 'instance-name', region: 'cn-hangzhou' },
      { kind: 'instance-name', instanceName: 'team1' },
      { kind: 'personal', domains: ['d'] },
      { kind: 'personal', region: 'r' },
      { kind: 'personal', region: 'r', domains: 'd' },
    ];
    expect(parse({ chain, registries: [] })).toBeUndefined();
    for (const r of bad) {
      expect({ r, got: parse({ chain, registries: [INSTANCE, r] }) }).toEqual({ r, got: undefined });
    }
  });
});

describe('decodePullSecret', () => {
  function built(): SecretObject {
    return m.buildPullSecret(spec(), AUTHS, { now: T0 });
  }

  it('reads back what was built, without the times that are absent', () => {
    const s = built();
    delete s.metadata.annotations!['acr-pull-webhook.k8s.aliyun.com/refreshed-at'];
    expect(m.decodePullSecret(s)).toStrictEqual({
      namespace: 'apps',
      name: 'acr-pull-abc',
      binding: binding(),
      requester: 'team-a',
      expiresAt: T0 + HOUR,
    });
  });

  it('reads every time that is present', () => {
    const s = m.withLastUsed(built(), T0 + 7000);
    s.metadata.creationTimestamp = '2024-12-31T23:00:00Z';
    expect(m.decodePullSecret(s)).toStrictEqual({
      namespace: 'apps',
      name: 'acr-pull-abc',
      binding: binding(),
      requester: 'team-a',
      expiresAt: T0 + HOUR,
      refreshedAt: T0,
      lastUsedAt: T0 + 7000,
      createdAt: T0 - HOUR,
    });
  });

  it('falls back to the namespace as the requester when the label is empty', () => {
    const s = built();
    s.metadata.labels!['acr-pull-webhook.k8s.aliyun.com/requester'] = '';
    expect(m.decodePullSecret(s)!.requester).toBe('apps');
  });

  it('refuses a Secret of another type or without the dockerconfigjson data', () => {
    const wrongType = { ...built(), type: 'Opaque' };
    expect(m.decodePullSecret(wrongType)).toBeUndefined();
    const noData = built();
    delete noData.data;
    expect(m.decodePullSecret(noData)).toBeUndefined();
    const emptyData = { ...built(), data: {} };
    expect(m.decodePullSecret(emptyData)).toBeUndefined();
  });
});

describe('decodeDockerConfig', () => {
  const secret = (data?: Record<string, string>): SecretObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'x', namespace: 'apps' },
    ...(data ? { data } : {}),
  });
  const b64 = (t: string): string => Buffer.from(t, 'utf8').toString('base64');

  it('returns the auths object, or undefined when there is none', () => {
    expect(m.decodeDockerConfig(secret())).toBeUndefined();
    expect(m.decodeDockerConfig(secret({ '.dockerconfigjson': b64('{"auths":5}') }))).toBeUndefined();
    expect(m.decodeDockerConfig(secret({ '.dockerconfigjson': b64('{}') }))).toBeUndefined();
    expect(m.decodeDockerConfig(secret({ '.dockerconfigjson': b64('{"auths":{"a":{"username":"u","password":"p","auth":"x"}}}') }))).toEqual({
      a: { username: 'u', password: 'p', auth: 'x' },
    });
  });
});

describe('refreshDue', () => {
  it('uses the whole threshold when the refresh time is unknown', () => {
    expect(m.refreshDue({ expiresAt: T0 + 1000 }, T0, 2000)).toBe(true);
    expect(m.refreshDue({ expiresAt: T0 + 3000 }, T0, 2000)).toBe(false);
  });
});
