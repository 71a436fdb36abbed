// validateWorkload and isWorkload rule by rule, with exact results: which requests are looked at, how the workload
// is named in a denial, where its template is, and each warning (several at once, and none when none applies).
import { beforeEach, describe, expect, it } from 'vitest';
import { credentialHelper, helperBindings } from '../../src/acr/credential-helper.js';
import { planAdmission, servingRules } from '../../src/admission/plan.js';
import type { AdmissionRequest } from '../../src/admission/review.js';
import { isWorkload, validateWorkload } from '../../src/admission/workloads.js';
import { parseConfig } from '../../src/config/config.js';

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(
    parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: ['registry.example.com', 'mirror.example.com'] }] }, { ownNamespace: 'acr-pull-webhook' }),
    'acr-pull-webhook',
  );
});
const IDS = 'k8s.aliyun.com/acr-instance-ids';
const BAD = { [IDS]: 'cri_BAD' };
const BAD_MESSAGE =
  `${IDS}: "cri_BAD" is not an ACR Enterprise Edition instance ID (expected cri- followed by lower-case letters and digits, ` +
  'optionally prefixed by a region: cn-beijing:cri-xxxx)';

function req(over: Partial<AdmissionRequest> & { object?: unknown }): AdmissionRequest {
  return { uid: 'u', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', namespace: 'team-a', dryRun: false, object: {}, ...over };
}
const deployment = (meta: Record<string, unknown>, template: unknown) => ({ metadata: meta, spec: { template } });
const pod = (annotations: Record<string, string> | undefined, containers: unknown[], extra: Record<string, unknown> = {}) => ({
  metadata: annotations ? { annotations } : {},
  spec: { containers, ...extra },
});

describe('isWorkload', () => {
  it('the six kinds in their groups, version v1 only', () => {
    const yes = [
      ['apps', 'Deployment'],
      ['apps', 'StatefulSet'],
      ['apps', 'DaemonSet'],
      ['apps', 'ReplicaSet'],
      ['batch', 'Job'],
      ['batch', 'CronJob'],
    ];
    for (const [group, kind] of yes) expect(isWorkload(req({ kind: { group: group!, version: 'v1', kind: kind! } })), kind).toBe(true);
    for (const kind of [
      { group: 'apps', version: 'v1beta2', kind: 'Deployment' },
      { group: 'batch', version: 'v1', kind: 'Deployment' },
      { group: 'apps', version: 'v1', kind: 'Job' },
      { group: '', version: 'v1', kind: 'Pod' },
      { group: 'apps', version: 'v1', kind: 'toString' },
    ]) {
      expect(isWorkload(req({ kind })), JSON.stringify(kind)).toBe(false);
    }
  });
});

describe('validateWorkload', () => {
  it('skips other kinds and groups, sub-resources, DELETE and CONNECT, and objects that are not objects', () => {
    const denied = deployment({ name: 'web' }, pod(BAD, [{ image: 'nginx' }]));
    expect(validateWorkload(req({ object: denied }), rules).action).toBe('deny');
    expect(validateWorkload(req({ object: denied, operation: 'UPDATE' }), rules).action).toBe('deny');
    expect(validateWorkload(req({ object: denied, kind: { group: 'batch', version: 'v1', kind: 'Deployment' } }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: denied, kind: { group: '', version: 'v1', kind: 'Pod' } }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: denied, subResource: 'scale' }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: denied, operation: 'DELETE' }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: denied, operation: 'CONNECT' }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: 'x' }), rules)).toEqual({ action: 'skip' });
    expect(validateWorkload(req({ object: undefined }), rules)).toEqual({ action: 'skip' });
  });

  it('names the workload by name, else generateName*, else (unnamed); its namespace from the request, else the object, else default', () => {
    const template = pod(BAD, [{ image: 'nginx' }]);
    const message = (over: Partial<AdmissionRequest>, meta: Record<string, unknown>) => {
      const v = validateWorkload(req({ ...over, object: deployment(meta, template) }), rules);
      return v.action === 'deny' ? v.message : v.action;
    };
    expect(message({}, { name: 'web', generateName: 'gen-' })).toBe(`Deployment team-a/web: spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    expect(message({}, { generateName: 'gen-' })).toBe(`Deployment team-a/gen-*: spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    expect(message({}, { name: 5 })).toBe(`Deployment team-a/(unnamed): spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    expect(message({ namespace: undefined }, { name: 'web', namespace: 'team-b' })).toBe(`Deployment team-b/web: spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    expect(message({ namespace: undefined }, { name: 'web', namespace: 7 })).toBe(`Deployment default/web: spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    expect(message({ namespace: 'team-c' }, { name: 'web', namespace: 'team-b' })).toBe(`Deployment team-c/web: spec.template.metadata.annotations: ${BAD_MESSAGE}`);
    const cron = validateWorkload(req({ kind: { group: 'batch', version: 'v1', kind: 'CronJob' }, object: { metadata: { name: 'nightly' }, spec: { jobTemplate: { spec: { template } } } } }), rules);
    expect(cron).toEqual({ action: 'deny', code: 400, message: `CronJob team-a/nightly: spec.jobTemplate.spec.template.metadata.annotations: ${BAD_MESSAGE}` });
  });

  it('a workload without a template (or a template that is not an object) is allowed without warnings', () => {
    expect(validateWorkload(req({ object: { metadata: { name: 'web', annotations: BAD } } }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ object: { spec: { template: 'x' } } }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ kind: { group: 'batch', version: 'v1', kind: 'CronJob' }, object: { spec: { template: pod(BAD, []) } } }), rules)).toEqual({ action: 'allow', warnings: [] });
  });

  it('annotations on the workload only: a warning; on both, or on neither, none; the template is judged, not the workload', () => {
    const ok = { [IDS]: 'cri-abc123def4567890' };
    const images = [{ image: 'registry.example.com/app:1' }];
    expect(validateWorkload(req({ object: deployment({ annotations: ok }, pod(undefined, images)) }), rules)).toEqual({
      action: 'allow',
      warnings: ['Deployment has ACR annotations on its own metadata: move them to spec.template.metadata.annotations'],
    });
    expect(validateWorkload(req({ object: deployment({ annotations: BAD }, pod(ok, images)) }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ object: deployment({ annotations: { other: 'x' } }, pod(undefined, images)) }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ object: deployment({}, pod(ok, images)) }), rules)).toEqual({ action: 'allow', warnings: [] });
  });

  it('the template is checked as a Pod being created (warnings of an allowed Pod included)', () => {
    // A Pod in an excluded namespace with ACR annotations is allowed with a warning; so is its workload.
    expect(validateWorkload(req({ namespace: 'kube-system', object: deployment({ name: 'web' }, pod({ [IDS]: 'cri-abc123def4567890' }, [{ image: 'nginx' }])) }), rules)).toEqual({
      action: 'allow',
      warnings: ['ACR annotations ignored: acr-pull-webhook does not serve namespace kube-system'],
    });
  });

  it('domain warnings: one per instance none of whose domains an image (init containers included) uses; other registries give none', () => {
    const two = { [IDS]: 'cri-abc123def4567890,cri-other0000000001' };
    const none = validateWorkload(req({ object: deployment({}, pod(two, [{ image: 'docker.io/library/nginx:1' }, 'junk', { name: 'no-image' }])) }), rules);
    expect(none).toEqual({ action: 'allow', warnings: ['no container image is on a domain of ACR instance cri-abc123def4567890 (registry.example.com, mirror.example.com)'] });
    // One of the two domains is enough, in an init container too.
    expect(validateWorkload(req({ object: deployment({}, pod(two, [{ image: 'nginx' }], { initContainers: [{ image: 'mirror.example.com/init:1' }] })) }), rules)).toEqual({ action: 'allow', warnings: [] });
    // A long warning is cut to 119 characters.
    const long = validateWorkload(
      req({ object: deployment({}, pod({ [IDS]: 'cri-abc123def4567890' }, [{ image: 'nginx' }])) }),
      servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: ['a-very-long-registry-host-name.example.com', 'another-long-registry-host-name.example.com'] }] }, { ownNamespace: 'x' }), 'x'),
    );
    expect(long).toEqual({ action: 'allow', warnings: ['no container image is on a domain of ACR instance cri-abc123def4567890 (a-very-long-registry-host-name.example.com, ...'] });
    expect((long as { warnings: string[] }).warnings[0]).toHaveLength(119);
  });

  it('domain warnings read only the images there are: a template without containers is on no domain, docker.io included', () => {
    // An operator may list a mirror under any host name; the check must not invent an image (a bare name is docker.io).
    const mirrorRules = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', registries: [{ instanceId: 'cri-abc123def4567890', domains: ['docker.io'] }] }, { ownNamespace: 'x' }), 'x');
    const annotated = { [IDS]: 'cri-abc123def4567890' };
    expect(validateWorkload(req({ object: deployment({}, pod(annotated, [])) }), mirrorRules)).toEqual({
      action: 'allow',
      warnings: ['no container image is on a domain of ACR instance cri-abc123def4567890 (docker.io)'],
    });
    expect(validateWorkload(req({ object: deployment({}, pod(annotated, [{ image: 'nginx' }])) }), mirrorRules)).toEqual({ action: 'allow', warnings: [] });
  });

  it('a Personal Edition registry of the credential helper (template of a ServiceAccount it covers) gives no domain warning', () => {
    // The helper's Personal Edition Secret lists the region's classic hosts; no image here is on them.
    const helper = credentialHelper({ namespaces: 'all', serviceAccounts: ['deployer'] }, helperBindings([{ edition: 'personal', region: 'cn-shanghai', chain: {} }]), 0, () => false);
    const withHelper = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou' }, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook', undefined, undefined, { credentialHelper: () => helper });
    const template = pod(undefined, [{ image: 'nginx:1.27' }], { serviceAccountName: 'deployer' });
    // The helper is in play: the template's Pod gets its Secret.
    const plan = planAdmission({ uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', dryRun: true, object: template }, withHelper);
    expect(plan).toMatchObject({ action: 'mutate', source: 'credential-helper', specs: [{ binding: { registries: [{ kind: 'personal', region: 'cn-shanghai' }] } }] });
    expect(validateWorkload(req({ object: deployment({ name: 'web' }, template) }), withHelper)).toEqual({ action: 'allow', warnings: [] });
  });

  it('a template that already lists both managed Secrets names both, comma-separated', () => {
    const chains = { [IDS]: 'cn-beijing:cri-one0000000000001,cn-beijing:cri-two0000000000002', 'k8s.aliyun.com/acr-service-arns': 'acs:ram::1234567890123456:role/a,acs:ram::1234567890123456:role/b' };
    const template = pod(chains, [{ image: 'nginx' }]);
    const plan = planAdmission({ uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', dryRun: true, object: template }, rules);
    if (plan.action !== 'mutate') throw new Error('expected a mutate plan');
    const [a, b] = plan.specs.map((s) => s.name);
    const listed = { ...template, spec: { ...template.spec, imagePullSecrets: [{ name: a }, { name: b }] } };
    expect(validateWorkload(req({ object: deployment({}, listed) }), rules)).toEqual({
      action: 'allow',
      // 136 characters, cut to 116 and "...".
      warnings: [`spec.template.spec.imagePullSecrets already lists ${a}, ${b}, which the webhook manages`.slice(0, 116) + '...'],
    });
  });

  it('a template without metadata, or with a null container, is checked like any other', () => {
    const served = [{ image: 'registry.example.com/app:1' }];
    expect(validateWorkload(req({ object: deployment({ name: 'web' }, { spec: { containers: served } }) }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ object: deployment({ name: 'web' }, pod({ [IDS]: 'cri-abc123def4567890' }, [null, ...served])) }), rules)).toEqual({ action: 'allow', warnings: [] });
    expect(validateWorkload(req({ object: deployment({ name: 'web' }, pod({ [IDS]: 'cri-abc123def4567890' }, [null, { image: 'nginx' }])) }), rules)).toEqual({
      action: 'allow',
      warnings: ['no container image is on a domain of ACR instance cri-abc123def4567890 (registry.example.com, mirror.example.com)'],
    });
  });
});
