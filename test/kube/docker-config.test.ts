import { describe, expect, it } from 'vitest';
import {
  BINDING_ANNOTATION,
  buildPullSecret,
  CHAIN_LABEL,
  decodeDockerConfig,
  decodePullSecret,
  DOCKER_CONFIG_JSON_TYPE,
  EXPIRES_AT_ANNOTATION,
  LAST_USED_AT_ANNOTATION,
  MANAGED_BY_LABEL,
  refreshDue,
  REGISTRIES_LABEL,
  REQUESTER_LABEL,
  sameBinding,
} from '../../src/pull-secrets/docker-config.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { binding, HOUR, MIN, PASSWORD_MARK, spec, T0 } from './support/fixtures.js';

const auths = {
  auths: {
    'team1-registry.cn-hangzhou.cr.aliyuncs.com': { username: 'cr_temp_user', password: `${PASSWORD_MARK}a` },
    'team1-registry-vpc.cn-hangzhou.cr.aliyuncs.com': { username: 'cr_temp_user', password: `${PASSWORD_MARK}a` },
  },
  expiresAt: T0 + HOUR,
};

describe('buildPullSecret', () => {
  it('builds a dockerconfigjson Secret with auth = base64(username:password) for every domain', () => {
    const s = buildPullSecret(spec(), auths, { now: T0 });
    expect(s.type).toBe(DOCKER_CONFIG_JSON_TYPE);
    expect(s.metadata.namespace).toBe('apps');
    const decoded = decodeDockerConfig(s)!;
    expect(Object.keys(decoded).sort()).toEqual(Object.keys(auths.auths).sort());
    for (const entry of Object.values(decoded)) {
      expect(entry.username).toBe('cr_temp_user');
      expect(entry.password).toBe(`${PASSWORD_MARK}a`);
      expect(Buffer.from(entry.auth, 'base64').toString()).toBe(`cr_temp_user:${PASSWORD_MARK}a`);
    }
  });

  it('labels are label-safe, mark it managed and carry no secret material', () => {
    const s = buildPullSecret(spec(), auths, { now: T0 });
    const labels = s.metadata.labels!;
    expect(labels[MANAGED_BY_LABEL]).toBe('acr-pull-webhook');
    expect(labels[REQUESTER_LABEL]).toBe('apps');
    expect(labels[CHAIN_LABEL]).toMatch(/^[0-9a-f]{20}$/);
    expect(labels[REGISTRIES_LABEL]).toMatch(/^[0-9a-f]{20}$/);
    for (const v of Object.values(labels)) expect(v).toMatch(/^[A-Za-z0-9._-]{0,63}$/);
    const meta = JSON.stringify(s.metadata);
    expect(meta).not.toContain(PASSWORD_MARK);
    expect(meta).not.toContain('cr_temp_user');
    expect(s.metadata.annotations![EXPIRES_AT_ANNOTATION]).toBe(new Date(T0 + HOUR).toISOString());
    expect(JSON.parse(s.metadata.annotations![BINDING_ANNOTATION]!)).toEqual(binding(1));
  });

  it('different chains or registries give different hash labels', () => {
    const a = buildPullSecret(spec('apps', 1), auths, { now: T0 });
    const b = buildPullSecret(spec('apps', 2), auths, { now: T0 });
    expect(a.metadata.labels![CHAIN_LABEL]).not.toBe(b.metadata.labels![CHAIN_LABEL]);
    expect(a.metadata.labels![REGISTRIES_LABEL]).not.toBe(b.metadata.labels![REGISTRIES_LABEL]);
  });

  it('keeps resourceVersion, foreign labels and the later last-used time of the previous object', () => {
    const first = buildPullSecret(spec(), auths, { now: T0, lastUsedAt: T0 + 5 * MIN });
    const prev = {
      ...first,
      metadata: { ...first.metadata, resourceVersion: '42', uid: 'u1', labels: { ...first.metadata.labels, team: 'x' } },
    };
    const next = buildPullSecret(spec(), auths, { now: T0 + MIN, previous: prev, lastUsedAt: T0 + MIN });
    expect(next.metadata.resourceVersion).toBe('42');
    expect(next.metadata.uid).toBe('u1');
    expect(next.metadata.labels!.team).toBe('x');
    expect(next.metadata.annotations![LAST_USED_AT_ANNOTATION]).toBe(new Date(T0 + 5 * MIN).toISOString());
  });

  it('refuses to build a Secret without credentials', () => {
    expect(() => buildPullSecret(spec(), { auths: {}, expiresAt: T0 + HOUR }, { now: T0 })).toThrow(DenialError);
  });
});

describe('decodePullSecret', () => {
  it('round-trips binding, requester and times', () => {
    const s = buildPullSecret(spec('team-a'), auths, { now: T0, lastUsedAt: T0 });
    const d = decodePullSecret({ ...s, metadata: { ...s.metadata, creationTimestamp: new Date(T0).toISOString() } })!;
    expect(d.binding).toEqual(binding(1));
    expect(sameBinding(d.binding, binding(1))).toBe(true);
    expect(d.requester).toBe('team-a');
    expect(d.expiresAt).toBe(T0 + HOUR);
    expect(d.refreshedAt).toBe(T0);
    expect(d.lastUsedAt).toBe(T0);
    expect(d.createdAt).toBe(T0);
  });

  it('rejects Secrets without a readable binding or expiry, and unmanaged ones', () => {
    const s = buildPullSecret(spec(), auths, { now: T0 });
    const noBinding = { ...s, metadata: { ...s.metadata, annotations: { ...s.metadata.annotations, [BINDING_ANNOTATION]: '{"chain":{}}' } } };
    expect(decodePullSecret(noBinding)).toBeUndefined();
    const badExpiry = { ...s, metadata: { ...s.metadata, annotations: { ...s.metadata.annotations, [EXPIRES_AT_ANNOTATION]: 'soon' } } };
    expect(decodePullSecret(badExpiry)).toBeUndefined();
    const unmanaged = { ...s, metadata: { ...s.metadata, labels: {} } };
    expect(decodePullSecret(unmanaged)).toBeUndefined();
  });

  it('binding equality ignores registry and domain order', () => {
    const b = binding(1);
    const r = b.registries[0]!;
    const shuffled = { ...b, registries: [{ ...r, domains: [...(r.kind === 'instance' ? (r.domains ?? []) : [])].reverse() }] };
    expect(sameBinding(b, shuffled)).toBe(true);
    expect(sameBinding(b, binding(2))).toBe(false);
  });
});

describe('refreshDue', () => {
  it('is due within the threshold of expiry', () => {
    const d = { expiresAt: T0 + HOUR, refreshedAt: T0 };
    expect(refreshDue(d, T0 + 44 * MIN, 15 * MIN)).toBe(false);
    expect(refreshDue(d, T0 + 45 * MIN, 15 * MIN)).toBe(true);
  });
  it('uses half the lifetime for tokens shorter than twice the threshold', () => {
    const d = { expiresAt: T0 + 10 * MIN, refreshedAt: T0 };
    expect(refreshDue(d, T0 + 4 * MIN, 15 * MIN)).toBe(false);
    expect(refreshDue(d, T0 + 5 * MIN, 15 * MIN)).toBe(true);
  });
});
