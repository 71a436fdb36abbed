// Namespace policy: which namespaces may use which roles and instances.
import { beforeEach, describe, expect, it } from 'vitest';
import { planAdmission, servingRules, OPT_OUT_LABEL } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseConfig, ConfigError } from '../../src/config/config.js';
import { selectorMatches } from '../../src/config/policy.js';
import { fixture } from '../support/fixtures.js';

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/registry-reader';
const policyConfig = {
  defaultRegion: 'cn-hangzhou',
  policy: {
    rules: [
      { name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], userArns: [USR], instances: ['cn-beijing:cri-abc123def4567890', 'myreg-registry.cn-hangzhou.cr.aliyuncs.com'] },
      { name: 'platform', namespaces: { selector: { matchLabels: { tier: 'platform' } } }, serviceArns: ['*'], instances: ['*'] },
      { name: 'sandboxes', namespaces: { globs: ['sandbox-*'] }, instances: ['cri-0123456789abcdef'] },
    ],
  },
};
const labels: Record<string, Record<string, string>> = { ops: { tier: 'platform' }, quiet: { [OPT_OUT_LABEL]: 'true' } };
// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(parseConfig(policyConfig, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook', (ns) => labels[ns]);
});

function planFor(name: string, namespace: string, annotations?: Record<string, string>) {
  const doc = fixture(name);
  doc.request.namespace = namespace;
  if (annotations) doc.request.object.metadata.annotations = annotations;
  return planAdmission(parseAdmissionReview(doc), rules);
}

describe('policy', () => {
  it('allows what a rule matching the namespace lists', () => {
    expect(planFor('pod-cross-account-chain', 'team-a').action).toBe('mutate');
    expect(planFor('pod-default-domain-service-arn', 'team-a').action).toBe('mutate');
  });

  it('denies with 403 and names only this namespace\'s rule set', () => {
    const p = planFor('pod-cross-account-chain', 'team-a', { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-ffff000000000000', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR });
    expect(p).toEqual({
      action: 'deny',
      code: 403,
      message: 'forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): instance cn-beijing:cri-ffff000000000000 is not allowed; ask the cluster operator to extend the policy',
    });
    expect((p as any).message).not.toContain('platform');
  });

  it('denies a namespace no rule covers', () => {
    const p = planFor('pod-cross-account-chain', 'team-b');
    expect(p).toMatchObject({ action: 'deny', code: 403 });
    expect((p as any).message).toContain('namespace team-b is not covered by any rule');
  });

  it('denies a role the namespace may not use', () => {
    const p = planFor('pod-cross-account-chain', 'team-a', { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-abc123def4567890', 'k8s.aliyun.com/acr-service-arns': 'acs:ram::1234567890123456:role/admin' });
    expect((p as any).message).toContain('service role acs:ram::1234567890123456:role/admin is not allowed');
  });

  it('matches namespaces by label selector and by glob; unqualified instances take the default region', () => {
    expect(planFor('pod-cross-account-chain', 'ops', { 'k8s.aliyun.com/acr-instance-ids': 'cri-zzzz', 'k8s.aliyun.com/acr-service-arns': SVC }).action).toBe('mutate');
    expect(planFor('pod-instance-ids-custom-domain', 'sandbox-7', { 'k8s.aliyun.com/acr-instance-ids': 'cri-0123456789abcdef' }).action).toBe('mutate');
    // The sandbox rule lists no service ARNs: chains through a role are not allowed there.
    expect(planFor('pod-instance-ids-custom-domain', 'sandbox-7', { 'k8s.aliyun.com/acr-instance-ids': 'cri-0123456789abcdef', 'k8s.aliyun.com/acr-service-arns': SVC }).action).toBe('deny');
    // Same ID in another region is another instance.
    expect(planFor('pod-instance-ids-custom-domain', 'sandbox-7', { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-0123456789abcdef' }).action).toBe('deny');
  });

  it('never serves opted-out namespaces, whatever the annotations', () => {
    expect(planFor('pod-cross-account-chain', 'quiet')).toMatchObject({ action: 'allow', reason: 'excluded-namespace' });
  });

  it('serves only the included namespaces when an include list is set', () => {
    const only = servingRules(parseConfig({ namespaces: { include: ['team-*'], exclude: ['team-x'] } }, { ownNamespace: 'x' }), 'x');
    expect(only.isExcludedNamespace('team-a')).toBe(false);
    expect(only.isExcludedNamespace('team-x')).toBe(true);
    expect(only.isExcludedNamespace('other')).toBe(true);
    expect(only.isExcludedNamespace('kube-system')).toBe(true);
  });

  it('without a policy, any well-formed annotation is served', () => {
    const open = servingRules(parseConfig({}, { ownNamespace: 'x' }), 'x');
    const doc = fixture('pod-cross-account-chain');
    doc.request.namespace = 'anything';
    expect(planAdmission(parseAdmissionReview(doc), open).action).toBe('mutate');
  });

  it('label selectors follow Kubernetes semantics', () => {
    const l = { env: 'prod', team: 'a' };
    expect(selectorMatches({ matchLabels: { env: 'prod' } }, l)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] }, l)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['a'] }] }, l)).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }, l)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'Exists' }] }, l)).toBe(false);
  });

  it('rejects a malformed policy at load, pointing at the field', () => {
    expect(() => parseConfig({ policy: { rules: [{ name: 'a', namespaces: {} }] } }, { ownNamespace: 'x' })).toThrow('policy.rules[0].namespaces: give names, globs or a selector');
    expect(() => parseConfig({ policy: { rules: [{ name: 'a', namespaces: { names: ['a'] }, serviceArns: ['role/x'] }] } }, { ownNamespace: 'x' })).toThrow(ConfigError);
    expect(() => parseConfig({ credentials: { externalIds: { 'not-an-arn': 'abc' } } }, { ownNamespace: 'x' })).toThrow('credentials.externalIds["not-an-arn"]');
  });
});

describe('memoized decisions', () => {
  it('reuses the derivation for identical input but checks policy and namespace labels every time', () => {
    const current: Record<string, Record<string, string>> = { ops: { tier: 'platform' } };
    const r = servingRules(parseConfig(policyConfig, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook', (ns) => current[ns]);
    const doc = fixture('pod-cross-account-chain');
    doc.request.namespace = 'ops';
    // The platform rule allows any service role and instance, but no user role.
    delete doc.request.object.metadata.annotations['k8s.aliyun.com/acr-user-arns'];
    const first = planAdmission(parseAdmissionReview(doc), r);
    const second = planAdmission(parseAdmissionReview(doc), r);
    expect(first.action).toBe('mutate');
    expect(r.memo.size).toBe(1);
    expect((second as any).specs).toBe((first as any).specs);
    // The namespace loses the label the rule selects on: the memo must not keep it allowed.
    current.ops = {};
    expect(planAdmission(parseAdmissionReview(doc), r)).toMatchObject({ action: 'deny', code: 403 });
    // Different annotations or images are different entries.
    doc.request.object.spec.containers[0].image = 'registry.example.com/other:2';
    planAdmission(parseAdmissionReview(doc), r);
    expect(r.memo.size).toBe(2);
  });

  it('memoizes denials of malformed annotations too, and never keys on non-string values', () => {
    const r = servingRules(parseConfig({}, { ownNamespace: 'x' }), 'x');
    const bad = fixture('deny-bad-arn');
    expect(planAdmission(parseAdmissionReview(bad), r)).toMatchObject({ action: 'deny', code: 400 });
    expect(planAdmission(parseAdmissionReview(bad), r)).toMatchObject({ action: 'deny', code: 400 });
    expect(r.memo.size).toBe(1);
    const odd = fixture('deny-non-string-annotations');
    expect(planAdmission(parseAdmissionReview(odd), r)).toMatchObject({ action: 'deny', code: 400 });
    expect(r.memo.size).toBe(1);
  });
});
