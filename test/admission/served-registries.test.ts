// Unannotated objects on served registries: configured, looked up and discovered; Docker Hub left alone; a miss
// waits for one shared refresh; a discovered registry that cannot be served never blocks the Pod.
import { beforeEach, describe, expect, it } from 'vitest';
import { handleAdmission, type HandlerDeps } from '../../src/admission/handler.js';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { buildRegistryIndex } from '../../src/acr/served-registries.js';
import { parseConfig } from '../../src/config/config.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { applyAsApiServer, decodePatch, fixture } from '../support/fixtures.js';

const NS = 'acr-pull-webhook';
// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let config!: ReturnType<typeof parseConfig>;
beforeEach(() => {
  config = parseConfig(
    {
      registries: [{ instanceId: 'cri-abc123def4567890', domains: ['registry.example.com'] }],
      discovery: { enabled: true, regions: ['cn-hangzhou'] },
    },
    { ownNamespace: NS, regionFromEnv: 'cn-hangzhou' },
  );
});
const discovered = [{ instanceId: 'cri-own0000000000001', region: 'cn-hangzhou', domains: ['own-registry.cn-hangzhou.cr.aliyuncs.com', 'own-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] }];
const indexWith = (found = discovered) =>
  buildRegistryIndex({ configured: config.registries, discovered: found, discovery: { regions: ['cn-hangzhou'], personalEdition: true } });
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(config, NS, undefined, indexWith());
});

const review = () => parseAdmissionReview(fixture('pod-served-registries-no-annotations'));
const withImages = (images: string[]) => {
  const doc = fixture('pod-served-registries-no-annotations');
  doc.request.object.spec.initContainers = [];
  doc.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
  return parseAdmissionReview(doc);
};

function provider(fail: (spec: PullSecretSpec) => unknown = () => undefined) {
  const calls: PullSecretSpec[] = [];
  return {
    calls,
    secrets: {
      ensure: async (spec: PullSecretSpec) => {
        calls.push(spec);
        const e = fail(spec);
        if (e) throw e;
        return 'cold' as const;
      },
      ready: () => true,
    },
  };
}

const budget = () => ({ deadline: Date.now() + 3000 });
const isDiscovered = (s: PullSecretSpec) => s.binding.registries.some((r) => r.kind === 'personal' || (r.kind === 'instance' && r.instanceId === 'cri-own0000000000001'));

describe('unannotated objects on served registries', () => {
  it('configured and discovered registries get Secrets of their own; Docker Hub images are left alone', async () => {
    const plan = planAdmission(review(), rules);
    expect(plan).toMatchObject({ action: 'mutate', source: 'served-registry' });
    if (plan.action !== 'mutate') throw new Error('unreachable');
    expect(plan.specs.map((s) => s.binding)).toEqual([
      {
        chain: {},
        registries: [
          { kind: 'instance', instanceId: 'cri-own0000000000001', region: 'cn-hangzhou', domains: ['own-registry.cn-hangzhou.cr.aliyuncs.com', 'own-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] },
          { kind: 'personal', region: 'cn-hangzhou', domains: ['registry.cn-hangzhou.aliyuncs.com'] },
        ],
      },
      { chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-abc123def4567890', region: 'cn-hangzhou', domains: ['registry.example.com'] }] },
    ]);
    expect([...plan.optional!]).toEqual([plan.specs[0]!.name]);
    expect(plan.undiscovered).toBeUndefined();
    for (const images of [['nginx:1.27'], ['docker.io/library/busybox:1.36', 'ghcr.io/x/y:1'], ['other-registry.cn-beijing.cr.aliyuncs.com/a/b:1']]) {
      expect(planAdmission(withImages(images), rules)).toEqual({ action: 'allow', reason: 'no-annotation' });
    }
  });

  it('an unannotated ImageCache on a discovered instance gets its "namespace:name" reference, as ECI would pull it', () => {
    const doc = fixture('imagecache-existing-secrets');
    delete doc.request.object.metadata.annotations;
    doc.request.object.spec.images = ['own-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1.0'];
    const plan = planAdmission(parseAdmissionReview(doc), rules);
    if (plan.action !== 'mutate') throw new Error(`expected a mutation, got ${plan.action}`);
    expect(plan.kind).toBe('ImageCache');
    expect(plan.specs.map((s) => [s.namespace, s.binding.registries[0]])).toEqual([[NS, { kind: 'instance', instanceId: 'cri-own0000000000001', region: 'cn-hangzhou', domains: discovered[0]!.domains }]]);
    expect(plan.patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: `${NS}:${plan.specs[0]!.name}` }]);
  });

  it('a configured chain (the helper’s assumeRoleARN) gets its own binding', () => {
    const chained = parseConfig(
      { registries: [{ instanceId: 'cri-a', domains: ['a.example.com'], serviceArn: 'acs:ram::1234567890123456:role/reader' }, { instanceId: 'cri-b', domains: ['b.example.com'] }] },
      { ownNamespace: NS, regionFromEnv: 'cn-hangzhou' },
    );
    const plan = planAdmission(withImages(['a.example.com/x:1', 'b.example.com/y:1']), servingRules(chained, NS));
    if (plan.action !== 'mutate') throw new Error(`expected a mutation, got ${plan.action}`);
    expect(plan.specs.map((s) => s.binding.chain)).toEqual([{ serviceArn: 'acs:ram::1234567890123456:role/reader' }, {}]);
    expect(plan.optional).toBeUndefined();
  });

  it('an unknown default domain of a discovery region waits for one refresh, then is served', async () => {
    const req = withImages(['new-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1']);
    expect(planAdmission(req, rules)).toEqual({ action: 'allow', reason: 'no-annotation', undiscovered: true });
    let current = rules;
    let refreshes = 0;
    const p = provider();
    const deps: HandlerDeps = {
      rules: () => current,
      secrets: p.secrets,
      discovery: {
        refreshForMiss: async () => {
          refreshes++;
          current = servingRules(config, NS, undefined, indexWith([...discovered, { instanceId: 'cri-new0000000000001', region: 'cn-hangzhou', domains: ['new-registry.cn-hangzhou.cr.aliyuncs.com'] }]));
          return true;
        },
      },
    };
    const outcome = await handleAdmission(req, budget(), deps);
    expect(refreshes).toBe(1);
    expect(outcome.result).toBe('patched');
    expect(p.calls.map((s) => s.binding.registries)).toEqual([[{ kind: 'instance', instanceId: 'cri-new0000000000001', region: 'cn-hangzhou', domains: ['new-registry.cn-hangzhou.cr.aliyuncs.com'] }]]);
  });

  it('a miss the discovery cannot resolve admits the Pod unchanged; Docker Hub never asks', async () => {
    let refreshes = 0;
    const deps: HandlerDeps = { rules: () => rules, secrets: provider().secrets, discovery: { refreshForMiss: async () => (refreshes++, false) } };
    const outcome = await handleAdmission(withImages(['new-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1']), budget(), deps);
    expect(outcome.review.response).toEqual({ uid: expect.any(String), allowed: true });
    const hub = handleAdmission(withImages(['nginx:1.27', 'quay.io/a/b:1']), budget(), deps);
    expect(hub).not.toBeInstanceOf(Promise);
    expect(refreshes).toBe(1);
  });

  it('a discovered registry that cannot be served costs only its own Secret, with a warning', async () => {
    const p = provider((s) => (isDiscovered(s) ? new DenialError('acr-pull-webhook failed getting a Personal Edition registry token in cn-hangzhou: USER_NOT_EXIST', 500) : undefined));
    const req = review();
    const outcome = await handleAdmission(req, budget(), { rules: () => rules, secrets: p.secrets });
    expect(outcome.result).toBe('patched');
    expect(outcome.error).toBeInstanceOf(DenialError);
    expect(outcome.review.response.warnings).toEqual([
      'no pull Secret for own-registry.cn-hangzhou.cr.aliyuncs.com, own-registry-vpc.cn-hangzhou.cr.aliyuncs.com, registry.cn-hangzhou.aliyun'.slice(0, 119),
    ]);
    const configured = p.calls.find((s) => !isDiscovered(s))!;
    const patched = applyAsApiServer(req.object as { spec: { imagePullSecrets?: unknown } }, decodePatch(outcome.review));
    expect(patched.spec.imagePullSecrets).toEqual([{ name: configured.name }]);
  });

  it('only discovered registries at stake and none served: admitted unchanged; a configured failure is still denied', async () => {
    const failAll = provider(() => new DenialError('denied', 403));
    const onlyDiscovered = await handleAdmission(withImages(['own-registry.cn-hangzhou.cr.aliyuncs.com/a/b:1']), budget(), { rules: () => rules, secrets: failAll.secrets });
    expect(onlyDiscovered.review.response.allowed).toBe(true);
    expect(onlyDiscovered.review.response.patch).toBeUndefined();
    expect(onlyDiscovered.result).toBe('unchanged');
    const configured = await handleAdmission(withImages(['registry.example.com/a/b:1']), budget(), { rules: () => rules, secrets: failAll.secrets });
    expect(configured.review.response).toMatchObject({ allowed: false, status: { code: 403, message: 'denied' } });
  });

  it('a discovered registry slower than the deadline does not block the Pod either', async () => {
    const hang = { ensure: () => new Promise<'cold'>(() => {}), ready: () => true };
    const outcome = await handleAdmission(withImages(['registry-vpc.cn-hangzhou.aliyuncs.com/a/b:1']), { deadline: Date.now() + 300 }, { rules: () => rules, secrets: hang });
    expect(outcome.review.response.allowed).toBe(true);
    expect(outcome.review.response.warnings?.[0]).toMatch(/^no pull Secret for registry-vpc\.cn-hangzhou\.aliyuncs\.com \(found by discovery\)/);
  });
});

describe('images an instance not discovered yet may hold', () => {
  const NEW = 'new-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1';
  const newInstance = { instanceId: 'cri-new0000000000001', region: 'cn-hangzhou', domains: ['new-registry.cn-hangzhou.cr.aliyuncs.com'] };

  it('without a discovery to ask, the Pod is answered at once, unchanged', () => {
    const outcome = handleAdmission(withImages([NEW]), budget(), { rules: () => rules, secrets: provider().secrets });
    expect(outcome).not.toBeInstanceOf(Promise);
    expect(outcome).toMatchObject({ kind: 'Pod', result: 'unchanged', path: 'no-annotation' });
    expect((outcome as { review: { response: unknown } }).review.response).toEqual({ uid: '00000000-0000-4000-8000-000000000131', allowed: true });
  });

  it('a refresh that found nothing keeps the first plan: the rules are read once; a refresh that found something reads them again', async () => {
    let reads = 0;
    const deps = (found: boolean): HandlerDeps => ({
      rules: () => (reads++, rules),
      secrets: provider().secrets,
      discovery: { refreshForMiss: async () => found },
    });
    await handleAdmission(withImages([NEW]), budget(), deps(false));
    expect(reads).toBe(1);
    reads = 0;
    await handleAdmission(withImages([NEW]), budget(), deps(true));
    expect(reads).toBe(2);
  });

  it('with discovery on and nothing found or configured yet, an Enterprise default domain of its region is looked for', () => {
    const only = servingRules(config, NS, undefined, buildRegistryIndex({ configured: [], discovery: { regions: ['cn-hangzhou'], personalEdition: false } }));
    expect(only.registries.size).toBe(0);
    expect(planAdmission(withImages([NEW]), only)).toEqual({ action: 'allow', reason: 'no-annotation', undiscovered: true });
    expect(planAdmission(withImages(['other-registry.cn-beijing.cr.aliyuncs.com/a:1']), only)).toEqual({ action: 'allow', reason: 'no-annotation' });
  });

  it('a Pod with a served image and an undiscovered one is a mutation that still asks, and gets both Secrets after the refresh', async () => {
    const req = withImages(['registry.example.com/a/b:1', NEW]);
    const plan = planAdmission(req, rules);
    expect(plan).toMatchObject({ action: 'mutate', source: 'served-registry', undiscovered: true });
    // The same again, now from the memo.
    expect(planAdmission(withImages(['registry.example.com/a/b:1', NEW]), rules)).toMatchObject({ action: 'mutate', undiscovered: true });
    let current = rules;
    let refreshes = 0;
    const p = provider();
    const outcome = await handleAdmission(req, budget(), {
      rules: () => current,
      secrets: p.secrets,
      discovery: {
        refreshForMiss: async () => {
          refreshes++;
          current = servingRules(config, NS, undefined, indexWith([...discovered, newInstance]));
          return true;
        },
      },
    });
    expect(refreshes).toBe(1);
    expect(outcome.result).toBe('patched');
    expect(p.calls.map((s) => s.binding.registries.map((r) => (r.kind === 'instance' ? r.instanceId : r.kind)))).toEqual([['cri-abc123def4567890'], ['cri-new0000000000001']]);
  });
});
