// End to end against a real kube-apiserver: the local overlay is applied, the webhook runs on the host in
// cluster mode against the cloud emulator, and kubectl is used as users do.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { httpsRequest } from '../support/https.js';
import { freePort, startCluster, type Cluster } from './support/cluster.js';
import { Kubectl, ROOT, spawnWebhook as spawnWebhookProcess, startWebhook as startWebhookProcess, until } from './support/harness.js';
import { controlPlaneBinary } from '../support/go-tools.js';

const BINARY = controlPlaneBinary(ROOT);
const WORK = join(ROOT, 'test/e2e/.work', `run-${Date.now()}`);

let cluster: Cluster;
let emu: Emulator;
let world: DemoWorld;
let port = 0;
let applyOutput = '';
const webhooks: ChildProcess[] = [];

let k: Kubectl;
const kubectl = (args: string[], input?: string) => k.run(args, input);
const kubectlOk = (args: string[], input?: string) => k.ok(args, input);
const getJson = (args: string[]) => k.json(args);

/** Each webhook's log, by name. */
const logs = new Map<string, () => string>();

function webhookEnv(opts: { port: number; config?: string }): NodeJS.ProcessEnv {
  return {
    KUBECONFIG: cluster.kubeconfig,
    PORT: String(opts.port),
    METRICS_PORT: '0',
    TLS_CERT_FILE: join(WORK, 'certs/local/tls.crt'),
    TLS_KEY_FILE: join(WORK, 'certs/local/tls.key'),
    CONFIG_FILE: opts.config ?? join(WORK, 'config.yaml'),
    ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
    ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
    ALIBABA_CLOUD_RAM_ENDPOINT: emu.ramEndpoint,
    ALIBABA_CLOUD_ACCESS_KEY_ID: world.demo.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: world.demo.accessKeySecret,
  };
}

/** Starts a webhook and waits until it is ready (its caches filled). */
async function startWebhook(name: string, opts: { port?: number; config?: string } = {}): Promise<ChildProcess> {
  // The second replica cannot share the port: it only proves leader election, it is not called.
  const p = opts.port ?? (webhooks.length === 0 ? port : await freePort());
  const { child, log } = await startWebhookProcess({ name, workDir: WORK, env: webhookEnv({ ...opts, port: p }) });
  webhooks.push(child);
  logs.set(name, log);
  return child;
}

/** Starts a webhook without waiting for anything. */
function spawnWebhook(name: string, opts: { port: number; config?: string }): { child: ChildProcess; log: () => string } {
  const { child, log } = spawnWebhookProcess({ name, workDir: WORK, env: webhookEnv(opts) });
  webhooks.push(child);
  logs.set(name, log);
  return { child, log };
}

/** GET /readyz of the webhook on `p`: the status, or 0 while nothing listens. */
async function readyz(p: number): Promise<number> {
  try {
    return (await httpsRequest(`https://127.0.0.1:${p}/readyz`, { ca: readFileSync(join(WORK, 'certs/ca.crt')), timeoutMs: 2000 })).status;
  } catch {
    return 0;
  }
}

async function podOf(namespace: string, app: string): Promise<any> {
  const list = await getJson(['get', 'pods', '-n', namespace, '-l', `app=${app}`]);
  return list.items[0];
}

function deployment(name: string, annotations: Record<string, string>, image: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'team-a' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name }, annotations }, spec: { containers: [{ name: 'app', image }], ...extra } },
    },
  });
}

async function decodeSecret(namespace: string, name: string): Promise<{ auths: Record<string, { username: string; password: string; auth: string }>; annotations: Record<string, string> }> {
  const s = await getJson(['get', 'secret', name, '-n', namespace]);
  expect(s.type).toBe('kubernetes.io/dockerconfigjson');
  return { auths: JSON.parse(Buffer.from(s.data['.dockerconfigjson'], 'base64').toString()).auths, annotations: s.metadata.annotations };
}

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/acr-pull-user';

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run test/e2e/build-control-plane.sh (npm run e2e does)`);
  mkdirSync(WORK, { recursive: true });
  cluster = await startCluster(BINARY, join(WORK, 'cluster'));
  k = new Kubectl(cluster.kubeconfig);
  world = demoState();
  // Short-lived tokens so the refresher has work during the suite.
  emu = await startEmulator({ world, tokenTtlSeconds: 60 });
  port = await freePort();
  execFileSync('bash', ['certs/gen-certs.sh', '--local', '--port', String(port), '--out', join(WORK, 'certs')], { stdio: 'ignore' });
  writeFileSync(
    join(WORK, 'config.yaml'),
    ['defaultRegion: cn-hangzhou', 'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}', 'secrets: {refreshInterval: 2s}', ''].join('\n'),
  );
  applyOutput = await kubectlOk(['apply', '-k', 'manifests/overlays/local']);
  await kubectlOk(['wait', '--for=condition=Established', 'crd/imagecaches.eci.alibabacloud.com', '--timeout=60s']);
  await kubectlOk(['create', 'namespace', 'team-a']);
  await until('default ServiceAccount in team-a', async () => ((await kubectl(['get', 'sa', 'default', '-n', 'team-a'])).status === 0 ? true : undefined));
  await startWebhook('webhook-1');
});

afterAll(async () => {
  for (const w of webhooks) if (w.exitCode === null) w.kill('SIGKILL');
  await cluster?.stop();
  await emu?.close();
  if (process.env.E2E_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
});

describe('end to end on a real API server', () => {
  it('1. kubectl apply -k of the local overlay is accepted', async () => {
    expect(applyOutput).toContain('mutatingwebhookconfiguration.admissionregistration.k8s.io/acr-pull-webhook created');
    expect(applyOutput).toContain('validatingwebhookconfiguration.admissionregistration.k8s.io/acr-pull-webhook created');
    expect(applyOutput).toContain('customresourcedefinition.apiextensions.k8s.io/imagecaches.eci.alibabacloud.com created');
    expect(applyOutput).toContain('clusterrole.rbac.authorization.k8s.io/acr-pull-webhook created');
    const mwc = await getJson(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook']);
    expect(mwc.webhooks[0].clientConfig.url).toBe(`https://127.0.0.1:${port}/mutate`);
    expect(mwc.webhooks[0].matchConditions).toHaveLength(2);
  });

  it('2. Deployments from the documentation get Pods with the webhook\'s Secret next to the user\'s', async () => {
    const docs = [
      deployment('same-account', { 'k8s.aliyun.com/acr-service-arns': SVC }, 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1', { imagePullSecrets: [{ name: 'my-own' }] }),
      deployment('custom-domain', { 'k8s.aliyun.com/acr-instance-ids': 'cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC }, 'registry.example.com/app/web:1'),
      deployment('custom-domain-region', { 'k8s.aliyun.com/acr-instance-ids': 'cn-hangzhou:cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC }, 'registry.example.com/app/web:1'),
      deployment('cross-account', { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-demo0000000002', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR }, 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1'),
    ];
    await kubectlOk(['apply', '-f', '-'], docs.join('\n---\n'));

    const expectations: [string, string[], string, string][] = [
      ['same-account', ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'], 'cri-demo0000000001', 'acr-pull/acr-pull@team-a'],
      ['custom-domain', ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'], 'cri-demo0000000001', 'acr-pull/acr-pull@team-a'],
      ['custom-domain-region', ['demo-registry.cn-hangzhou.cr.aliyuncs.com', 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com', 'registry.example.com'], 'cri-demo0000000001', 'acr-pull/acr-pull@team-a'],
      ['cross-account', ['demo-owner-registry.cn-beijing.cr.aliyuncs.com', 'demo-owner-registry-vpc.cn-beijing.cr.aliyuncs.com'], 'cri-demo0000000002', 'acr-pull-user/acr-pull@team-a'],
    ];
    for (const [app, domains, instanceId, session] of expectations) {
      const pod = await until(`a Pod of ${app}`, () => podOf('team-a', app));
      const refs: string[] = pod.spec.imagePullSecrets.map((r: { name: string }) => r.name);
      const ours = refs.filter((n) => n.startsWith('acr-pull-'));
      expect(ours, app).toHaveLength(1);
      if (app === 'same-account') expect(refs).toEqual(['my-own', ours[0]]);
      const { auths } = await decodeSecret('team-a', ours[0]!);
      expect(Object.keys(auths).sort(), app).toEqual([...domains].sort());
      const cred = Object.values(auths)[0]!;
      expect(Buffer.from(cred.auth, 'base64').toString()).toBe(`${cred.username}:${cred.password}`);
      const issued = emu.state.registryTokens.get(cred.password);
      expect(issued, `${app}: the Secret holds a token the emulator issued`).toBeDefined();
      expect(issued!.instanceId).toBe(instanceId);
      expect(issued!.principal).toContain(session);
    }
    // With and without the region prefix: the same instance, so the same Secret.
    expect((await podOf('team-a', 'custom-domain')).spec.imagePullSecrets).toEqual((await podOf('team-a', 'custom-domain-region')).spec.imagePullSecrets);
  });

  it('3. malformed annotations: kubectl apply prints the message; in a template, the workload is refused, and without the validating webhook the ReplicaSet reports FailedCreate', async () => {
    const badAnnotations = { 'k8s.aliyun.com/acr-user-arns': USR };
    const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bad', namespace: 'team-a', annotations: badAnnotations }, spec: { containers: [{ name: 'a', image: 'registry.example.com/a:1' }] } });
    const r = await kubectl(['apply', '-f', '-'], pod);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "annotated.acr-pull-webhook.k8s.aliyun.com" denied the request: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns');

    const d = await kubectl(['apply', '-f', '-'], deployment('bad-template', badAnnotations, 'registry.example.com/a:1'));
    expect(d.status).not.toBe(0);
    expect(d.stderr).toContain('admission webhook "workloads.acr-pull-webhook.k8s.aliyun.com" denied the request: Deployment team-a/bad-template: spec.template.metadata.annotations: k8s.aliyun.com/acr-user-arns needs');

    await kubectlOk(['delete', 'validatingwebhookconfiguration', 'acr-pull-webhook']);
    try {
      await kubectlOk(['apply', '-f', '-'], deployment('bad-template', badAnnotations, 'registry.example.com/a:1'));
      const event = await until('a FailedCreate event', async () => {
        const events = (await getJson(['get', 'events', '-n', 'team-a', '--field-selector', 'reason=FailedCreate'])).items;
        return events.find((e: any) => e.involvedObject.kind === 'ReplicaSet' && e.involvedObject.name.startsWith('bad-template-'));
      });
      expect(event.message).toContain('k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns');
    } finally {
      await kubectlOk(['delete', 'deployment', 'bad-template', '-n', 'team-a', '--wait=false']);
      await kubectlOk(['apply', '-k', 'manifests/overlays/local']);
    }
  });

  it('4. --dry-run=server writes no Secret and calls no cloud API; a repeated apply does not duplicate the reference', async () => {
    await kubectlOk(['create', 'namespace', 'team-dry']);
    await until('default ServiceAccount in team-dry', async () => ((await kubectl(['get', 'sa', 'default', '-n', 'team-dry'])).status === 0 ? true : undefined));
    const pod = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'team-dry', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC } },
      spec: { containers: [{ name: 'a', image: 'registry.example.com/a:1' }] },
    });
    const callsBefore = emu.calls.total;
    const dry = JSON.parse(await kubectlOk(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], pod));
    const dryRef = dry.spec.imagePullSecrets.map((r: { name: string }) => r.name);
    expect(dryRef).toEqual([expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/)]);
    expect((await getJson(['get', 'secrets', '-n', 'team-dry', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items).toEqual([]);
    expect(emu.calls.total).toBe(callsBefore);

    await kubectlOk(['apply', '-f', '-'], pod);
    await kubectlOk(['apply', '-f', '-'], pod);
    const stored = await getJson(['get', 'pod', 'web', '-n', 'team-dry']);
    // The dry run named the same Secret the real admission created.
    expect(stored.spec.imagePullSecrets.map((r: { name: string }) => r.name)).toEqual(dryRef);
    expect((await getJson(['get', 'secrets', '-n', 'team-dry', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items.map((s: any) => s.metadata.name)).toEqual(dryRef);
  });

  it('5. an ImageCache gets its "namespace:name" reference', async () => {
    const ic = JSON.stringify({
      apiVersion: 'eci.alibabacloud.com/v1',
      kind: 'ImageCache',
      metadata: { name: 'web-cache', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-demo0000000002', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR } },
      spec: { images: ['demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1'], imagePullSecrets: ['team-a:my-own'] },
    });
    await kubectlOk(['apply', '-f', '-'], ic);
    const stored = await getJson(['get', 'imagecache', 'web-cache']);
    expect(stored.spec.imagePullSecrets).toEqual(['team-a:my-own', expect.stringMatching(/^acr-pull-webhook:acr-pull-[0-9a-f]{20}$/)]);
    const name = stored.spec.imagePullSecrets[1].split(':')[1];
    expect(Object.keys((await decodeSecret('acr-pull-webhook', name)).auths)).toContain('demo-owner-registry.cn-beijing.cr.aliyuncs.com');
  });

  it('6. the Secret is renewed before its token expires without any new Pod; two webhooks, one Lease holder', async () => {
    await startWebhook('webhook-2');
    const ref = (await podOf('team-a', 'cross-account')).spec.imagePullSecrets.find((r: { name: string }) => r.name.startsWith('acr-pull-')).name;
    const first = await decodeSecret('team-a', ref);
    const firstPassword = Object.values(first.auths)[0]!.password;
    const renewed = await until(
      'the Secret to be renewed',
      async () => {
        const now = await decodeSecret('team-a', ref);
        return Object.values(now.auths)[0]!.password !== firstPassword ? now : undefined;
      },
      90_000,
    );
    const password = Object.values(renewed.auths)[0]!.password;
    expect(emu.state.registryTokens.get(password)?.instanceId).toBe('cri-demo0000000002');
    expect(Date.parse(renewed.annotations['acr-pull-webhook.k8s.aliyun.com/expires-at']!)).toBeGreaterThan(Date.parse(first.annotations['acr-pull-webhook.k8s.aliyun.com/expires-at']!));
    const lease = await getJson(['get', 'lease', 'acr-pull-webhook-leader', '-n', 'acr-pull-webhook']);
    expect(['webhook-1', 'webhook-2']).toContain(lease.spec.holderIdentity);
    await new Promise((r) => setTimeout(r, 5000));
    expect((await getJson(['get', 'lease', 'acr-pull-webhook-leader', '-n', 'acr-pull-webhook'])).spec.holderIdentity).toBe(lease.spec.holderIdentity);
  });

  it('7. with the webhook stopped, annotated Pods are refused (Fail) and plain Pods are created (Ignore)', async () => {
    for (const w of webhooks) {
      const exited = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM');
      await exited;
    }
    const annotated = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'while-down', namespace: 'team-a', annotations: { 'k8s.aliyun.com/acr-service-arns': SVC } }, spec: { containers: [{ name: 'a', image: 'demo-registry.cn-hangzhou.cr.aliyuncs.com/a:1' }] } });
    const r = await kubectl(['apply', '-f', '-'], annotated);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('failed calling webhook "annotated.acr-pull-webhook.k8s.aliyun.com"');
    const plain = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain', namespace: 'team-a' }, spec: { containers: [{ name: 'a', image: 'nginx:1.27' }] } });
    await kubectlOk(['apply', '-f', '-'], plain);
    expect((await getJson(['get', 'pod', 'plain', '-n', 'team-a'])).spec.imagePullSecrets).toBeUndefined();
  });
});

describe('end to end: a drop-in for ECI (discovery, roles built the way the ECI docs say)', () => {
  const ACCOUNT = '1234567890123456';
  const ECI_ROLE = `acs:ram::${ACCOUNT}:role/role-assume`;

  beforeAll(async () => {
    for (const w of webhooks) if (w.exitCode === null) w.kill('SIGKILL');
    // The RAM a same-account setup needs (README "Coming from ECI"): discovery and tokens with the webhook's own
    // identity, and ram:GetRole to explain refusals.
    const webhookUser = world.accounts[0]!.users![0]!;
    webhookUser.permissions = { ...webhookUser.permissions, assumeRole: '*', crReadInstance: '*', crGetAuthorizationToken: '*', crPersonalRegions: ['cn-hangzhou'], ramGetRole: '*' };
    // A "normal service role" whose trusted service is ECI, as ECI's docs create role-assume.
    world.accounts[0]!.roles!.push({ name: 'role-assume', trust: [{ service: 'eci.aliyuncs.com' }], permissions: { assumeRole: '*' } });
    writeFileSync(
      join(WORK, 'config.yaml'),
      ['defaultRegion: cn-hangzhou', 'discovery: {enabled: true, regions: [cn-hangzhou], missInterval: 1s}', ''].join('\n'),
    );
    await kubectlOk(['create', 'namespace', 'team-eci']);
    await until('default ServiceAccount in team-eci', async () => ((await kubectl(['get', 'sa', 'default', '-n', 'team-eci'])).status === 0 ? true : undefined));
    await startWebhook('webhook-eci', { port });
  });

  const pod = (name: string, images: string[], annotations: Record<string, string> = {}) =>
    JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'team-eci', annotations }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } });

  it('8. an unannotated Pod in the webhook’s own account is served via discovery; Docker Hub images are left alone', async () => {
    // An instance created after the webhook started: the first Pod on it waits for one discovery refresh (at most one
    // per missInterval, 1s here, counted from the start-up refresh).
    world.instances!.push({ id: 'cri-fresh0000000001', name: 'fresh', region: 'cn-hangzhou', accountId: ACCOUNT });
    await new Promise((r) => setTimeout(r, 1500));
    await kubectlOk(['apply', '-f', '-'], pod('discovered', ['demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app/web:1', 'fresh-registry.cn-hangzhou.cr.aliyuncs.com/app/api:1', 'registry.cn-hangzhou.aliyuncs.com/team/tool:2', 'nginx:1.27']));
    const stored = await getJson(['get', 'pod', 'discovered', '-n', 'team-eci']);
    const refs: string[] = stored.spec.imagePullSecrets.map((r: { name: string }) => r.name);
    expect(refs).toEqual([expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/)]);
    const { auths } = await decodeSecret('team-eci', refs[0]!);
    expect(Object.keys(auths).sort()).toEqual([
      'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com',
      'demo-registry.cn-hangzhou.cr.aliyuncs.com',
      'fresh-registry-vpc.cn-hangzhou.cr.aliyuncs.com',
      'fresh-registry.cn-hangzhou.cr.aliyuncs.com',
      'registry.cn-hangzhou.aliyuncs.com',
      'registry.example.com',
    ]);
    // Tokens the emulator issued to the webhook's own identity (no role hop): Enterprise for both instances, Personal.
    const issued = Object.values(auths).map((a) => emu.state.registryTokens.get(a.password));
    expect(issued.every((t) => t?.principal === `acs:ram::${ACCOUNT}:user/webhook`)).toBe(true);
    expect(new Set(issued.map((t) => t!.instanceId ?? t!.edition))).toEqual(new Set(['cri-demo0000000001', 'cri-fresh0000000001', 'personal']));
    expect(emu.calls.count({ action: 'ListInstance' })).toBeGreaterThanOrEqual(2);

    await kubectlOk(['apply', '-f', '-'], pod('hub', ['nginx:1.27', 'ghcr.io/example/tool:1']));
    expect((await getJson(['get', 'pod', 'hub', '-n', 'team-eci'])).spec.imagePullSecrets).toBeUndefined();
  });

  it('9. a role that trusts only the ECI service is denied with the webhook’s principal and the statement to add', async () => {
    const r = await kubectl(['apply', '-f', '-'], pod('eci-role', ['demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1'], { 'k8s.aliyun.com/acr-service-arns': ECI_ROLE }));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`admission webhook "annotated.acr-pull-webhook.k8s.aliyun.com" denied the request: acr-pull-webhook failed assuming service role ${ECI_ROLE}: NoPermission`);
    expect(r.stderr).toContain('The role trusts only the Alibaba Cloud service eci.aliyuncs.com');
    expect(r.stderr).toContain(`The webhook is not ECI; it is the RAM user acs:ram::${ACCOUNT}:user/webhook`);
    expect(r.stderr).toContain(`{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${ACCOUNT}:user/webhook"]}}`);
    expect(r.stderr).not.toContain(world.demo.accessKeySecret);
  });
});

describe('ServiceAccounts: their annotations, and the ACK credential helper\'s ConfigMap (webhook restarted)', () => {
  const HELPER_HOSTS = [
    'demo-registry.cn-hangzhou.cr.aliyuncs.com',
    'registry.example.com',
    'registry.cn-hangzhou.aliyuncs.com',
    'registry-vpc.cn-hangzhou.aliyuncs.com',
    'registry-internal.cn-hangzhou.aliyuncs.com',
    'registry-intl.cn-hangzhou.aliyuncs.com',
    'registry-intl-vpc.cn-hangzhou.aliyuncs.com',
    'registry-intl-internal.cn-hangzhou.aliyuncs.com',
  ];
  const sa = async (ns: string, name: string) => getJson(['get', 'serviceaccount', name, '-n', ns]);
  /** Watches ServiceAccounts of a namespace (that may not exist yet): the first version of each, as created. */
  const watchCreations = (ns: string) => {
    const child = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, 'get', 'serviceaccounts', '-A', '--watch', '--output-watch-events', '-o', 'json', '--field-selector', `metadata.namespace=${ns}`]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const first = new Map<string, any>();
    return {
      first: (name: string) => {
        // kubectl prints one JSON document per event, pretty-printed: split at the top-level braces.
        for (const doc of out.split(/(?<=^\})\n(?=\{)/m)) {
          const e = JSON.parse(doc.trim() || 'null');
          if (e?.type === 'ADDED' && !first.has(e.object.metadata.name)) first.set(e.object.metadata.name, e.object);
        }
        return first.get(name);
      },
      stop: () => child.kill('SIGTERM'),
    };
  };
  const refs = (o: any): string[] => (o.imagePullSecrets ?? o.spec?.imagePullSecrets ?? []).map((r: { name: string }) => r.name);
  const namespace = async (ns: string) => {
    await kubectlOk(['create', 'namespace', ns]);
    await until(`the default ServiceAccount in ${ns}`, async () => ((await kubectl(['get', 'sa', 'default', '-n', ns])).status === 0 ? true : undefined));
  };
  const plainPod = (ns: string, name: string, serviceAccountName: string, image: string) =>
    JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { serviceAccountName, containers: [{ name: 'a', image }] } });

  beforeAll(async () => {
    for (const w of webhooks) {
      if (w.exitCode !== null) continue;
      const exited = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM'); // releases the Lease: the next webhook leads at once
      await exited;
    }
    // The suite's base configuration again (no discovery: only what the ServiceAccounts and the ConfigMap ask for).
    writeFileSync(
      join(WORK, 'config.yaml'),
      ['defaultRegion: cn-hangzhou', 'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}', 'secrets: {refreshInterval: 2s}', ''].join('\n'),
    );
    // The webhook's own identity may read the demo instance's tokens, like an ACK worker role with the read-only
    // ACR policy: what the credential helper's ConfigMap uses when it names no assumeRoleARN.
    const webhookUser = world.accounts[0]!.users![0]!;
    webhookUser.permissions = {
      ...webhookUser.permissions,
      crGetAuthorizationToken: [world.demo.hangzhouInstanceId],
      crReadInstance: [world.demo.hangzhouInstanceId],
      crPersonalRegions: [world.demo.personalRegion],
    };
    // The webhook the API server calls comes back (and takes the Lease once the killed one's lapses).
    await startWebhook('webhook-sa', { port });
    await namespace('team-sa');
    // Before the helper's ConfigMap exists: this namespace's default ServiceAccount is patched by the leader later.
    await namespace('helper-a');
  });

  it('10. a ServiceAccount-annotated chain serves its Pods; a bad ServiceAccount annotation is refused at apply; dry run writes nothing', async () => {
    const annotated = {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: 'operator',
        namespace: 'team-sa',
        annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-demo0000000002', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR },
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(annotated));
    // A Deployment from a chart that cannot be annotated: its template names only the ServiceAccount.
    const chart = JSON.parse(deployment('from-chart', {}, 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1', { serviceAccountName: 'operator' }));
    chart.metadata.namespace = 'team-sa';
    delete chart.spec.template.metadata.annotations;
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(chart));
    const pod = await until('a Pod of from-chart', () => podOf('team-sa', 'from-chart'));
    const ours = refs(pod).filter((n) => n.startsWith('acr-pull-'));
    expect(ours).toHaveLength(1);
    const { auths } = await decodeSecret('team-sa', ours[0]!);
    expect(Object.keys(auths).sort()).toEqual(['demo-owner-registry-vpc.cn-beijing.cr.aliyuncs.com', 'demo-owner-registry.cn-beijing.cr.aliyuncs.com']);
    const issued = emu.state.registryTokens.get(Object.values(auths)[0]!.password);
    expect(issued?.instanceId).toBe('cri-demo0000000002');
    expect(issued?.principal).toContain('acr-pull-user/acr-pull@team-sa');

    // Refused when the ServiceAccount is applied, created or edited.
    const bad = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'bad', namespace: 'team-sa', annotations: { 'k8s.aliyun.com/acr-user-arns': USR } } };
    const r = await kubectl(['apply', '-f', '-'], JSON.stringify(bad));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      'admission webhook "serviceaccounts.acr-pull-webhook.k8s.aliyun.com" denied the request: ServiceAccount team-sa/bad: metadata.annotations: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns',
    );
    const edit = await kubectl(['annotate', 'serviceaccount', 'operator', '-n', 'team-sa', 'k8s.aliyun.com/acr-instance-idz=cri-demo0000000002']);
    expect(edit.status).not.toBe(0);
    expect(edit.stderr).toContain('ServiceAccount team-sa/operator: metadata.annotations: unknown annotation "k8s.aliyun.com/acr-instance-idz": did you mean "k8s.aliyun.com/acr-instance-ids"?');

    // Dry run of a Pod of that ServiceAccount in a namespace without Secrets: the patch, and nothing written or called.
    await namespace('team-sa-dry');
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({ ...annotated, metadata: { ...annotated.metadata, namespace: 'team-sa-dry' } }));
    const calls = emu.calls.total;
    const dry = JSON.parse(await kubectlOk(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], plainPod('team-sa-dry', 'dry', 'operator', 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1')));
    expect(refs(dry)).toEqual([ours[0]]);
    expect((await getJson(['get', 'secrets', '-n', 'team-sa-dry', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items).toEqual([]);
    expect(emu.calls.total).toBe(calls);
  });

  it('11. with the seed-style acr-configuration applied as it is, existing default ServiceAccounts get the Secret, and their Pods without imagePullSecrets end up with it', async () => {
    await kubectlOk(['apply', '-f', 'test/fixtures/acr-configuration/seed-style.yaml']);
    const patched = await until('the leader to patch helper-a/default', async () => {
      const o = await sa('helper-a', 'default');
      return refs(o).length > 0 ? o : undefined;
    });
    const [secret] = refs(patched);
    expect(secret).toMatch(/^acr-pull-[0-9a-f]{20}$/);
    const { auths } = await decodeSecret('helper-a', secret!);
    expect(Object.keys(auths).sort()).toEqual([...HELPER_HOSTS].sort());
    const enterprise = emu.state.registryTokens.get(auths['registry.example.com']!.password);
    expect(enterprise?.instanceId).toBe('cri-demo0000000001');
    expect(emu.state.registryTokens.get(auths['registry.cn-hangzhou.aliyuncs.com']!.password)).toBeDefined();
    // The ServiceAccount admission plugin copies the ServiceAccount's entries into a Pod that lists none.
    await kubectlOk(['apply', '-f', '-'], plainPod('helper-a', 'plain', 'default', 'registry.example.com/app/web:1'));
    expect(refs(await getJson(['get', 'pod', 'plain', '-n', 'helper-a']))).toEqual([secret]);
    // The one notice for fields it accepts but cannot act on.
    expect(logs.get('webhook-sa')!()).toMatch(/accepted but not acted on: notify-email \(no mail is sent/);

    // Someone edits the ServiceAccount and drops the entry: it is put back.
    await kubectlOk(['patch', 'serviceaccount', 'default', '-n', 'helper-a', '--type=json', '-p', '[{"op":"remove","path":"/imagePullSecrets"}]']);
    await until('the entry to be put back', async () => (refs(await sa('helper-a', 'default'))[0] === secret ? true : undefined), 30_000);

    // A namespace created now: its default ServiceAccount has the entry from its creation (the version the
    // controller-manager's create wrote, not a later patch), the Secret already there.
    const watch = watchCreations('helper-b');
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the watch is open
      await namespace('helper-b');
      const born = await until('the ADDED event of helper-b/default', async () => watch.first('default'), 10_000);
      expect(refs(born)).toEqual([secret]);
    } finally {
      watch.stop();
    }
    await kubectlOk(['get', 'secret', secret!, '-n', 'helper-b']);
    // The helper's scope ends where the webhook's does.
    expect(refs(await sa('kube-system', 'default'))).toEqual([]);
  });

  it('12. with service-account "*", a new ServiceAccount has the Secret at creation, and a Pod created right after it pulls with it', async () => {
    await kubectlOk(['create', 'serviceaccount', 'existing', '-n', 'helper-a']);
    await kubectlOk(['patch', 'configmap', 'acr-configuration', '-n', 'kube-system', '--type=merge', '-p', '{"data":{"service-account":"*"}}']);
    // The webhook has the new version once the leader serves a ServiceAccount it did not before.
    const secret = await until('helper-a/existing to be patched', async () => refs(await sa('helper-a', 'existing'))[0]);
    const created = JSON.parse(await kubectlOk(['create', 'serviceaccount', 'builder', '-n', 'helper-a', '-o', 'json']));
    // The create call's answer is the object as created: the entry was not patched in afterwards.
    expect(refs(created)).toEqual([secret]);
    // Right after: the race the helper's users hit is gone.
    await kubectlOk(['apply', '-f', '-'], plainPod('helper-a', 'right-after', 'builder', 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1'));
    const pod = await getJson(['get', 'pod', 'right-after', '-n', 'helper-a']);
    expect(refs(pod)).toEqual([secret]);
    const { auths } = await decodeSecret('helper-a', secret);
    expect(emu.state.registryTokens.get(auths['demo-registry.cn-hangzhou.cr.aliyuncs.com']!.password)?.instanceId).toBe('cri-demo0000000001');

    // A Pod with imagePullSecrets of its own: the helper skipped it, the webhook appends the Secret.
    const own = JSON.parse(plainPod('helper-a', 'own-secrets', 'builder', 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1'));
    own.spec.imagePullSecrets = [{ name: 'my-own' }];
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(own));
    expect(refs(await getJson(['get', 'pod', 'own-secrets', '-n', 'helper-a']))).toEqual(['my-own', secret]);
  });
});

describe('readiness and idle collection (webhook restarted: a label-selector policy, idleTimeout 30s)', () => {
  beforeAll(async () => {
    // The webhook the API server calls is replaced: the others stop and release the Lease, so the new one leads at once.
    for (const w of webhooks) {
      if (w.exitCode !== null || w.signalCode !== null) continue;
      const exited = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM');
      await exited;
    }
  });

  // Set by test 13 for test 14: a Secret made by a review whose Pod never existed, so nothing references it.
  let unused: { name: string; createdAt: number } | undefined;

  it('13. restarted with a policy selecting namespaces by label: a review sent the moment /readyz says 200 is allowed', async () => {
    for (const ns of ['team-label', 'team-label-2']) {
      await kubectlOk(['create', 'namespace', ns]);
      await kubectlOk(['label', 'namespace', ns, 'team=blue']);
      await until(`default ServiceAccount in ${ns}`, async () => ((await kubectl(['get', 'sa', 'default', '-n', ns])).status === 0 ? true : undefined));
    }
    const config = join(WORK, 'config-labels.yaml');
    writeFileSync(
      config,
      [
        'defaultRegion: cn-hangzhou',
        'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}',
        'secrets: {refreshInterval: 2s, idleTimeout: 30s}',
        'policy:',
        '  rules:',
        '    - name: blue',
        '      namespaces: {selector: {matchLabels: {team: blue}}}',
        `      serviceArns: ["${SVC}"]`,
        '      instances: ["cn-hangzhou:cri-demo0000000001"]',
        '',
      ].join('\n'),
    );
    const review = (namespace: string, uid: string) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          operation: 'CREATE',
          namespace,
          name: 'direct',
          userInfo: { username: 'e2e' },
          object: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'direct', namespace, annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC } },
            spec: { containers: [{ name: 'a', image: 'registry.example.com/a:1' }] },
          },
          oldObject: null,
          dryRun: false,
        },
      });

    const { child } = spawnWebhook('webhook-labels', { port, config });
    // Poll far faster than a kubelet would: the first 200 is where the namespace labels used to be missing.
    const deadline = Date.now() + 60_000;
    while ((await readyz(port)) !== 200) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error('webhook-labels never became ready');
      await new Promise((r) => setTimeout(r, 5));
    }
    const ca = readFileSync(join(WORK, 'certs/ca.crt'));
    const res = await httpsRequest(`https://127.0.0.1:${port}/mutate?timeout=10s`, { body: review('team-label', 'ready-race-1'), ca });
    expect(res.status).toBe(200);
    expect(res.json.response.allowed, res.json.response.status?.message).toBe(true);
    const ops = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString());
    unused = { name: ops[0].value[0].name, createdAt: Date.now() };
    expect((await getJson(['get', 'secret', unused.name, '-n', 'team-label'])).metadata.name).toBe(unused.name);

    // The selector is what allowed it: a namespace without the label is not covered.
    const other = await httpsRequest(`https://127.0.0.1:${port}/mutate?timeout=10s`, { body: review('team-a', 'ready-race-2'), ca });
    expect(other.json.response).toMatchObject({ allowed: false, status: { code: 403 } });
    expect(other.json.response.status.message).toContain('namespace team-a is not covered by any rule');
  });

  it('14. idleTimeout 30s: the unused Secret is deleted within idleTimeout + one sweep interval (30 s) + the first sweep delay, the referenced one stays', async () => {
    expect(unused, 'test 13 made the unused Secret').toBeDefined();
    // A referenced Secret: a Pod admitted through the API server.
    const pod = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'kept', namespace: 'team-label-2', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC } },
      spec: { containers: [{ name: 'a', image: 'registry.example.com/a:1' }] },
    });
    await kubectlOk(['apply', '-f', '-'], pod);
    const kept = (await getJson(['get', 'pod', 'kept', '-n', 'team-label-2'])).spec.imagePullSecrets[0].name as string;
    const keptCreated = Date.parse((await getJson(['get', 'secret', kept, '-n', 'team-label-2'])).metadata.creationTimestamp);

    const exists = async (ns: string, name: string) => (await kubectl(['get', 'secret', name, '-n', ns])).status === 0;
    // Deleted no sooner than idleTimeout after its last use, and no later than idleTimeout + interval + first delay (+ slack).
    const deletedAt = await until(`${unused!.name} to be collected`, async () => ((await exists('team-label', unused!.name)) ? undefined : Date.now()), 80_000 + 10_000);
    const after = deletedAt - unused!.createdAt;
    expect(after).toBeGreaterThanOrEqual(30_000);
    expect(after).toBeLessThanOrEqual(80_000);
    expect(await exists('team-label-2', kept)).toBe(true);
    // Still there once a full sweep interval has passed since it became old enough to be collected, were it unused.
    const wait = keptCreated + 30_000 + 30_000 + 2_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    expect(await exists('team-label-2', kept)).toBe(true);
  });
});
