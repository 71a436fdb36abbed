// handleAdmission's outcome for each way a review can go, with exact values: the kind label (a closed set), the
// result and path labels that metrics and logs use, the answer, and what is reported when a helper Secret fails.
import { beforeEach, describe, expect, it } from 'vitest';
import type { CredentialHelper } from '../../src/acr/credential-helper.js';
import type { PullSecretSpec } from '../../src/acr/model.js';
import { handleAdmission, type HelperSecretFailure, type Outcome } from '../../src/admission/handler.js';
import { servingRules, type ServingRules } from '../../src/admission/plan.js';
import type { AdmissionRequest } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import { DenialError, type EnsurePath, type PullSecretProvider } from '../../src/pull-secrets/types.js';

const OWN = 'acr-pull-webhook';
let rules!: ServingRules;
let helperSpecs: PullSecretSpec[] = [];
beforeEach(() => {
  helperSpecs = [];
  const helper = {
    covers: (ns: string, name: string) => ns === 'team-a' && name === 'default',
    specs: () => helperSpecs,
    expiringThresholdMs: 1,
    bindings: [],
  } as unknown as CredentialHelper;
  rules = servingRules(
    parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }, { instanceId: 'cri-two', domains: ['two.example.com'], serviceArn: 'acs:ram::1234567890123456:role/two' }] }, { ownNamespace: OWN }),
    OWN,
    () => ({}),
    undefined,
    { credentialHelper: () => helper },
  );
});

function provider(opts: { fresh?: (s: PullSecretSpec) => boolean; ensure?: (s: PullSecretSpec) => EnsurePath | Error } = {}) {
  const ensured: string[] = [];
  const p: PullSecretProvider = {
    ensure: async (s) => {
      ensured.push(s.name);
      const r = opts.ensure ? opts.ensure(s) : 'cold';
      if (r instanceof Error) throw r;
      return r;
    },
    ...(opts.fresh ? { fresh: opts.fresh } : {}),
    ready: () => true,
  };
  return { p, ensured };
}

const pod = (images: string[], extra: Record<string, unknown> = {}): AdmissionRequest => ({
  uid: 'uid-1',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  operation: 'CREATE',
  namespace: 'team-a',
  dryRun: false,
  object: { metadata: { name: 'p' }, spec: { containers: images.map((image) => ({ image })), ...extra } },
});
const account = (extra: Record<string, unknown> = {}, over: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: 'uid-2',
  kind: { group: '', version: 'v1', kind: 'ServiceAccount' },
  operation: 'CREATE',
  namespace: 'team-a',
  dryRun: false,
  object: { metadata: { name: 'default' }, ...extra },
  ...over,
});

async function run(req: AdmissionRequest, p: PullSecretProvider, failures: HelperSecretFailure[] = []): Promise<Outcome> {
  return handleAdmission(req, { deadline: Date.now() + 5000 }, { rules: () => rules, secrets: p, onHelperSecretFailure: (f) => failures.push(f) });
}
const labels = (o: Outcome) => [o.kind, o.result, o.path];

describe('Pods and other kinds', () => {
  it('another kind is "other", unchanged; a Pod with nothing to do is unchanged with no-annotation; a denial is denied', async () => {
    const { p } = provider();
    expect(labels(await run({ ...pod([]), kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, p))).toEqual(['other', 'unchanged', 'no-annotation']);
    // (team-b: the credential helper of these rules covers team-a's default ServiceAccount.)
    expect(labels(await run({ ...pod(['nginx']), namespace: 'team-b' }, p))).toEqual(['Pod', 'unchanged', 'no-annotation']);
    const denied = await run({ ...pod([]), object: { metadata: { annotations: { 'k8s.aliyun.com/acr-service-arns': 'role/x' } }, spec: { containers: [] } } }, p);
    expect(labels(denied)).toEqual(['Pod', 'denied', 'no-annotation']);
    expect(denied.review.response).toMatchObject({ allowed: false, status: { code: 400 } });
  });

  it('a dry run is patched (or unchanged when the Secret is already listed) and writes nothing', async () => {
    const { p, ensured } = provider();
    const dry = await run({ ...pod(['one.example.com/a']), dryRun: true }, p);
    expect(labels(dry)).toEqual(['Pod', 'patched', 'dry-run']);
    const name = (dry.plan as { specs: PullSecretSpec[] }).specs[0]!.name;
    expect(labels(await run({ ...pod(['one.example.com/a'], { imagePullSecrets: [{ name }] }), dryRun: true }, p))).toEqual(['Pod', 'unchanged', 'dry-run']);
    expect(ensured).toEqual([]);
  });

  it('cached when every Secret is fresh; otherwise each is ensured, and the path is cold when any was written', async () => {
    const images = ['one.example.com/a', 'two.example.com/b'];
    const all = provider({ fresh: () => true });
    expect(labels(await run(pod(images), all.p))).toEqual(['Pod', 'patched', 'cached']);
    expect(all.ensured).toEqual([]);
    const first = (await run({ ...pod(images), dryRun: true }, all.p)).plan as { specs: PullSecretSpec[] };
    const [one, two] = first.specs.map((s) => s.name);
    const some = provider({ fresh: (s) => s.name === one, ensure: () => 'cached' });
    expect(labels(await run(pod(images), some.p))).toEqual(['Pod', 'patched', 'cached']);
    expect(some.ensured).toEqual([one, two]);
    const cold = provider({ ensure: (s) => (s.name === two ? 'cold' : 'cached') });
    const outcome = await run(pod(images), cold.p);
    expect(labels(outcome)).toEqual(['Pod', 'patched', 'cold']);
    expect(outcome.review.response.allowed).toBe(true);
    expect(outcome.review.response.warnings).toBeUndefined();
  });

  it('a DenialError refuses with its code and message; any other error is a 500 that names the request, not the error', async () => {
    const denial = provider({ ensure: () => new DenialError('AssumeRole of acs:ram::1:role/x was denied', 403, 'Forbidden') });
    const d = await run(pod(['one.example.com/a']), denial.p);
    expect(labels(d)).toEqual(['Pod', 'denied', 'cold']);
    expect(d.review.response).toEqual({ uid: 'uid-1', allowed: false, status: { code: 403, message: 'AssumeRole of acs:ram::1:role/x was denied', reason: 'Forbidden' } });
    const broken = provider({ ensure: () => new Error('secret-ish detail') });
    const e = await run(pod(['one.example.com/a']), broken.p);
    expect(labels(e)).toEqual(['Pod', 'error', 'cold']);
    expect(e.review.response.status).toEqual({
      code: 500,
      message: 'acr-pull-webhook could not prepare the pull Secret (internal error; see the webhook log for request uid-1)',
      reason: 'InternalError',
    });
    expect((e.error as Error).message).toBe('secret-ish detail');
  });
});

describe('ServiceAccounts', () => {
  it('allow and deny are labelled ServiceAccount, unchanged or denied, no-annotation', async () => {
    const { p } = provider();
    expect(labels(await run(account({}, { operation: 'DELETE' }), p))).toEqual(['ServiceAccount', 'unchanged', 'no-annotation']);
    const denied = await run(account({ metadata: { name: 'default', annotations: { 'k8s.aliyun.com/acr-service-arns': 'role/x' } } }), p);
    expect(labels(denied)).toEqual(['ServiceAccount', 'denied', 'no-annotation']);
    expect(denied.review.response.status?.code).toBe(400);
  });

  it('the helper\'s Secrets: dry run, fresh, written, already listed', async () => {
    helperSpecs = [{ namespace: 'team-a', name: 'acr-pull-helper', requester: 'team-a', binding: { chain: {}, registries: [] } }];
    expect(labels(await run(account({}, { dryRun: true }), provider().p))).toEqual(['ServiceAccount', 'patched', 'dry-run']);
    const fresh = provider({ fresh: () => true });
    expect(labels(await run(account(), fresh.p))).toEqual(['ServiceAccount', 'patched', 'cached']);
    expect(fresh.ensured).toEqual([]);
    const stale = provider({ fresh: () => false, ensure: () => 'cached' });
    expect(labels(await run(account(), stale.p))).toEqual(['ServiceAccount', 'patched', 'cached']);
    expect(stale.ensured).toEqual(['acr-pull-helper']);
    expect(labels(await run(account(), provider({ ensure: () => 'cold' }).p))).toEqual(['ServiceAccount', 'patched', 'cold']);
    expect(labels(await run(account({ imagePullSecrets: [{ name: 'acr-pull-helper' }] }), provider({ ensure: () => 'cached' }).p))).toEqual(['ServiceAccount', 'unchanged', 'cached']);
  });

  it('a helper Secret that fails never refuses the ServiceAccount: a warning, and the failure reported once', async () => {
    helperSpecs = [
      { namespace: 'team-a', name: 'acr-pull-ok', requester: 'team-a', binding: { chain: {}, registries: [] } },
      { namespace: 'team-a', name: 'acr-pull-failing', requester: 'team-a', binding: { chain: {}, registries: [] } },
    ];
    const failures: HelperSecretFailure[] = [];
    const outcome = await run(account(), provider({ ensure: (s) => (s.name === 'acr-pull-failing' ? new Error('STS unreachable') : 'cached') }).p, failures);
    expect(labels(outcome)).toEqual(['ServiceAccount', 'patched', 'cold']);
    expect(outcome.review.response.allowed).toBe(true);
    expect(outcome.review.response.warnings).toEqual(['pull Secret acr-pull-failing (acr-configuration) is not ready yet; the webhook retries: see its Events']);
    // The error as describeError shows it: the class, never an arbitrary message.
    expect(failures).toEqual([{ namespace: 'team-a', serviceAccount: 'default', secret: 'acr-pull-failing', error: 'Error' }]);
  });

  it('ensures the helper Secrets unless every one is fresh; works without a failure callback', async () => {
    helperSpecs = [
      { namespace: 'team-a', name: 'acr-pull-a', requester: 'team-a', binding: { chain: {}, registries: [] } },
      { namespace: 'team-a', name: 'acr-pull-b', requester: 'team-a', binding: { chain: {}, registries: [] } },
    ];
    const half = provider({ fresh: (s) => s.name === 'acr-pull-a', ensure: () => 'cached' });
    expect(labels(await run(account(), half.p))).toEqual(['ServiceAccount', 'patched', 'cached']);
    expect(half.ensured).toEqual(['acr-pull-a', 'acr-pull-b']);
    const failing = provider({ ensure: () => new Error('x') });
    const outcome = await handleAdmission(account(), { deadline: Date.now() + 5000 }, { rules: () => rules, secrets: failing.p });
    expect(outcome.review.response.allowed).toBe(true);
    expect(outcome.review.response.warnings).toHaveLength(2);
  });
});


describe('a Pod whose credential-helper Secret fails', () => {
  const helperSpec: PullSecretSpec = { namespace: 'team-a', name: 'acr-pull-helper', requester: 'team-a', binding: { chain: {}, registries: [] } };
  const anyAccount = () =>
    servingRules(
      parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-one', domains: ['one.example.com'] }] }, { ownNamespace: OWN }),
      OWN,
      () => ({}),
      undefined,
      { credentialHelper: () => ({ covers: (ns: string) => ns === 'team-a', specs: () => [helperSpec], expiringThresholdMs: 1, bindings: [] }) as unknown as CredentialHelper },
    );
  const failHelper = (s: PullSecretSpec) => (s.name === 'acr-pull-helper' ? new Error('STS unreachable') : 'cached');

  it('reports the Pod\'s own ServiceAccount, not "default"', async () => {
    const failures: HelperSecretFailure[] = [];
    const r = anyAccount();
    const outcome = await handleAdmission(pod(['one.example.com/a'], { serviceAccountName: 'builder' }), { deadline: Date.now() + 5000 }, {
      rules: () => r,
      secrets: provider({ ensure: failHelper }).p,
      onHelperSecretFailure: (f) => failures.push(f),
    });
    expect(outcome.review.response.allowed).toBe(true);
    expect(failures).toEqual([{ namespace: 'team-a', serviceAccount: 'builder', secret: 'acr-pull-helper', error: 'Error' }]);
  });

  it('is on the cold path even when every other Secret was already there', async () => {
    const r = anyAccount();
    const outcome = await handleAdmission(pod(['one.example.com/a']), { deadline: Date.now() + 5000 }, { rules: () => r, secrets: provider({ ensure: failHelper }).p });
    expect(labels(outcome)).toEqual(['Pod', 'patched', 'cold']);
    expect(outcome.review.response.warnings).toEqual(['pull Secret acr-pull-helper (acr-configuration) is not ready yet; the webhook retries: see its Events']);
  });
});
