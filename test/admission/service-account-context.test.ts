// What a Pod's ServiceAccount adds to its admission, with exact results: which ServiceAccount a Pod runs as, when
// the ServiceAccount's annotations stand in for the Pod's (never mixed with the Pod's own ACR keys), and when the
// credential helper applies.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CredentialHelper } from '../../src/acr/credential-helper.js';
import type { ServiceAccountLookup } from '../../src/admission/service-account-context.js';
import type { ServiceAccountInfo } from '../../src/pull-secrets/service-account-sync.js';

type Context = typeof import('../../src/admission/service-account-context.js');
let hasAcrAnnotations: Context['hasAcrAnnotations'];
let podServiceAccountContext: Context['podServiceAccountContext'];
let podServiceAccountName: Context['podServiceAccountName'];

beforeEach(async () => {
  // Loaded per test: the annotation prefix is a constant set when the module loads (Stryker credits code run at
  // load to the tests running then).
  vi.resetModules();
  ({ hasAcrAnnotations, podServiceAccountContext, podServiceAccountName } = await import('../../src/admission/service-account-context.js'));
});

const SVC = 'k8s.aliyun.com/acr-service-arns';
const ARN = 'acs:ram::1111111111111111:role/svc';

describe('podServiceAccountName', () => {
  it('serviceAccountName, else the deprecated serviceAccount, else "default"', () => {
    expect(podServiceAccountName({ spec: { serviceAccountName: 'builder', serviceAccount: 'old' } })).toBe('builder');
    expect(podServiceAccountName({ spec: { serviceAccountName: '', serviceAccount: 'old' } })).toBe('old');
    expect(podServiceAccountName({ spec: { serviceAccountName: 3, serviceAccount: 'old' } })).toBe('old');
    expect(podServiceAccountName({ spec: { serviceAccount: '' } })).toBe('default');
    expect(podServiceAccountName({ spec: { serviceAccount: 5 } })).toBe('default');
    expect(podServiceAccountName({ spec: 'x' })).toBe('default');
    expect(podServiceAccountName({})).toBe('default');
  });
});

describe('hasAcrAnnotations', () => {
  it('true only for an object with a key starting with k8s.aliyun.com/acr-', () => {
    expect(hasAcrAnnotations({ a: 'b', [SVC]: ARN })).toBe(true);
    expect(hasAcrAnnotations({ 'k8s.aliyun.com/acr-': '' })).toBe(true);
    expect(hasAcrAnnotations({ 'k8s.aliyun.com/eci-use-specs': 'x', 'x/k8s.aliyun.com/acr-a': 'y' })).toBe(false);
    expect(hasAcrAnnotations({})).toBe(false);
    expect(hasAcrAnnotations(undefined)).toBe(false);
    expect(hasAcrAnnotations([SVC])).toBe(false);
    // Only an object holds annotations: an array is none, even one carrying such a key.
    expect(hasAcrAnnotations(Object.assign([ARN], { [SVC]: ARN }))).toBe(false);
  });
});

describe('podServiceAccountContext', () => {
  const seen: string[] = [];
  const accounts: Record<string, ServiceAccountInfo> = {
    'team-a/builder': { namespace: 'team-a', name: 'builder', vendorAnnotations: { [SVC]: ARN, 'k8s.aliyun.com/eci-x': 'y' } },
    'team-a/plain': { namespace: 'team-a', name: 'plain', vendorAnnotations: { 'k8s.aliyun.com/eci-x': 'y' } },
    'team-a/bare': { namespace: 'team-a', name: 'bare' },
  };
  const lookup: ServiceAccountLookup = (namespace, name) => {
    seen.push(`${namespace}/${name}`);
    return accounts[`${namespace}/${name}`];
  };
  const pod = (serviceAccountName: string) => ({ spec: { serviceAccountName } });
  const helper = (covered: string) => ({ covers: (ns: string, name: string) => `${ns}/${name}` === covered }) as unknown as CredentialHelper;

  it('without a lookup or a helper, the Pod\'s annotations as they are', () => {
    const own = { x: 'y' };
    expect(podServiceAccountContext(pod('builder'), 'team-a', own, undefined, undefined)).toStrictEqual({ annotations: own });
  });

  it('a Pod without ACR annotations takes its ServiceAccount\'s vendor annotations, added to its own, and says where from', () => {
    seen.length = 0;
    expect(podServiceAccountContext(pod('builder'), 'team-a', { app: 'web' }, lookup, undefined)).toStrictEqual({
      annotations: { app: 'web', [SVC]: ARN, 'k8s.aliyun.com/eci-x': 'y' },
      from: 'ServiceAccount team-a/builder',
    });
    expect(seen).toEqual(['team-a/builder']);
    expect(podServiceAccountContext(pod('builder'), 'team-a', undefined, lookup, undefined)).toStrictEqual({
      annotations: { [SVC]: ARN, 'k8s.aliyun.com/eci-x': 'y' },
      from: 'ServiceAccount team-a/builder',
    });
  });

  it('a Pod with its own ACR annotations keeps them whole; a ServiceAccount without ACR annotations, or none, adds nothing', () => {
    const own = { [SVC]: 'acs:ram::2222222222222222:role/own' };
    expect(podServiceAccountContext(pod('builder'), 'team-a', own, lookup, undefined)).toStrictEqual({ annotations: own });
    expect(podServiceAccountContext(pod('plain'), 'team-a', { app: 'web' }, lookup, undefined)).toStrictEqual({ annotations: { app: 'web' } });
    expect(podServiceAccountContext(pod('bare'), 'team-a', { app: 'web' }, lookup, undefined)).toStrictEqual({ annotations: { app: 'web' } });
    expect(podServiceAccountContext(pod('missing'), 'team-a', { app: 'web' }, lookup, undefined)).toStrictEqual({ annotations: { app: 'web' } });
    // The ServiceAccount is looked up in the Pod's namespace.
    expect(podServiceAccountContext(pod('builder'), 'team-b', { app: 'web' }, lookup, undefined)).toStrictEqual({ annotations: { app: 'web' } });
  });

  it('annotations of the Pod that are not an object are replaced by its ServiceAccount\'s, not spread into them', () => {
    expect(podServiceAccountContext(pod('builder'), 'team-a', 'x', lookup, undefined)).toStrictEqual({
      annotations: { [SVC]: ARN, 'k8s.aliyun.com/eci-x': 'y' },
      from: 'ServiceAccount team-a/builder',
    });
  });

  it('the credential helper is attached when it covers the Pod\'s ServiceAccount in its namespace', () => {
    const h = helper('team-a/default');
    expect(podServiceAccountContext({ spec: {} }, 'team-a', undefined, undefined, h)).toStrictEqual({ annotations: undefined, helper: h });
    expect(podServiceAccountContext(pod('builder'), 'team-a', undefined, undefined, h)).toStrictEqual({ annotations: undefined });
    expect(podServiceAccountContext({ spec: {} }, 'team-b', undefined, undefined, h)).toStrictEqual({ annotations: undefined });
    const both = podServiceAccountContext(pod('builder'), 'team-a', undefined, lookup, helper('team-a/builder'));
    expect(both.from).toBe('ServiceAccount team-a/builder');
    expect(both.helper).toBeDefined();
  });
});
