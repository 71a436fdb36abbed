// The generated matchCondition against the webhook's own decision, with a CEL evaluator (@bufbuild/cel, RE2 and
// the strings extension as Kubernetes has them): for random Pods and ImageCaches without ACR annotations, whenever
// planAdmission would mutate, deny or look for an undiscovered instance, the condition sends the object. The
// real API server evaluates the same expression in test/e2e/webhook.test.ts.
import { celEnv, parse, plan, isCelError } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { credentialHelper } from '../../src/acr/credential-helper.js';
import { buildRegistryIndex, type RegistryIndex } from '../../src/acr/served-registries.js';
import { annotatedAccountKeys, describeInputs, MAX_EXPRESSION_BYTES, sendCondition, type SendInputs } from '../../src/admission/match-conditions.js';
import { planAdmission, servingRules, type ServingRules } from '../../src/admission/plan.js';
import type { AdmissionRequest } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import type { ServiceAccountInfo } from '../../src/pull-secrets/service-account-sync.js';
import { conditionPatch } from '../../src/kube/webhook-conditions.js';

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const config = parseConfig(
  {
    defaultRegion: 'cn-hangzhou',
    registries: [
      { instanceId: 'cri-listed', domains: ['registry.example.com', 'registry.example.com:5000'] },
      { instanceId: '', region: 'cn-shanghai' },
      { instanceId: 'cri-beijing', region: 'cn-beijing', domains: ['bj-registry.cn-beijing.cr.aliyuncs.com'], serviceArn: SVC },
    ],
  },
  { ownNamespace: 'acr-pull-webhook' },
);
const index = buildRegistryIndex({
  configured: config.registries,
  discovered: [{ instanceId: 'cri-found', region: 'cn-hangzhou', domains: ['found-registry.cn-hangzhou.cr.aliyuncs.com', 'found-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] }],
  discovery: { regions: ['cn-hangzhou'], personalEdition: false },
});

const accounts: ServiceAccountInfo[] = [
  { namespace: 'team-a', name: 'builder', vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': SVC } },
  // Vendor annotations that are not ACR ones: not in the webhook's hands.
  { namespace: 'team-a', name: 'app', vendorAnnotations: { 'k8s.aliyun.com/other': 'x' } },
  { namespace: 'team-b', name: 'default', vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': 'not-an-arn' } },
];
const lookup = (ns: string, name: string) => accounts.find((a) => a.namespace === ns && a.name === name);
const helper = credentialHelper(
  { serviceAccounts: ['deployer'], namespaces: ['team-c'] },
  [{ chain: {}, registries: [{ kind: 'instance', instanceId: 'cri-listed', region: 'cn-hangzhou' }] }],
  0,
  () => false,
);

function rulesFor(registries: RegistryIndex, withHelper: boolean): ServingRules {
  return servingRules(config, 'acr-pull-webhook', () => undefined, registries, { serviceAccount: lookup, ...(withHelper ? { credentialHelper: () => helper } : {}) });
}
function inputsFor(registries: RegistryIndex, withHelper: boolean): SendInputs {
  return { registries, annotatedServiceAccounts: annotatedAccountKeys(accounts), ...(withHelper ? { helper: helper.scope } : {}) };
}

const env = celEnv({ funcs: strings });
function compile(expression: string): (object: unknown, request: unknown) => boolean {
  const run = plan(env, parse(expression));
  return (object, request) => {
    const v = run({ object: object as never, request: request as never });
    if (isCelError(v)) throw new Error(`CEL error: ${String(v)}`);
    if (typeof v !== 'boolean') throw new Error(`CEL gave ${String(v)}, not a bool`);
    return v;
  };
}

// Images as users write them: served hosts (in any case, with ports), Personal Edition default hosts, default
// domains of discovery and other regions, Docker Hub names, localhost and unrelated hosts.
const IMAGES = [
  'registry.example.com/app/web:1',
  'REGISTRY.Example.COM/app/web:1',
  'registry.example.com:5000/app/web:1',
  'registry.example.com:6000/app/web:1',
  'registry.example.org/app/web:1',
  'registry.cn-shanghai.aliyuncs.com/ns/app:1',
  'registry-vpc.cn-shanghai.aliyuncs.com/ns/app:1',
  'crpi-abc123.cn-shanghai.personal.cr.aliyuncs.com/ns/app:1',
  'crpi-abc123-vpc.cn-shanghai.personal.cr.aliyuncs.com/ns/app:1',
  'registry.cn-hangzhou.aliyuncs.com/ns/app:1',
  'bj-registry.cn-beijing.cr.aliyuncs.com/app:1',
  'other-registry.cn-beijing.cr.aliyuncs.com/app:1',
  'found-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app:1',
  'brandnew-registry.cn-hangzhou.cr.aliyuncs.com/app:1',
  'Brandnew-Registry.CN-Hangzhou.cr.aliyuncs.com/app:1',
  'nginx',
  'nginx:1.27',
  'library/nginx',
  'registry.example.com',
  'localhost:5000/app',
  'localhost/app',
  'ghcr.io/org/app@sha256:abc',
  '/registry.example.com/app',
  'docker.io/library/nginx',
];

const container = fc.record({ name: fc.constant('c'), image: fc.constantFrom(...IMAGES) }, { requiredKeys: ['name'] });
const pod = fc.record(
  {
    namespace: fc.constantFrom('team-a', 'team-b', 'team-c', 'team-d'),
    serviceAccountName: fc.option(fc.constantFrom('default', 'builder', 'app', 'deployer', ''), { nil: undefined }),
    serviceAccount: fc.option(fc.constantFrom('builder', 'deployer'), { nil: undefined }),
    containers: fc.array(container, { minLength: 1, maxLength: 3 }),
    initContainers: fc.option(fc.array(container, { maxLength: 2 }), { nil: undefined }),
    ephemeralContainers: fc.option(fc.array(container, { maxLength: 1 }), { nil: undefined }),
    annotations: fc.option(fc.constantFrom({ 'k8s.aliyun.com/other': 'x' }, { team: 'a' }, { 'kubernetes.io/config.mirror': 'x' }), { nil: undefined }),
    imagePullSecrets: fc.option(fc.constant([{ name: 'own' }]), { nil: undefined }),
  },
  { requiredKeys: ['namespace', 'containers'] },
);

function podReview(p: typeof pod extends fc.Arbitrary<infer T> ? T : never) {
  const spec: Record<string, unknown> = { containers: p.containers };
  for (const k of ['serviceAccountName', 'serviceAccount', 'initContainers', 'ephemeralContainers', 'imagePullSecrets'] as const) if (p[k] !== undefined) spec[k] = p[k];
  // Through JSON, as the API server sends it (and plain objects: fast-check may build null-prototype ones).
  const object = JSON.parse(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-', ...(p.annotations ? { annotations: p.annotations } : {}) }, spec }));
  const req: AdmissionRequest = { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: p.namespace, dryRun: false, object };
  return { req, object, request: { kind: req.kind, namespace: p.namespace, operation: 'CREATE' } };
}

/** What the webhook would do with it: anything but a plain allow needs the call. */
function needsCall(req: AdmissionRequest, rules: ServingRules): boolean {
  const p = planAdmission(req, rules);
  return p.action !== 'allow' || Boolean(p.undiscovered);
}

describe('generated matchCondition', () => {
  for (const withHelper of [false, true]) {
    it(`sends every Pod the webhook would mutate, deny or look up (credential helper ${withHelper ? 'on' : 'off'}), and not the others it can tell`, () => {
      const rules = rulesFor(index, withHelper);
      const condition = sendCondition(inputsFor(index, withHelper))!;
      expect(condition.name).toBe('needs-acr-pull-webhook');
      const send = compile(condition.expression);
      const seen = { sent: 0, skipped: 0, needed: 0 };
      fc.assert(
        fc.property(pod, (p) => {
          const { req, object, request } = podReview(p);
          const needed = needsCall(req, rules);
          const sent = send(object, request);
          seen[sent ? 'sent' : 'skipped']++;
          if (needed) seen.needed++;
          // The one direction that matters: never skip a Pod that needs the webhook.
          if (needed) expect(sent, JSON.stringify(object)).toBe(true);
        }),
        { numRuns: 3000 },
      );
      // Not vacuous: both outcomes happened, and most Pods that are sent need it.
      expect(seen.skipped).toBeGreaterThan(300);
      expect(seen.needed).toBeGreaterThan(300);
    });
  }

  it('sends every ImageCache the webhook would act on, and those without a list of images', () => {
    const rules = rulesFor(index, false);
    const send = compile(sendCondition(inputsFor(index, false))!.expression);
    const request = { kind: { group: 'eci.alibabacloud.com', version: 'v1', kind: 'ImageCache' }, operation: 'CREATE' };
    let skipped = 0;
    fc.assert(
      fc.property(fc.option(fc.array(fc.constantFrom(...IMAGES), { maxLength: 3 }), { nil: undefined }), (images) => {
        const object = { apiVersion: 'eci.alibabacloud.com/v1', kind: 'ImageCache', metadata: { name: 'c' }, spec: images === undefined ? {} : { images } };
        const req: AdmissionRequest = { uid: 'u', kind: request.kind, operation: 'CREATE', dryRun: false, object };
        const sent = send(object, request);
        if (!sent) skipped++;
        if (needsCall(req, rules)) expect(sent, JSON.stringify(object)).toBe(true);
      }),
      { numRuns: 1000 },
    );
    expect(skipped).toBeGreaterThan(50);
  });

  it('the plain Pods of the bench and the e2e test are not sent; a served image and an annotated ServiceAccount are', () => {
    const send = compile(sendCondition(inputsFor(index, true))!.expression);
    const request = (namespace: string) => ({ kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE' });
    const podWith = (image: string, sa?: string) => ({ metadata: {}, spec: { containers: [{ name: 'a', image }], ...(sa ? { serviceAccountName: sa } : {}) } });
    expect(send(podWith('nginx:1.27', 'default'), request('team-a'))).toBe(false);
    expect(send(podWith('registry.example.com/app:1', 'default'), request('team-a'))).toBe(true);
    expect(send(podWith('nginx:1.27', 'builder'), request('team-a'))).toBe(true);
    expect(send(podWith('nginx:1.27', 'builder'), request('team-b'))).toBe(false);
    expect(send(podWith('nginx:1.27', 'deployer'), request('team-c'))).toBe(true);
    // The helper covers `deployer` of team-c only.
    expect(send(podWith('nginx:1.27', 'default'), request('team-c'))).toBe(false);
    expect(send(podWith('nginx:1.27', 'deployer'), request('team-d'))).toBe(false);
  });

  it('with nothing served, no annotated ServiceAccount and no helper: no Pod is sent', () => {
    const empty = buildRegistryIndex({ configured: [] });
    const send = compile(sendCondition({ registries: empty, annotatedServiceAccounts: [] })!.expression);
    const request = { kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team-a', operation: 'CREATE' };
    for (const image of IMAGES) expect(send({ metadata: {}, spec: { containers: [{ name: 'a', image }] } }, request), image).toBe(false);
  });

  it('stays within its size bound: many ServiceAccounts fall back to their namespaces, then to no condition (send all)', () => {
    const many = (n: number, namespaces: number) => Array.from({ length: n }, (_, i) => `ns-${i % namespaces}/sa-${i}`);
    const small = sendCondition({ registries: index, annotatedServiceAccounts: many(50, 5) })!;
    expect(small.expression).toContain("'ns-0/sa-0': true");
    const byNamespace = sendCondition({ registries: index, annotatedServiceAccounts: many(5000, 20) })!;
    expect(byNamespace.expression).not.toContain('sa-0');
    expect(byNamespace.expression).toContain("'ns-19': true");
    expect(Buffer.byteLength(byNamespace.expression)).toBeLessThanOrEqual(MAX_EXPRESSION_BYTES);
    // A ServiceAccount of ns-3 now sends every Pod of ns-3: a superset, still correct.
    const send = compile(byNamespace.expression);
    expect(send({ metadata: {}, spec: { containers: [{ name: 'a', image: 'nginx' }] } }, { kind: { group: '', kind: 'Pod' }, namespace: 'ns-3' })).toBe(true);
    expect(send({ metadata: {}, spec: { containers: [{ name: 'a', image: 'nginx' }] } }, { kind: { group: '', kind: 'Pod' }, namespace: 'other' })).toBe(false);
    expect(sendCondition({ registries: index, annotatedServiceAccounts: many(20_000, 5000) })).toBeUndefined();
  });

  it('a served name that is not a host (Docker Hub) cannot be expressed: no condition', () => {
    const hub = buildRegistryIndex({ configured: parseConfig({ registries: [{ instanceId: 'cri-x', region: 'cn-hangzhou', domains: ['docker'] }] }, { ownNamespace: 'x' }).registries });
    expect(sendCondition({ registries: hub, annotatedServiceAccounts: [] })).toBeUndefined();
  });
});

describe('the patch that keeps the entry in the configuration', () => {
  const d = { name: 'needs-acr-pull-webhook', expression: "request.kind.kind == 'Pod'" };
  const hooks = (conditions?: { name: string; expression: string }[]) => [
    { name: 'annotated.acr-pull-webhook.k8s.aliyun.com', matchConditions: [{ name: 'has-acr-annotations', expression: 'x' }] },
    { name: 'default.acr-pull-webhook.k8s.aliyun.com', ...(conditions ? { matchConditions: conditions } : {}) },
  ];
  const DEFAULT = 'default.acr-pull-webhook.k8s.aliyun.com';
  const statics = [{ name: 'not-a-mirror-pod', expression: 'a' }, { name: 'no-acr-annotations', expression: 'b' }];

  it('appends to the static conditions, replaces only its own expression, removes only its own entry', () => {
    expect(conditionPatch(hooks(statics), DEFAULT, d)).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: DEFAULT },
      { op: 'add', path: '/webhooks/1/matchConditions/-', value: d },
    ]);
    expect(conditionPatch(hooks([...statics, d]), DEFAULT, d)).toEqual([]);
    expect(conditionPatch(hooks([statics[0]!, { ...d, expression: 'old' }, statics[1]!]), DEFAULT, d)).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/1/matchConditions/1/name', value: 'needs-acr-pull-webhook' },
      { op: 'replace', path: '/webhooks/1/matchConditions/1/expression', value: d.expression },
    ]);
    expect(conditionPatch(hooks([...statics, d]), DEFAULT, undefined)).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: DEFAULT },
      { op: 'test', path: '/webhooks/1/matchConditions/2/name', value: 'needs-acr-pull-webhook' },
      { op: 'remove', path: '/webhooks/1/matchConditions/2' },
    ]);
    expect(conditionPatch(hooks(statics), DEFAULT, undefined)).toEqual([]);
    expect(conditionPatch(hooks(), DEFAULT, d)).toEqual([{ op: 'test', path: '/webhooks/1/name', value: DEFAULT }, { op: 'add', path: '/webhooks/1/matchConditions', value: [d] }]);
    // annotated-only: no default entry, nothing to manage.
    expect(conditionPatch(hooks().slice(0, 1), DEFAULT, d)).toBe('no-webhook');
  });
});

describe('generated matchCondition, the less common inputs', () => {
  const podRequest = (namespace: string) => ({ kind: { group: '', version: 'v1', kind: 'Pod' }, namespace, operation: 'CREATE' });
  const podWith = (image: string, serviceAccountName?: string) => ({ metadata: {}, spec: { containers: [{ name: 'a', image }], ...(serviceAccountName ? { serviceAccountName } : {}) } });
  const empty = () => buildRegistryIndex({ configured: [] });
  const configured = (domains: string[]) =>
    buildRegistryIndex({ configured: parseConfig({ registries: [{ instanceId: 'cri-x', region: 'cn-hangzhou', domains }] }, { ownNamespace: 'x' }).registries });

  it('annotatedAccountKeys: only ServiceAccounts with k8s.aliyun.com/acr-* keys, sorted', () => {
    const unsorted: ServiceAccountInfo[] = [
      { namespace: 'team-b', name: 'default', vendorAnnotations: { 'k8s.aliyun.com/acr-service-arns': SVC } },
      { namespace: 'team-a', name: 'plain', vendorAnnotations: { 'k8s.aliyun.com/other': 'x' } },
      { namespace: 'team-a', name: 'bare' },
      { namespace: 'team-a', name: 'builder', vendorAnnotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-x' } },
    ];
    expect(annotatedAccountKeys(unsorted)).toEqual(['team-a/builder', 'team-b/default']);
  });

  it('only exact hosts, or only discovery patterns: each still sends its images', () => {
    const exact = compile(sendCondition({ registries: configured(['registry.example.com']), annotatedServiceAccounts: [] })!.expression);
    expect(exact(podWith('registry.example.com/app:1'), podRequest('team-a'))).toBe(true);
    expect(exact(podWith('registry.example.org/app:1'), podRequest('team-a'))).toBe(false);
    const discovery = buildRegistryIndex({ configured: [], discovery: { regions: ['cn-hangzhou'], personalEdition: false } });
    const patterns = compile(sendCondition({ registries: discovery, annotatedServiceAccounts: [] })!.expression);
    expect(patterns(podWith('brandnew-registry.cn-hangzhou.cr.aliyuncs.com/app:1'), podRequest('team-a'))).toBe(true);
    expect(patterns(podWith('brandnew-registry.cn-beijing.cr.aliyuncs.com/app:1'), podRequest('team-a'))).toBe(false);
    // The VPC domain of an instance not discovered yet too: planAdmission looks for it as well.
    expect(patterns(podWith('brandnew-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app:1'), podRequest('team-a'))).toBe(true);
    const rules = servingRules(config, 'acr-pull-webhook', () => undefined, discovery);
    const req: AdmissionRequest = { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', dryRun: false, object: podWith('brandnew-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app:1') };
    expect(planAdmission(req, rules)).toEqual({ action: 'allow', reason: 'no-annotation', undiscovered: true });
  });

  it('localhost and a host with a port but no dot are hosts by the Docker rule: expressed', () => {
    for (const [domain, image] of [
      ['localhost', 'localhost/app:1'],
      ['registry:5000', 'registry:5000/app:1'],
    ] as const) {
      const condition = sendCondition({ registries: configured([domain]), annotatedServiceAccounts: [] });
      expect(condition, domain).toBeDefined();
      const send = compile(condition!.expression);
      expect(send(podWith(image), podRequest('team-a')), domain).toBe(true);
      expect(send(podWith('nginx:1.27'), podRequest('team-a')), domain).toBe(false);
    }
  });

  it('quotes and backslashes in names stay inside their CEL string', () => {
    const send = compile(sendCondition({ registries: empty(), annotatedServiceAccounts: ["team-a/it's", 'team-a/back\\slash'] })!.expression);
    expect(send(podWith('nginx', "it's"), podRequest('team-a'))).toBe(true);
    expect(send(podWith('nginx', 'back\\slash'), podRequest('team-a'))).toBe(true);
    expect(send(podWith('nginx', 'its'), podRequest('team-a'))).toBe(false);
  });

  it('without annotated ServiceAccounts the ServiceAccount is not read: a Pod without a spec evaluates to false, not an error', () => {
    const send = compile(sendCondition({ registries: empty(), annotatedServiceAccounts: [] })!.expression);
    expect(send({ metadata: {} }, podRequest('team-a'))).toBe(false);
  });

  it('the credential helper\'s scope: all namespaces, every ServiceAccount, or both', () => {
    const withHelper = (scope: SendInputs['helper']) => compile(sendCondition({ registries: empty(), annotatedServiceAccounts: [], helper: scope })!.expression);
    const allNamespaces = withHelper({ namespaces: 'all', serviceAccounts: ['deployer'] });
    expect(allNamespaces(podWith('nginx', 'deployer'), podRequest('team-z'))).toBe(true);
    expect(allNamespaces(podWith('nginx', 'web'), podRequest('team-z'))).toBe(false);
    const everyAccount = withHelper({ namespaces: ['team-c'], serviceAccounts: '*' });
    expect(everyAccount(podWith('nginx', 'web'), podRequest('team-c'))).toBe(true);
    expect(everyAccount(podWith('nginx', 'web'), podRequest('team-d'))).toBe(false);
    const everything = withHelper({ namespaces: 'all', serviceAccounts: '*' });
    expect(everything(podWith('nginx'), podRequest('team-z'))).toBe(true);
  });

  it('when ServiceAccounts fall back to their namespaces, so do the credential helper\'s', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `ns-${i % 20}/sa-${i}`);
    const send = compile(sendCondition({ registries: empty(), annotatedServiceAccounts: many, helper: { namespaces: ['team-c'], serviceAccounts: ['deployer'] } })!.expression);
    expect(send(podWith('nginx', 'web'), podRequest('team-c'))).toBe(true);
    expect(send(podWith('nginx', 'web'), podRequest('team-d'))).toBe(false);
  });

  it('an expression of exactly 32,768 bytes is kept; one byte more falls back to namespaces', () => {
    const at = (n: number) => sendCondition({ registries: empty(), annotatedServiceAccounts: [`team-a/${'a'.repeat(n)}`] })!.expression;
    expect(Buffer.byteLength(at(32024))).toBe(32768);
    expect(at(32024)).toContain(`'team-a/${'a'.repeat(32024)}': true`);
    expect(at(32025)).not.toContain('a'.repeat(32025));
    expect(at(32025)).toContain("request.namespace in {'team-a': true}");
  });

  it('describeInputs counts what the condition lets through', () => {
    expect(describeInputs({ registries: configured(['a.example.com', 'b.example.com']), annotatedServiceAccounts: ['team-a/x', 'team-b/y'], helper: { namespaces: 'all', serviceAccounts: '*' } })).toEqual({
      hosts: 2,
      discoveryRegions: 0,
      serviceAccounts: 2,
      helper: true,
    });
    expect(describeInputs({ registries: buildRegistryIndex({ configured: [], discovery: { regions: ['cn-hangzhou', 'cn-beijing'], personalEdition: false } }), annotatedServiceAccounts: [] })).toEqual({
      hosts: 0,
      discoveryRegions: 2,
      serviceAccounts: 0,
      helper: false,
    });
  });
});
