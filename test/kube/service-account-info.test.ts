// toServiceAccountInfo: a ServiceAccount from a list or a watch event reduced to what the webhook uses. Loaded
// per test (after resetModules) so that its module-level prefix counts as run by these tests.
import { beforeEach, describe, expect, it, vi } from 'vitest';

let toServiceAccountInfo: typeof import('../../src/kube/service-account-info.js').toServiceAccountInfo;

beforeEach(async () => {
  vi.resetModules();
  ({ toServiceAccountInfo } = await import('../../src/kube/service-account-info.js'));
});

describe('toServiceAccountInfo', () => {
  it('refuses what is not a named, namespaced object', () => {
    expect(toServiceAccountInfo(null)).toBeUndefined();
    expect(toServiceAccountInfo(Object.assign(() => {}, { metadata: { name: 'a', namespace: 'b' } }))).toBeUndefined();
    expect(toServiceAccountInfo({})).toBeUndefined();
    expect(toServiceAccountInfo({ metadata: { namespace: 'b' } })).toBeUndefined();
    expect(toServiceAccountInfo({ metadata: { name: 5, namespace: 'b' } })).toBeUndefined();
  });

  it('keeps only k8s.aliyun.com/ annotations with string values', () => {
    expect(
      toServiceAccountInfo({ metadata: { name: 'a', namespace: 'b', annotations: { 'k8s.aliyun.com/role': 'r', 'k8s.aliyun.com/n': 5, 'other.io/x': 'y' } } }),
    ).toStrictEqual({ namespace: 'b', name: 'a', vendorAnnotations: { 'k8s.aliyun.com/role': 'r' } });
  });

  it('ignores annotations that are null or not an object', () => {
    expect(toServiceAccountInfo({ metadata: { name: 'a', namespace: 'b', annotations: null } })).toStrictEqual({ namespace: 'b', name: 'a' });
    const fn = Object.assign(() => {}, { 'k8s.aliyun.com/role': 'r' });
    expect(toServiceAccountInfo({ metadata: { name: 'a', namespace: 'b', annotations: fn } })).toStrictEqual({ namespace: 'b', name: 'a' });
  });

  it('lists pull Secret names in order; an entry without a string name is an empty name', () => {
    function named() {}
    expect(
      toServiceAccountInfo({ metadata: { name: 'a', namespace: 'b' }, imagePullSecrets: [{ name: 'p1' }, null, 'p2', named, { name: 3 }, { name: 'p3' }] }),
    ).toStrictEqual({ namespace: 'b', name: 'a', imagePullSecrets: ['p1', '', '', '', '', 'p3'] });
  });
});
