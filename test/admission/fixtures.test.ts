// Every AdmissionReview fixture, replayed through the handler, with its exact outcome.
import { beforeEach, describe, expect, it } from 'vitest';
import { handleAdmission } from '../../src/admission/handler.js';
import { servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview, TransportError } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import type { PullSecretProvider } from '../../src/pull-secrets/types.js';
import { applyAsApiServer, decodePatch, fixture, fixtureText } from '../support/fixtures.js';

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let config!: ReturnType<typeof parseConfig>;
beforeEach(() => {
  config = parseConfig(
    {
      defaultRegion: 'cn-hangzhou',
      registries: [{ instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou', domains: ['registry.example.com'] }],
    },
    { ownNamespace: 'acr-pull-webhook' },
  );
});
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(config, 'acr-pull-webhook');
});
let rulesWithoutRegistries!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rulesWithoutRegistries = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
});

function recordingProvider() {
  const calls: PullSecretSpec[] = [];
  const provider: PullSecretProvider = {
    ensure: async (spec) => {
      calls.push(spec);
      return 'cold';
    },
    ready: () => true,
  };
  return { provider, calls };
}

async function run(name: string, opts: { withRegistries?: boolean; rules?: typeof rules } = {}) {
  const doc = fixture(name);
  const { provider, calls } = recordingProvider();
  const req = parseAdmissionReview(doc);
  const outcome = await handleAdmission(
    req,
    { deadline: Date.now() + 5000 },
    { rules: () => opts.rules ?? (opts.withRegistries === false ? rulesWithoutRegistries : rules), secrets: provider },
  );
  expect(outcome.review.apiVersion).toBe('admission.k8s.io/v1');
  expect(outcome.review.kind).toBe('AdmissionReview');
  expect(outcome.review.response.uid).toBe(doc.request.uid);
  const ops = decodePatch(outcome.review);
  const patched = applyAsApiServer(doc.request.object, ops);
  return { outcome, calls, ops, patched, doc };
}

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/registry-reader';
const NAME = /^acr-pull-[0-9a-f]{20}$/;

describe('mutated fixtures', () => {
  it('same account, default domain, custom role: instance derived from the domain, chain of one hop', async () => {
    const { patched, calls, ops } = await run('pod-default-domain-service-arn');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.binding).toEqual({
      chain: { serviceArn: SVC },
      registries: [{ kind: 'instance-name', instanceName: 'myreg', region: 'cn-hangzhou' }],
    });
    expect(calls[0]!.namespace).toBe('team-a');
    expect(calls[0]!.requester).toBe('team-a');
    expect(calls[0]!.name).toMatch(NAME);
    // imagePullSecrets was absent: the whole array is added in one op.
    expect(ops).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: calls[0]!.name }] }]);
    expect(patched.spec.imagePullSecrets).toEqual([{ name: calls[0]!.name }]);
  });

  it('custom domain with instance IDs: default region, operator-listed domains attached', async () => {
    const { calls, patched } = await run('pod-instance-ids-custom-domain');
    expect(calls.map((c) => c.binding)).toEqual([
      {
        chain: {},
        registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou', domains: ['registry.example.com'] }],
      },
    ]);
    expect(patched.spec.imagePullSecrets).toEqual([{ name: calls[0]!.name }]);
  });

  it('region-prefixed instance IDs: regions kept, one chain serves both, one Secret', async () => {
    const { calls } = await run('pod-region-prefixed-instance-ids');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.binding.registries).toEqual([
      // cri-abc123... is configured for cn-hangzhou; in cn-beijing it is another instance: no configured domains.
      { kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing' },
      { kind: 'instance', instanceId: 'cri-0123456789abcdef', region: 'cn-shanghai' },
    ]);
  });

  it('cross-account chain: service then user role', async () => {
    const { calls } = await run('pod-cross-account-chain');
    expect(calls[0]!.binding.chain).toEqual({ serviceArn: SVC, userArn: USR });
    expect(calls[0]!.binding.registries).toEqual([{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing' }]);
  });

  it('two chains pair with two instances by position: two Secrets, both referenced', async () => {
    const { calls, patched } = await run('pod-two-chains-two-instances');
    expect(calls.map((c) => c.binding)).toEqual([
      { chain: { serviceArn: SVC, userArn: USR }, registries: [{ kind: 'instance', instanceId: 'cri-aaaa000000000001', region: 'cn-hangzhou' }] },
      {
        chain: { serviceArn: SVC, userArn: 'acs:ram::7777777777777777:role/reader' },
        registries: [{ kind: 'instance', instanceId: 'cri-bbbb000000000002', region: 'cn-hangzhou' }],
      },
    ]);
    expect(calls[0]!.name).not.toBe(calls[1]!.name);
    expect(patched.spec.imagePullSecrets).toEqual(calls.map((c) => ({ name: c.name })));
  });

  it('Deployment-created Pod with only generateName uses request.namespace', async () => {
    const { calls, patched, doc } = await run('pod-deployment-generate-name');
    expect(doc.request.object.metadata.namespace).toBeUndefined();
    expect(calls[0]!.namespace).toBe('team-a');
    expect(patched.spec.imagePullSecrets).toHaveLength(1);
  });

  it('the older singular annotation works alone and agrees with the plural one', async () => {
    const single = await run('pod-singular-instance-id');
    const both = await run('pod-singular-and-plural-agree');
    expect(single.calls[0]!.binding.registries).toEqual([
      { kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou', domains: ['registry.example.com'] },
    ]);
    // The plural list wins and brings its region.
    expect(both.calls[0]!.binding.registries).toEqual([{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing' }]);
  });

  it('keeps the user\'s imagePullSecrets in order and appends', async () => {
    const { ops, patched, calls } = await run('pod-existing-image-pull-secrets');
    expect(ops).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: calls[0]!.name } }]);
    expect(patched.spec.imagePullSecrets).toEqual([{ name: 'dockerhub' }, { name: 'quay' }, { name: calls[0]!.name }]);
  });

  it('leaves the user\'s duplicate entries alone', async () => {
    const { patched, calls } = await run('pod-duplicate-user-secrets');
    expect(patched.spec.imagePullSecrets).toEqual([{ name: 'mine' }, { name: 'mine' }, { name: calls[0]!.name }]);
  });

  it('an init container on a default domain is served', async () => {
    const { calls } = await run('pod-init-container-default-domain');
    expect(calls[0]!.binding.registries).toEqual([{ kind: 'instance-name', instanceName: 'myreg', region: 'cn-hangzhou' }]);
  });

  it('Personal Edition hosts group by region', async () => {
    const { calls } = await run('pod-personal-edition');
    expect(calls[0]!.binding.registries).toEqual([
      {
        kind: 'personal',
        region: 'cn-hangzhou',
        domains: ['crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com', 'registry.cn-hangzhou.aliyuncs.com'],
      },
    ]);
  });

  it('dry run: the same patch, no Secret written', async () => {
    const dry = await run('pod-dry-run');
    const wet = await run('pod-instance-ids-custom-domain');
    expect(dry.calls).toHaveLength(0);
    expect(dry.outcome.path).toBe('dry-run');
    expect(dry.ops).toEqual(wet.ops);
  });

  it('configured registry without annotations: the webhook\'s own identity', async () => {
    const { calls, patched } = await run('pod-configured-registry-no-annotations');
    expect(calls.map((c) => c.binding)).toEqual([
      { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou', domains: ['registry.example.com'] }] },
    ]);
    expect(patched.spec.imagePullSecrets).toHaveLength(1);
    const unconfigured = await run('pod-configured-registry-no-annotations', { withRegistries: false });
    expect(unconfigured.ops).toEqual([]);
    expect(unconfigured.calls).toHaveLength(0);
  });

  it('ImageCache appends "namespace:name" after the existing entries; Secret in the configured namespace', async () => {
    const { patched, calls, ops } = await run('imagecache-existing-secrets');
    expect(calls[0]!.namespace).toBe('acr-pull-webhook');
    expect(ops).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: `acr-pull-webhook:${calls[0]!.name}` }]);
    expect(patched.spec.imagePullSecrets).toEqual(['team-a:mine', `acr-pull-webhook:${calls[0]!.name}`]);
  });

  it('ImageCache without imagePullSecrets gets the array', async () => {
    const { patched, calls } = await run('imagecache-no-secrets');
    expect(patched.spec.imagePullSecrets).toEqual([`acr-pull-webhook:${calls[0]!.name}`]);
  });

  it('re-invocation of a patched object adds nothing (idempotent) but still ensures the Secret', async () => {
    for (const name of ['pod-existing-image-pull-secrets', 'pod-two-chains-two-instances', 'imagecache-existing-secrets']) {
      const first = await run(name);
      const doc = fixture(name);
      doc.request.object = first.patched;
      const { provider, calls } = recordingProvider();
      const again = await handleAdmission(parseAdmissionReview(doc), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets: provider });
      expect(again.review.response.allowed).toBe(true);
      expect(again.review.response.patch).toBeUndefined();
      expect(again.review.response.patchType).toBeUndefined();
      expect(calls.length).toBeGreaterThan(0);
    }
  });
});

describe('unchanged fixtures', () => {
  it.each([
    ['pod-no-annotations', 'no-annotation'],
    ['pod-update', 'not-create'],
    ['deployment-unhandled-kind', 'unhandled-kind'],
    ['pod-ephemeral-subresource', 'unhandled-kind'],
    ['pod-mirror', 'mirror-pod'],
    ['pod-kube-system-annotated', 'excluded-namespace'],
  ])('%s is allowed unchanged (%s)', async (name, reason) => {
    const { outcome, calls } = await run(name);
    expect(outcome.review.response.allowed).toBe(true);
    expect(outcome.review.response.patch).toBeUndefined();
    expect(outcome.plan).toMatchObject({ action: 'allow', reason });
    expect(calls).toHaveLength(0);
  });

  it('warns that annotations in an excluded namespace are ignored', async () => {
    const { outcome } = await run('pod-kube-system-annotated');
    expect(outcome.review.response.warnings).toEqual(['ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system']);
  });
});

describe('denied fixtures', () => {
  it.each([
    ['deny-empty-instance-ids', 'k8s.aliyun.com/acr-instance-ids is empty: remove it or give a value'],
    ['deny-empty-item', 'k8s.aliyun.com/acr-instance-ids has an empty item at position 2 in "cri-abc123def4567890,,cri-0123456789abcdef"'],
    ['deny-bad-region', 'k8s.aliyun.com/acr-instance-ids: "Beijing" in "Beijing:cri-abc123def4567890" is not a region ID (expected e.g. cn-beijing:cri-xxxx)'],
    ['deny-bad-instance-id', 'k8s.aliyun.com/acr-instance-ids: "cri_ABC" is not an ACR Enterprise Edition instance ID'],
    ['deny-bad-arn', 'k8s.aliyun.com/acr-service-arns: "arn:aws:iam::123:role/x" is not a RAM role ARN (expected acs:ram::<account id>:role/<role name>'],
    ['deny-user-without-service', 'k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns'],
    ['deny-arn-count-mismatch', 'k8s.aliyun.com/acr-service-arns lists 2 ARNs but k8s.aliyun.com/acr-user-arns lists 3: give one service ARN for all user ARNs'],
    ['deny-chain-instance-mismatch', '2 credential chains (k8s.aliyun.com/acr-service-arns) but 3 instance IDs in k8s.aliyun.com/acr-instance-ids: give one chain'],
    ['deny-chains-without-instances', '2 credential chains (k8s.aliyun.com/acr-service-arns) but no k8s.aliyun.com/acr-instance-ids'],
    ['deny-singular-contradicts-plural', 'k8s.aliyun.com/acr-instance-id "cri-0123456789abcdef" is not in k8s.aliyun.com/acr-instance-ids'],
    ['deny-typo-annotation', 'unknown annotation "k8s.aliyun.com/acr-instance-ides": did you mean "k8s.aliyun.com/acr-instance-ids"?'],
    ['deny-no-acr-image', 'no image is on an ACR default domain'],
    ['deny-non-string-annotations', 'k8s.aliyun.com/acr-instance-ids must be a string'],
  ])('%s', async (name, message) => {
    const { outcome, calls, ops } = await run(name);
    expect(outcome.review.response.allowed).toBe(false);
    expect(outcome.review.response.status?.code).toBe(400);
    expect(outcome.review.response.status?.message).toContain(message);
    expect(ops).toEqual([]);
    expect(calls).toHaveLength(0);
  });
});

describe('no default region (neither defaultRegion nor ALIBABA_CLOUD_REGION_ID)', () => {
  const noRegion = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');

  it.each([
    ['pod-instance-ids-custom-domain', 'k8s.aliyun.com/acr-instance-ids'],
    ['pod-singular-instance-id', 'k8s.aliyun.com/acr-instance-id'],
  ])('%s: an instance ID without a region prefix is denied, naming the key and both fixes', async (name, key) => {
    const { outcome, calls } = await run(name, { rules: noRegion });
    expect(outcome.review.response.allowed).toBe(false);
    expect(outcome.review.response.status?.code).toBe(400);
    expect(outcome.review.response.status?.message).toBe(
      `${key}: "cri-abc123def4567890" has no region prefix and acr-pull-webhook has no default region: write it as ` +
        '<region>:cri-abc123def4567890 (e.g. cn-beijing:cri-abc123def4567890), or ask the cluster operator to set ' +
        'ALIBABA_CLOUD_REGION_ID or defaultRegion',
    );
    expect(calls).toEqual([]);
  });

  it('region-prefixed IDs and default domains need no default region', async () => {
    expect((await run('pod-region-prefixed-instance-ids', { rules: noRegion })).calls[0]!.binding.registries).toEqual([
      { kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-beijing' },
      { kind: 'instance', instanceId: 'cri-0123456789abcdef', region: 'cn-shanghai' },
    ]);
    expect((await run('pod-default-domain-service-arn', { rules: noRegion })).calls).toHaveLength(1);
  });
});

describe('transport fixtures', () => {
  it.each([
    ['transport-missing-request.json', 'request is missing or not an object'],
    ['transport-missing-uid.json', 'request.uid is missing or not a string'],
    ['transport-v1beta1.json', 'apiVersion must be "admission.k8s.io/v1"'],
  ])('%s is a transport error', (name, message) => {
    expect(() => parseAdmissionReview(JSON.parse(fixtureText(name)))).toThrow(TransportError);
    expect(() => parseAdmissionReview(JSON.parse(fixtureText(name)))).toThrow(message);
  });
});

describe('warm path', () => {
  it('a provider that reports the Secret fresh is not asked to ensure it (no promise, no timer)', async () => {
    const doc = fixture('pod-cross-account-chain');
    let ensured = 0;
    const fresh: string[] = [];
    const provider: PullSecretProvider = {
      ensure: async () => {
        ensured++;
        return 'cold';
      },
      fresh: (spec) => {
        fresh.push(spec.name);
        return true;
      },
      ready: () => true,
    };
    const outcome = await handleAdmission(parseAdmissionReview(doc), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets: provider });
    expect(outcome.path).toBe('cached');
    expect(outcome.result).toBe('patched');
    expect(ensured).toBe(0);
    expect(fresh).toHaveLength(1);
    // Not fresh: falls through to ensure.
    provider.fresh = () => false;
    const cold = await handleAdmission(parseAdmissionReview(doc), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets: provider });
    expect(cold.path).toBe('cold');
    expect(ensured).toBe(1);
  });
});
