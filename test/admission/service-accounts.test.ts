// ServiceAccounts in admission: their ACR annotations stand in for their Pods', and the ACK credential helper's
// ConfigMap gives them (and their Pods) its Secrets. Every case is an AdmissionReview fixture with its outcome.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { credentialHelper, helperBindings, type CredentialHelper } from '../../src/acr/credential-helper.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { handleAdmission, type HelperSecretFailure } from '../../src/admission/handler.js';
import { servingRules, type ServingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseAcrConfiguration } from '../../src/config/acr-configuration.js';
import { parseConfig } from '../../src/config/config.js';
import type { ServiceAccountInfo } from '../../src/pull-secrets/service-account-sync.js';
import { DenialError, type PullSecretProvider } from '../../src/pull-secrets/types.js';
import { applyAsApiServer, decodePatch, fixture } from '../support/fixtures.js';

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/registry-reader';
const OWN = 'acr-pull-webhook';

const ACCOUNTS: ServiceAccountInfo[] = [
  {
    namespace: 'team-a',
    name: 'builder',
    vendorAnnotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-owner000000001', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR },
  },
  { namespace: 'team-a', name: 'roles-only', vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': SVC } },
  // Written before the webhook was installed: the grammar refuses it.
  { namespace: 'team-a', name: 'legacy', vendorAnnotations: { 'k8s.aliyun.com/acr-user-arns': USR } },
  { namespace: 'team-a', name: 'default' },
];
const lookup = (ns: string, name: string) => ACCOUNTS.find((a) => a.namespace === ns && a.name === name);

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let seedStyle!: ReturnType<typeof parseAcrConfiguration>;
beforeEach(() => {
  seedStyle = parseAcrConfiguration(parseYaml(readFileSync(join(import.meta.dirname, '../fixtures/acr-configuration/seed-style.yaml'), 'utf8')).data, 'cn-hangzhou');
});

function rulesWith(opts: { helper?: boolean; policy?: unknown } = {}): ServingRules {
  const config = parseConfig({ defaultRegion: 'cn-hangzhou', ...(opts.policy ? { policy: opts.policy } : {}) }, { ownNamespace: OWN });
  let helper: CredentialHelper | undefined;
  const rules: ServingRules = servingRules(config, OWN, () => ({}), undefined, {
    serviceAccount: lookup,
    credentialHelper: () => helper,
  });
  if (opts.helper) helper = credentialHelper(seedStyle.scope, helperBindings(seedStyle.registries), seedStyle.expiringThresholdMs, (ns) => rules.isExcludedNamespace(ns));
  return rules;
}
let HELPER_SECRET!: string;
beforeEach(() => {
  HELPER_SECRET = credentialHelper(seedStyle.scope, helperBindings(seedStyle.registries), 0, () => false).specs('team-a')[0]!.name;
});

function provider(fail?: (spec: PullSecretSpec) => Error | undefined) {
  const calls: PullSecretSpec[] = [];
  const secrets: PullSecretProvider = {
    ensure: async (spec) => {
      calls.push(spec);
      const e = fail?.(spec);
      if (e) throw e;
      return 'cold';
    },
    ready: () => true,
  };
  return { secrets, calls };
}

async function run(name: string, rules: ServingRules, fail?: (spec: PullSecretSpec) => Error | undefined) {
  const doc = fixture(name);
  const { secrets, calls } = provider(fail);
  const failures: HelperSecretFailure[] = [];
  const outcome = await handleAdmission(parseAdmissionReview(doc), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets, onHelperSecretFailure: (f) => failures.push(f) });
  expect(outcome.review.response.uid).toBe(doc.request.uid);
  const ops = decodePatch(outcome.review);
  return { outcome, response: outcome.review.response, calls, ops, patched: applyAsApiServer(doc.request.object, ops) as any, failures };
}

describe('ServiceAccount creation with the credential helper\'s ConfigMap (the race the helper had, closed)', () => {
  it('the default ServiceAccount a new namespace gets lists the Secret from the start, and the Secret exists before the answer', async () => {
    const { response, calls, patched, ops } = await run('serviceaccount-create-default', rulesWith({ helper: true }));
    expect(response.allowed).toBe(true);
    expect(calls.map((c) => [c.namespace, c.name])).toEqual([['team-a', HELPER_SECRET]]);
    expect(ops).toEqual([{ op: 'add', path: '/imagePullSecrets', value: [{ name: HELPER_SECRET }] }]);
    expect(patched.imagePullSecrets).toEqual([{ name: HELPER_SECRET }]);
  });

  it('a ServiceAccount the ConfigMap does not name is left alone; with "*" it is served, after its own entries', async () => {
    const narrow = await run('serviceaccount-create-with-secrets', rulesWith({ helper: true }));
    expect(narrow.ops).toEqual([]);
    expect(narrow.calls).toEqual([]);

    const everyone = parseAcrConfiguration({ ...parseYaml(readFileSync(join(import.meta.dirname, '../fixtures/acr-configuration/seed-style.yaml'), 'utf8')).data, 'service-account': '*' }, 'cn-hangzhou');
    const config = parseConfig({}, { ownNamespace: OWN });
    const rules: ServingRules = servingRules(config, OWN, () => ({}), undefined, {
      credentialHelper: () => credentialHelper(everyone.scope, helperBindings(everyone.registries), 0, (ns) => rules.isExcludedNamespace(ns)),
    });
    const wide = await run('serviceaccount-create-with-secrets', rules);
    expect(wide.patched.imagePullSecrets).toEqual([{ name: 'my-own' }, { name: HELPER_SECRET }]);
    expect(wide.calls).toHaveLength(1);
  });

  it('without the ConfigMap nothing changes', async () => {
    const { ops, calls } = await run('serviceaccount-create-default', rulesWith());
    expect(ops).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('dry run: the same patch, no Secret written', async () => {
    const everyone = { ...seedStyle, scope: { serviceAccounts: '*' as const, namespaces: 'all' as const } };
    const config = parseConfig({}, { ownNamespace: OWN });
    const rules: ServingRules = servingRules(config, OWN, () => ({}), undefined, {
      credentialHelper: () => credentialHelper(everyone.scope, helperBindings(everyone.registries), 0, (ns) => rules.isExcludedNamespace(ns)),
    });
    const { outcome, ops, calls } = await run('serviceaccount-create-dry-run', rules);
    expect(outcome.path).toBe('dry-run');
    expect(ops).toEqual([{ op: 'add', path: '/imagePullSecrets', value: [{ name: HELPER_SECRET }] }]);
    expect(calls).toEqual([]);
  });

  it('a cloud failure never refuses the ServiceAccount: the reference stays, kubectl gets a warning, the caller an Event and a metric', async () => {
    const { response, ops, failures } = await run('serviceaccount-create-default', rulesWith({ helper: true }), () => new DenialError('failed getting a registry token for instance cri-demo0000000001: Throttling.User', 503));
    expect(response.allowed).toBe(true);
    expect(ops).toEqual([{ op: 'add', path: '/imagePullSecrets', value: [{ name: HELPER_SECRET }] }]);
    expect(response.warnings).toEqual([`pull Secret ${HELPER_SECRET} (acr-configuration) is not ready yet; the webhook retries: see its Events`]);
    expect(failures).toEqual([{ namespace: 'team-a', serviceAccount: 'default', secret: HELPER_SECRET, error: expect.stringContaining('Throttling.User') }]);
  });
});

describe('ACR annotations on a ServiceAccount', () => {
  it('are checked when the ServiceAccount is created: a mistake is refused, naming the ServiceAccount and the key', async () => {
    const { response } = await run('serviceaccount-create-bad-annotation', rulesWith());
    expect(response.allowed).toBe(false);
    expect(response.status).toEqual({
      code: 400,
      reason: 'BadRequest',
      message: expect.stringMatching(/^ServiceAccount team-a\/builder: metadata\.annotations: k8s\.aliyun\.com\/acr-user-arns needs k8s\.aliyun\.com\/acr-service-arns/),
    });
  });

  it('and when an update changes them (a typo gets the closest key)', async () => {
    const { response } = await run('serviceaccount-update-bad-annotation', rulesWith());
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toBe('ServiceAccount team-a/builder: metadata.annotations: unknown annotation "k8s.aliyun.com/acr-instance-idz": did you mean "k8s.aliyun.com/acr-instance-ids"?');
  });

  it('an update that leaves them as they were is not judged again (the leader\'s own imagePullSecrets patch must pass)', async () => {
    const { response } = await run('serviceaccount-update-unchanged-bad', rulesWith());
    expect(response.allowed).toBe(true);
  });

  it('the policy applies to them as to a Pod\'s', async () => {
    const policy = { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [SVC], userArns: [], instances: ['*'] }] };
    const { response } = await run('serviceaccount-create-annotated', rulesWith({ policy }));
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(403);
    expect(response.status?.message).toBe(
      `ServiceAccount team-a/builder: metadata.annotations: forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): user role ${USR} is not allowed; ask the cluster operator to extend the policy`,
    );
    expect((await run('serviceaccount-create-annotated', rulesWith())).response.allowed).toBe(true);
  });

  it('kube-system is never served: its ServiceAccounts pass with a warning', async () => {
    const { response, ops } = await run('serviceaccount-create-kube-system', rulesWith({ helper: true }));
    expect(response.allowed).toBe(true);
    expect(ops).toEqual([]);
    expect(response.warnings).toEqual(['ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system']);
  });

  it('a Pod without annotations of its own behaves as if it had its ServiceAccount\'s', async () => {
    const { response, calls, patched, outcome } = await run('pod-serviceaccount-annotated', rulesWith());
    expect(response.allowed).toBe(true);
    expect(outcome.plan).toMatchObject({ action: 'mutate', source: 'service-account' });
    expect(calls.map((c) => c.binding)).toEqual([
      { chain: { serviceArn: SVC, userArn: USR }, registries: [{ kind: 'instance', instanceId: 'cri-owner000000001', region: 'cn-beijing' }] },
    ]);
    expect(patched.spec.imagePullSecrets).toEqual([{ name: calls[0]!.name }]);
  });

  it('a Pod\'s own annotations win, as a whole', async () => {
    const { calls } = await run('pod-serviceaccount-own-annotations-win', rulesWith());
    expect(calls.map((c) => c.binding)).toEqual([{ chain: { serviceArn: SVC }, registries: [{ kind: 'instance-name', instanceName: 'myreg', region: 'cn-hangzhou' }] }]);
  });

  it('a Pod of that ServiceAccount with only public images is left alone (not refused for having no ACR image)', async () => {
    const { response, ops, calls } = await run('pod-serviceaccount-public-image', rulesWith());
    expect(response.allowed).toBe(true);
    expect(ops).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('a mistake on the ServiceAccount refuses its Pods with a message that says where to fix it', async () => {
    const { response } = await run('pod-serviceaccount-bad-annotation', rulesWith());
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toMatch(/^ServiceAccount team-a\/legacy \(the Pod's ServiceAccount\): k8s\.aliyun\.com\/acr-user-arns needs k8s\.aliyun\.com\/acr-service-arns/);
  });

  it('the policy refuses a Pod for its ServiceAccount\'s roles', async () => {
    const policy = { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: ['acs:ram::1234567890123456:role/other'], instances: ['*'] }] };
    const { response } = await run('pod-serviceaccount-annotated', rulesWith({ policy }));
    expect(response.status?.code).toBe(403);
    expect(response.status?.message).toMatch(/^ServiceAccount team-a\/builder \(the Pod's ServiceAccount\): forbidden by the acr-pull-webhook policy for namespace team-a .*service role acs:ram::1234567890123456:role\/acr-pull is not allowed/);
  });
});

describe('Pods of ServiceAccounts the credential helper covers', () => {
  it('a Pod without imagePullSecrets already has the Secret (the ServiceAccount admission plugin copied it): nothing to add, the Secret kept fresh', async () => {
    const doc = fixture('pod-helper-copied-by-admission-plugin');
    expect(doc.request.object.spec.imagePullSecrets).toEqual([{ name: HELPER_SECRET }]);
    const { ops, calls, outcome } = await run('pod-helper-copied-by-admission-plugin', rulesWith({ helper: true }));
    expect(ops).toEqual([]);
    expect(outcome.plan).toMatchObject({ action: 'mutate', source: 'credential-helper' });
    expect(calls.map((c) => c.name)).toEqual([HELPER_SECRET]);
  });

  it('a Pod with imagePullSecrets of its own gets the Secret appended: the helper could not serve it, the webhook does', async () => {
    const { patched } = await run('pod-helper-own-image-pull-secrets', rulesWith({ helper: true }));
    expect(patched.spec.imagePullSecrets).toEqual([{ name: 'my-own' }, { name: HELPER_SECRET }]);
  });

  it('the helper\'s Secret never refuses a Pod', async () => {
    const denial = () => new DenialError('failed getting a registry token: ServiceUnavailable', 503);
    const helperOnly = await run('pod-helper-own-image-pull-secrets', rulesWith({ helper: true }), denial);
    expect(helperOnly.response.allowed).toBe(true);
    expect(helperOnly.patched.spec.imagePullSecrets).toEqual([{ name: 'my-own' }, { name: HELPER_SECRET }]);
    expect(helperOnly.failures).toEqual([{ namespace: 'team-a', serviceAccount: 'default', secret: HELPER_SECRET, error: expect.stringContaining('ServiceUnavailable') }]);
  });

  it('a required Secret failing refuses the Pod even when the helper\'s succeeds', async () => {
    const rules = rulesWith({ helper: true });
    const doc = structuredClone(fixture('pod-helper-own-image-pull-secrets'));
    doc.request.object.metadata.annotations = { 'k8s.aliyun.com/acr-instance-ids': 'cri-abc123', 'k8s.aliyun.com/acr-service-arns': SVC };
    const { secrets, calls } = provider((s) => (s.name === HELPER_SECRET ? undefined : new DenialError('failed assuming service role: NoPermission', 403, 'Forbidden')));
    const outcome = await handleAdmission(parseAdmissionReview(doc), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets });
    expect(calls.map((c) => c.name)).toHaveLength(2);
    expect(calls.map((c) => c.name)).toContain(HELPER_SECRET);
    expect(outcome.review.response.allowed).toBe(false);
    expect(outcome.review.response.status?.message).toContain('NoPermission');
  });

  it('a ServiceAccount the ConfigMap does not name, or an excluded namespace: nothing', async () => {
    const { ops, calls } = await run('pod-serviceaccount-public-image', rulesWith({ helper: true }));
    expect(ops).toEqual([]);
    expect(calls).toEqual([]);
  });
});
