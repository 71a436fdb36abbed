// planAdmission and servingRules rule by rule, with exact results: namespace exclusion and inclusion, where a Pod's
// namespace comes from, shape errors, the source of a mutation, and the credential helper's extra Secrets.
import { describe, expect, it } from 'vitest';
import type { CredentialHelper } from '../../src/acr/credential-helper.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { type Plan, planAdmission, servingRules } from '../../src/admission/plan.js';
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
/** The plan, narrowed to a mutation (a test failure naming the action it got otherwise). */
function mutation(plan: Plan): Extract<Plan, { action: 'mutate' }> {
  if (plan.action !== 'mutate') throw new Error(`expected a mutate plan, got ${plan.action}`);
  return plan;
}
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

  it('only shape errors and binding denials become 400s: a lookup that fails propagates, its text is never the answer', () => {
    // An instance ID without a region is looked up among the served instances by ID: that lookup breaks here.
    const broken = new (class extends Map<string, never> {
      override get(): never {
        throw new Error('served-instance index broken');
      }
    })();
    const rules = { ...rulesFor({}), registryById: broken };
    const object = { metadata: { annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-abc123def4567890' } }, spec: { containers: [{ image: 'registry.example.com/a:1' }] } };
    expect(() => planAdmission(pod(object), rules)).toThrow(new Error('served-instance index broken'));
    // The same lookup without the failure: a mutation, so the failure above is the only difference.
    expect(planAdmission(pod(object), rulesFor({}))).toMatchObject({ action: 'mutate', specs: [{ binding: { registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou' }] } }] });
  });

  it('source: annotations, or served-registry; the credential helper adds its other Secrets as best effort', () => {
    expect(planAdmission(pod(annotated), rulesFor({}))).toMatchObject({ action: 'mutate', kind: 'Pod', source: 'annotations' });
    const served = { metadata: {}, spec: { containers: [{ image: 'one.example.com/a:1' }] } };
    const r = rulesFor({ registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] });
    const plan = planAdmission(pod(served), r);
    expect(plan).toMatchObject({ action: 'mutate', source: 'served-registry' });
    expect('bestEffort' in plan).toBe(false);
    const own = mutation(plan).specs[0]!;
    const extra: PullSecretSpec = { namespace: 'team-a', name: 'acr-pull-helper', requester: 'team-a', binding: { chain: {}, registries: [] } };
    const helper = (specs: PullSecretSpec[]) =>
      ({ covers: () => true, specs: () => specs, expiringThresholdMs: 1, bindings: [] }) as unknown as CredentialHelper;
    const withHelper = (specs: PullSecretSpec[]) =>
      planAdmission(pod(served), rulesFor({ registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] }, { credentialHelper: () => helper(specs) }));
    const both = withHelper([own, extra]);
    expect(both).toMatchObject({ action: 'mutate', specs: [own, extra], patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: own.name }, { name: 'acr-pull-helper' }] }] });
    expect([...(mutation(both).bestEffort ?? [])]).toEqual(['acr-pull-helper']);
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

describe('planAdmission, less common inputs', () => {
  const ONE = { registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] };
  const onOne = (metadata?: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({ ...(metadata ? { metadata } : {}), spec: { containers: [{ image: 'one.example.com/a:1' }], ...spec } });

  it('a Pod without metadata: nothing to do without a served registry, a mutation with one', () => {
    expect(planAdmission(pod({ spec: { containers: [{ image: 'nginx' }] } }), rulesFor({}))).toEqual({ action: 'allow', reason: 'no-annotation' });
    expect(planAdmission(pod(onOne()), rulesFor(ONE))).toMatchObject({ action: 'mutate', source: 'served-registry', patch: [{ op: 'add', path: '/spec/imagePullSecrets' }] });
  });

  it('annotations that are not an object are refused, also when no registry is served', () => {
    expect(planAdmission(pod({ metadata: { annotations: 'x' }, spec: { containers: [] } }), rulesFor({}))).toEqual({ action: 'deny', code: 400, message: 'metadata.annotations must be an object of strings' });
  });

  it('the operator\'s own registries need no permission from the policy; annotations do', () => {
    const r = rulesFor({ ...ONE, policy: { rules: [{ name: 'elsewhere', namespaces: { names: ['other'] } }] } });
    expect(planAdmission(pod(onOne()), r)).toMatchObject({ action: 'mutate', source: 'served-registry' });
    expect(planAdmission(pod(annotated), r)).toMatchObject({ action: 'deny', code: 403 });
  });

  it('a plan without Secrets found by discovery has no optional set', () => {
    const plan = planAdmission(pod(onOne()), rulesFor(ONE));
    expect(plan.action).toBe('mutate');
    expect('optional' in plan).toBe(false);
  });

  it('a ServiceAccount\'s annotations refused for another reason than a missing ACR image refuse its Pods with only public images too', () => {
    const r = servingRules(parseConfig({}, { ownNamespace: OWN }), OWN, () => ({}), undefined, {
      serviceAccount: (namespace, name) => ({ namespace, name, vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-instance-ids': 'cri-abc123' } }),
    });
    expect(planAdmission(pod({ metadata: {}, spec: { serviceAccountName: 'builder', containers: [{ image: 'nginx' }] } }), r)).toEqual({
      action: 'deny',
      code: 400,
      message:
        'ServiceAccount team-a/builder (the Pod\'s ServiceAccount): k8s.aliyun.com/acr-instance-ids: "cri-abc123" has no region prefix and acr-pull-webhook has no default region: ' +
        'write it as <region>:cri-abc123 (e.g. cn-beijing:cri-abc123), or ask the cluster operator to set ALIBABA_CLOUD_REGION_ID or defaultRegion',
    });
  });
});

describe('the derivation memo, what it keys on', () => {
  const ONE = { registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] };
  const on = (metadata: Record<string, unknown>, serviceAccountName?: string) => ({
    metadata,
    spec: { containers: [{ image: 'one.example.com/a:1' }], ...(serviceAccountName ? { serviceAccountName } : {}) },
  });
  const patchOf = (plan: ReturnType<typeof planAdmission>) => {
    if (plan.action !== 'mutate') throw new Error(`expected a mutation, got ${JSON.stringify(plan)}`);
    return plan.patch;
  };

  it('a Pod with nothing to look at (nothing annotated, served or covered by the helper) leaves no entry', () => {
    const r = rulesFor({});
    expect(planAdmission(pod({ metadata: {}, spec: { containers: [{ image: 'nginx' }] } }), r)).toEqual({ action: 'allow', reason: 'no-annotation' });
    expect(planAdmission(pod({ metadata: { annotations: { app: 'web' } }, spec: { containers: [{ image: 'nginx' }] } }), r)).toEqual({ action: 'allow', reason: 'no-annotation' });
    expect(r.memo.size).toBe(0);
  });

  it('Pods without annotations, with null annotations, or differing only in other annotations share one entry and one patch', () => {
    const r = rulesFor(ONE);
    const first = patchOf(planAdmission(pod(on({})), r));
    expect(patchOf(planAdmission(pod(on({})), r))).toBe(first);
    expect(patchOf(planAdmission(pod(on({ annotations: null })), r))).toBe(first);
    expect(patchOf(planAdmission(pod(on({ annotations: { 'pod-template-hash': 'abc' } })), r))).toBe(first);
    expect(patchOf(planAdmission(pod(on({ annotations: { 'pod-template-hash': 'def' } })), r))).toBe(first);
    expect(r.memo.size).toBe(1);
  });

  it('a value that is not a string is never keyed: ["x"] must not pass for "x"', () => {
    const r = rulesFor({});
    const plan = (value: unknown) => planAdmission(pod({ metadata: { annotations: { 'k8s.aliyun.com/acr-service-arns': value } }, spec: { containers: [] } }), r);
    expect(plan(['x'])).toEqual({ action: 'deny', code: 400, message: 'k8s.aliyun.com/acr-service-arns must be a string, got "[\\"x\\"]"' });
    expect(plan('x')).toEqual({
      action: 'deny',
      code: 400,
      message: 'k8s.aliyun.com/acr-service-arns: "x" is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>, the role name 1-64 letters, digits, "." or "-")',
    });
    expect(r.memo.size).toBe(1);
  });

  it('the shared patch never carries the credential helper\'s Secrets to a Pod of a ServiceAccount it does not cover', () => {
    const extra: PullSecretSpec = { namespace: 'team-a', name: 'acr-pull-helper', requester: 'team-a', binding: { chain: {}, registries: [] } };
    const helper = { covers: (_ns: string, name: string) => name === 'builder', specs: () => [extra], expiringThresholdMs: 1, bindings: [] } as unknown as CredentialHelper;
    const r = rulesFor(ONE, { credentialHelper: () => helper });
    const covered = planAdmission(pod(on({}, 'builder')), r);
    if (covered.action !== 'mutate') throw new Error('expected a mutation');
    const own = covered.specs[0]!.name;
    expect(covered.patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: own }, { name: 'acr-pull-helper' }] }]);
    expect(patchOf(planAdmission(pod(on({}, 'web')), r))).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: own }] }]);
  });
});
