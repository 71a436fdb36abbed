// planAdmission and servingRules rule by rule, with exact results: namespace exclusion and inclusion, where a Pod's
// namespace comes from, shape errors, the source of a mutation, and the credential helper's extra Secrets.
import { describe, expect, it } from 'vitest';
import type { CredentialHelper } from '../../src/acr/credential-helper.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import type { AdmissionRequest } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';

const OWN = 'acr-pull-webhook';
const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const rulesFor = (config: Record<string, unknown>, extra: Parameters<typeof servingRules>[4] = {}) =>
  servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', ...config }, { ownNamespace: OWN }), OWN, () => ({}), undefined, extra);
const pod = (object: unknown, over: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: 'u',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  operation: 'CREATE',
  namespace: 'team-a',
  dryRun: false,
  object,
  ...over,
});
const annotated = { metadata: { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC } }, spec: { containers: [{ image: 'team-registry.cn-beijing.cr.aliyuncs.com/a:1' }] } };

describe('servingRules', () => {
  it('a default region only when the configuration has one', () => {
    expect('defaultRegion' in servingRules(parseConfig({}, { ownNamespace: OWN }), OWN)).toBe(false);
    expect(rulesFor({}).defaultRegion).toBe('cn-hangzhou');
  });

  it('exclusion: own namespace, kube-system, exclude globs, outside every include glob, the opt-out label', () => {
    const r = servingRules(
      parseConfig({ namespaces: { include: ['team-*', 'ops'], exclude: ['team-x*'] } }, { ownNamespace: OWN }),
      OWN,
      (ns) => (ns === 'team-quiet' ? { 'acr-pull-webhook.k8s.aliyun.com/ignore': 'true' } : ns === 'team-loud' ? { 'acr-pull-webhook.k8s.aliyun.com/ignore': 'false' } : undefined),
    );
    const excluded = ['acr-pull-webhook', 'kube-system', 'team-x1', 'default', 'team-quiet'].filter((ns) => r.isExcludedNamespace(ns));
    expect(excluded).toEqual(['acr-pull-webhook', 'kube-system', 'team-x1', 'default', 'team-quiet']);
    expect(['team-a', 'ops', 'team-loud'].map((ns) => r.isExcludedNamespace(ns))).toEqual([false, false, false]);
  });
});

describe('planAdmission', () => {
  it('refuses an object that is not an object, and a Pod with no namespace anywhere; the object\'s namespace is used when the request has none', () => {
    expect(planAdmission(pod('x'), rulesFor({}))).toEqual({ action: 'deny', code: 400, message: 'request.object is missing or not an object' });
    expect(planAdmission(pod({ metadata: {}, spec: { containers: [] } }, { namespace: undefined }), rulesFor({}))).toEqual({
      action: 'deny',
      code: 400,
      message: 'request.namespace is missing for a Pod',
    });
    expect(planAdmission(pod({ metadata: { namespace: 5 }, spec: { containers: [] } }, { namespace: undefined }), rulesFor({}))).toMatchObject({ action: 'deny', message: 'request.namespace is missing for a Pod' });
    const fromObject = planAdmission(pod({ ...annotated, metadata: { ...annotated.metadata, namespace: 'team-b' } }, { namespace: undefined }), rulesFor({}));
    expect(fromObject).toMatchObject({ action: 'mutate', specs: [{ namespace: 'team-b' }] });
    expect(planAdmission(pod({ ...annotated, metadata: { ...annotated.metadata, namespace: 'kube-system' } }, { namespace: undefined }), rulesFor({}))).toMatchObject({
      action: 'allow',
      reason: 'excluded-namespace',
    });
  });

  it('an excluded namespace\'s warning is cut to 119 characters', () => {
    const ns = `x-${'n'.repeat(60)}`;
    const plan = planAdmission(pod(annotated, { namespace: ns }), rulesFor({ namespaces: { exclude: ['x-*'] } }));
    expect(plan).toEqual({ action: 'allow', reason: 'excluded-namespace', warnings: [`ACR annotations ignored: acr-pull-webhook does not serve namespace ${ns}`.slice(0, 119)] });
    expect((plan as { warnings: string[] }).warnings[0]).toHaveLength(119);
  });

  it('a shape error names the kind', () => {
    expect(planAdmission(pod({ metadata: annotated.metadata }), rulesFor({}))).toEqual({ action: 'deny', code: 400, message: 'Pod spec is missing or not an object' });
    expect(
      planAdmission(
        { ...pod({ metadata: annotated.metadata, spec: {} }), kind: { group: 'eci.alibabacloud.com', version: 'v1', kind: 'ImageCache' }, namespace: undefined },
        rulesFor({}),
      ),
    ).toEqual({ action: 'deny', code: 400, message: 'ImageCache spec.images must be a list of image references' });
  });

  it('source: annotations, or served-registry; the credential helper adds its other Secrets as best effort', () => {
    expect(planAdmission(pod(annotated), rulesFor({}))).toMatchObject({ action: 'mutate', kind: 'Pod', source: 'annotations' });
    const served = { metadata: {}, spec: { containers: [{ image: 'one.example.com/a:1' }] } };
    const r = rulesFor({ registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] });
    const plan = planAdmission(pod(served), r);
    expect(plan).toMatchObject({ action: 'mutate', source: 'served-registry' });
    expect('bestEffort' in plan).toBe(false);
    const own = (plan as { specs: PullSecretSpec[] }).specs[0]!;
    const extra: PullSecretSpec = { namespace: 'team-a', name: 'acr-pull-helper', requester: 'team-a', binding: { chain: {}, registries: [] } };
    const helper = (specs: PullSecretSpec[]) =>
      ({ covers: () => true, specs: () => specs, expiringThresholdMs: 1, bindings: [] }) as unknown as CredentialHelper;
    const withHelper = (specs: PullSecretSpec[]) =>
      planAdmission(pod(served), rulesFor({ registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] }, { credentialHelper: () => helper(specs) }));
    const both = withHelper([own, extra]);
    expect(both).toMatchObject({ action: 'mutate', specs: [own, extra], patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: own.name }, { name: 'acr-pull-helper' }] }] });
    expect([...(both as { bestEffort: Set<string> }).bestEffort]).toEqual(['acr-pull-helper']);
    // The helper asks for nothing the object does not already get: no best-effort set.
    const same = withHelper([own]);
    expect(same).toMatchObject({ action: 'mutate', specs: [own] });
    expect('bestEffort' in same).toBe(false);
  });
});

describe('the derivation memo', () => {
  it('holds at most 2,000 entries: the oldest goes first', () => {
    const r = rulesFor({});
    const plan = (i: number) => planAdmission(pod({ metadata: { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC } }, spec: { containers: [{ image: `team-registry.cn-beijing.cr.aliyuncs.com/app:${i}` }] } }), r);
    for (let i = 0; i < 2000; i++) plan(i);
    expect(r.memo.size).toBe(2000);
    const first = [...r.memo.keys()][0];
    plan(2000);
    expect(r.memo.size).toBe(2000);
    expect(r.memo.has(first!)).toBe(false);
  });
});
