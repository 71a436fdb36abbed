// planServiceAccount rule by rule, with exact results: which requests it handles, how the ServiceAccount is named,
// when its annotations are judged (grammar, then policy per chain and instance), and the patch that adds the
// credential helper's Secrets.
import { describe, expect, it } from 'vitest';
import type { CredentialHelper } from '../../src/acr/credential-helper.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { servingRules } from '../../src/admission/plan.js';
import type { AdmissionRequest } from '../../src/admission/review.js';
import { isServiceAccount, planServiceAccount } from '../../src/admission/service-accounts.js';
import { parseConfig } from '../../src/config/config.js';

const OWN = 'acr-pull-webhook';
const SVC = 'acs:ram::1234567890123456:role/allowed';
const OTHER = 'acs:ram::1234567890123456:role/other';
const IDS = 'k8s.aliyun.com/acr-instance-ids';
const ARNS = 'k8s.aliyun.com/acr-service-arns';

const spec = (name: string): PullSecretSpec => ({ namespace: 'team-a', name, requester: 'team-a', binding: { chain: {}, registries: [] } });
const helper = (names: string[], covered = 'team-a/default'): CredentialHelper => ({
  scope: { namespaces: [covered.split('/')[0]!], serviceAccounts: [covered.split('/')[1]!] },
  covers: (ns: string, n: string) => `${ns}/${n}` === covered,
  specs: () => names.map(spec),
  expiringThresholdMs: 1,
  bindings: [],
});

function rules(opts: { helper?: CredentialHelper; policy?: unknown } = {}) {
  const config = parseConfig({ defaultRegion: 'cn-hangzhou', ...(opts.policy ? { policy: opts.policy } : {}) }, { ownNamespace: OWN });
  return servingRules(config, OWN, () => ({}), undefined, opts.helper ? { credentialHelper: () => opts.helper } : {});
}
function req(object: unknown, over: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { uid: 'u', kind: { group: '', version: 'v1', kind: 'ServiceAccount' }, operation: 'CREATE', namespace: 'team-a', dryRun: false, object, ...over };
}
const sa = (annotations?: Record<string, string>, extra: Record<string, unknown> = {}) => ({ metadata: { name: 'default', ...(annotations ? { annotations } : {}) }, ...extra });

describe('isServiceAccount', () => {
  it('core/v1 ServiceAccount only', () => {
    expect(isServiceAccount({ group: '', version: 'v1', kind: 'ServiceAccount' })).toBe(true);
    expect(isServiceAccount({ group: 'x', version: 'v1', kind: 'ServiceAccount' })).toBe(false);
    expect(isServiceAccount({ group: '', version: 'v2', kind: 'ServiceAccount' })).toBe(false);
    expect(isServiceAccount({ group: '', version: 'v1', kind: 'Pod' })).toBe(false);
  });
});

describe('planServiceAccount', () => {
  const bad = { [ARNS]: 'role/x' };

  it('handles CREATE and UPDATE of ServiceAccounts only, not sub-resources', () => {
    expect(planServiceAccount(req(sa(bad)), rules()).action).toBe('deny');
    expect(planServiceAccount(req(sa(bad), { operation: 'UPDATE' }), rules()).action).toBe('deny');
    for (const over of [{ operation: 'DELETE' }, { operation: 'CONNECT' }, { subResource: 'token' }, { kind: { group: '', version: 'v1', kind: 'Pod' } }, { kind: { group: 'x', version: 'v1', kind: 'ServiceAccount' } }]) {
      expect(planServiceAccount(req(sa(bad), over), rules()), JSON.stringify(over)).toEqual({ action: 'allow', reason: 'not-handled' });
    }
    expect(planServiceAccount(req('x'), rules())).toEqual({ action: 'deny', code: 400, message: 'request.object is missing or not an object' });
  });

  it('names it from the object, else the request; its namespace from the request, else the object; without either, not handled', () => {
    const deny = (object: unknown, over: Partial<AdmissionRequest> = {}) => {
      const p = planServiceAccount(req(object, over), rules());
      return p.action === 'deny' ? p.message : p;
    };
    const grammar = `${ARNS}: "role/x" is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>, the role name 1-64 letters, digits, "." or "-")`;
    expect(deny({ metadata: { name: 'builder', annotations: bad } }, { name: 'other' })).toBe(`ServiceAccount team-a/builder: metadata.annotations: ${grammar}`);
    expect(deny({ metadata: { name: '', annotations: bad } }, { name: 'from-request' })).toBe(`ServiceAccount team-a/from-request: metadata.annotations: ${grammar}`);
    expect(deny({ metadata: { name: 3, annotations: bad } }, { name: 'from-request' })).toBe(`ServiceAccount team-a/from-request: metadata.annotations: ${grammar}`);
    expect(deny({ metadata: { name: 'b', namespace: 'team-b', annotations: bad } }, { namespace: undefined })).toBe(`ServiceAccount team-b/b: metadata.annotations: ${grammar}`);
    expect(deny({ metadata: { name: 'b', namespace: 'team-b', annotations: bad } }, { namespace: 'team-c' })).toBe(`ServiceAccount team-c/b: metadata.annotations: ${grammar}`);
    expect(deny({ metadata: { name: 'b', namespace: 5, annotations: bad } }, { namespace: undefined })).toEqual({ action: 'allow', reason: 'not-handled' });
    expect(deny({ metadata: { annotations: bad } })).toEqual({ action: 'allow', reason: 'not-handled' });
  });

  it('an excluded namespace: allowed, with a warning when it carries ACR annotations', () => {
    expect(planServiceAccount(req(sa(bad), { namespace: OWN }), rules())).toEqual({
      action: 'allow',
      reason: 'excluded-namespace',
      warnings: ['ACR annotations ignored: acr-pull-webhook does not serve namespace acr-pull-webhook'],
    });
    expect(planServiceAccount(req(sa({ 'k8s.aliyun.com/eci-x': 'y' }), { namespace: 'kube-system' }), rules())).toEqual({ action: 'allow', reason: 'excluded-namespace' });
    const long = `ns-${'x'.repeat(60)}`;
    const warned = planServiceAccount(req(sa(bad), { namespace: long }), servingRules(parseConfig({ namespaces: { exclude: ['ns-*'] } }, { ownNamespace: OWN }), OWN));
    expect(warned).toEqual({ action: 'allow', reason: 'excluded-namespace', warnings: [`ACR annotations ignored: acr-pull-webhook does not serve namespace ${long}`.slice(0, 116) + '...'] });
  });

  it('judges any k8s.aliyun.com/ key (near misses too), and annotations that are not an object; UPDATE only when they changed', () => {
    expect(planServiceAccount(req(sa({ 'k8s.aliyun.com/acr-service-arn': SVC })), rules())).toMatchObject({ action: 'deny', code: 400 });
    expect(planServiceAccount(req({ metadata: { name: 'default', annotations: 'x' } }), rules())).toEqual({
      action: 'deny',
      code: 400,
      message: 'ServiceAccount team-a/default: metadata.annotations: metadata.annotations must be an object of strings',
    });
    expect(planServiceAccount(req({ metadata: { name: 'default', annotations: null } }), rules())).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(planServiceAccount(req(sa({ 'example.com/acr-service-arns': 'role/x' })), rules())).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    // UPDATE: the same vendor annotations (other keys may change, order does not matter) are not judged again.
    const old = { metadata: { annotations: { other: '1', [ARNS]: 'role/x', 'k8s.aliyun.com/eci-a': 'b' } } };
    expect(planServiceAccount(req(sa({ 'k8s.aliyun.com/eci-a': 'b', [ARNS]: 'role/x', other: '2' }), { operation: 'UPDATE', oldObject: old }), rules())).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(planServiceAccount(req(sa({ [ARNS]: 'role/x' }), { operation: 'UPDATE', oldObject: old }), rules())).toMatchObject({ action: 'deny', code: 400 });
    expect(planServiceAccount(req(sa({ [ARNS]: 'role/x', 'k8s.aliyun.com/eci-a': 'c' }), { operation: 'UPDATE', oldObject: old }), rules())).toMatchObject({ action: 'deny' });
    expect(planServiceAccount(req(sa({ [ARNS]: 'role/x' }), { operation: 'UPDATE' }), rules())).toMatchObject({ action: 'deny' });
    // CREATE always judges.
    expect(planServiceAccount(req(sa({ [ARNS]: 'role/x' }), { oldObject: { metadata: { annotations: { [ARNS]: 'role/x' } } } }), rules())).toMatchObject({ action: 'deny' });
  });

  it('policy: each chain, with the instances named (default region for unprefixed IDs), one chain per instance when several', () => {
    const policy = { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], instances: ['cn-hangzhou:cri-one', 'cn-beijing:cri-two'] }] };
    const plan = (annotations: Record<string, string>) => planServiceAccount(req(sa(annotations)), rules({ policy }));
    expect(plan({ [ARNS]: SVC })).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(plan({ [ARNS]: SVC, [IDS]: 'cri-one,cn-beijing:cri-two' })).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(plan({ [ARNS]: `${SVC},${SVC}`, [IDS]: 'cri-one,cn-beijing:cri-two' })).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    const prefix = 'ServiceAccount team-a/default: metadata.annotations: forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): ';
    const suffix = '; ask the cluster operator to extend the policy';
    expect(plan({ [ARNS]: OTHER })).toEqual({ action: 'deny', code: 403, message: `${prefix}service role ${OTHER} is not allowed${suffix}` });
    expect(plan({ [ARNS]: SVC, [IDS]: 'cri-one,cri-three' })).toEqual({ action: 'deny', code: 403, message: `${prefix}instance cn-hangzhou:cri-three is not allowed${suffix}` });
    expect(plan({ [ARNS]: `${SVC},${OTHER}`, [IDS]: 'cri-one,cn-beijing:cri-two' })).toEqual({ action: 'deny', code: 403, message: `${prefix}service role ${OTHER} is not allowed${suffix}` });
    expect(plan({ [ARNS]: `${SVC},${SVC}`, [IDS]: 'cri-one,cn-shanghai:cri-two' })).toEqual({ action: 'deny', code: 403, message: `${prefix}instance cn-shanghai:cri-two is not allowed${suffix}` });
  });

  it('CREATE of a covered ServiceAccount: the helper\'s Secrets it does not list yet, appended or as a new list', () => {
    const h = helper(['s1', 's2']);
    const mutate = (extra: Record<string, unknown>) => planServiceAccount(req(sa(undefined, extra)), rules({ helper: h }));
    expect(mutate({})).toEqual({
      action: 'mutate',
      serviceAccount: { namespace: 'team-a', name: 'default' },
      specs: [spec('s1'), spec('s2')],
      patch: [{ op: 'add', path: '/imagePullSecrets', value: [{ name: 's1' }, { name: 's2' }] }],
    });
    expect(mutate({ imagePullSecrets: [{ name: 's2' }, 'junk', { name: 'mine' }] })).toMatchObject({ patch: [{ op: 'add', path: '/imagePullSecrets/-', value: { name: 's1' } }] });
    expect(mutate({ imagePullSecrets: [{ name: 's1' }, { name: 's2' }] })).toMatchObject({ action: 'mutate', patch: [] });
    expect(mutate({ imagePullSecrets: 'odd' })).toMatchObject({ patch: [{ op: 'add', path: '/imagePullSecrets', value: [{ name: 's1' }, { name: 's2' }] }] });
    // Not covered, an UPDATE, or no helper: nothing to do.
    expect(planServiceAccount(req({ metadata: { name: 'builder' } }), rules({ helper: h }))).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(planServiceAccount(req(sa(), { operation: 'UPDATE' }), rules({ helper: h }))).toEqual({ action: 'allow', reason: 'nothing-to-do' });
    expect(planServiceAccount(req(sa()), rules())).toEqual({ action: 'allow', reason: 'nothing-to-do' });
  });
});

describe('planServiceAccount, edges', () => {
  it('a warning of exactly 120 characters is cut; 119 is kept', () => {
    const prefix = 'ACR annotations ignored: acr-pull-webhook does not serve namespace ';
    const r = servingRules(parseConfig({ namespaces: { exclude: ['z*'] } }, { ownNamespace: OWN }), OWN);
    const at = (n: number) => planServiceAccount(req(sa({ [ARNS]: SVC }), { namespace: `z${'n'.repeat(n - prefix.length - 1)}` }), r) as { warnings: string[] };
    expect(at(119).warnings[0]).toHaveLength(119);
    expect(at(119).warnings[0]!.endsWith('n')).toBe(true);
    expect(at(120).warnings[0]).toBe(`${prefix}z${'n'.repeat(52)}`.slice(0, 116) + '...');
  });

  it('a helper with no Secrets gives an empty patch; vendor annotations without ACR keys are not judged against the policy', () => {
    expect(planServiceAccount(req(sa()), rules({ helper: helper([]) }))).toEqual({ action: 'mutate', serviceAccount: { namespace: 'team-a', name: 'default' }, specs: [], patch: [] });
    const policy = { rules: [{ name: 'none', namespaces: { names: ['other'] } }] };
    expect(planServiceAccount(req(sa({ 'k8s.aliyun.com/eci-use-specs': 'x' })), rules({ policy }))).toEqual({ action: 'allow', reason: 'nothing-to-do' });
  });
});

describe('planServiceAccount, odd shapes', () => {
  it('an object without metadata is named by the request', () => {
    expect(planServiceAccount(req({}, { name: 'default' }), rules({ helper: helper(['s1']) }))).toEqual({
      action: 'mutate',
      serviceAccount: { namespace: 'team-a', name: 'default' },
      specs: [spec('s1')],
      patch: [{ op: 'add', path: '/imagePullSecrets', value: [{ name: 's1' }] }],
    });
  });

  it('an excluded namespace without ACR annotations: no warnings key at all', () => {
    expect(planServiceAccount(req(sa({ 'k8s.aliyun.com/eci-x': 'y' }), { namespace: 'kube-system' }), rules())).toStrictEqual({ action: 'allow', reason: 'excluded-namespace' });
  });

  it('an UPDATE whose old object has no metadata is judged as a change', () => {
    expect(planServiceAccount(req(sa({ [ARNS]: 'role/x' }), { operation: 'UPDATE', oldObject: {} }), rules())).toEqual({
      action: 'deny',
      code: 400,
      message: `ServiceAccount team-a/default: metadata.annotations: ${ARNS}: "role/x" is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>, the role name 1-64 letters, digits, "." or "-")`,
    });
  });

  it('null entries in its imagePullSecrets are skipped, not read', () => {
    expect(planServiceAccount(req(sa(undefined, { imagePullSecrets: [null, { name: 's1' }] })), rules({ helper: helper(['s1', 's2']) }))).toMatchObject({
      action: 'mutate',
      patch: [{ op: 'add', path: '/imagePullSecrets/-', value: { name: 's2' } }],
    });
  });
});
