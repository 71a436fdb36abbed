// The Secret pulls: Pods and an ImageCache are admitted through the real API server and the webhook, then their
// images are pulled the way a node does (test/e2e/kubelet-pull: the kubelet's keyring over the object's pull
// Secrets, go-containerregistry over HTTPS) from real registries (CNCF distribution, one per ACR instance, token
// auth against the emulator's token service), and the manifest digest is checked against what was pushed.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ACCOUNT_ID, DEMO_OWNER_ACCOUNT_ID, demoState, roleArn, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { freePort, startCluster, type Cluster } from './support/cluster.js';
import { Kubectl, ROOT, run, startWebhook, until, type WebhookProcess } from './support/harness.js';
import { createPki, type Pki } from './support/pki.js';
import { pushRandomImage, realmHost, realmTls, registryLogin, startInstanceRegistries, type InstanceRegistries } from './support/acr-registries.js';
import { controlPlaneBinary } from '../support/go-tools.js';
import { emulatorEnv } from '../support/webhook-process.js';

const BIN = join(ROOT, 'test/e2e/.bin');
const CONTROLPLANE = controlPlaneBinary(ROOT);
const REGISTRY = join(BIN, 'registry/registry');
const PULLER = join(BIN, 'kubelet-pull/kubelet-pull');
const WORK = join(ROOT, 'test/e2e/.work', `pull-${Date.now()}`);

/** Registry tokens live 30 s, so expiry and renewal happen within a test. */
const TOKEN_TTL_SECONDS = 30;
const A = 'cri-demo0000000001'; // account DEMO_ACCOUNT_ID, cn-hangzhou
const B = 'cri-demo0000000002'; // account DEMO_OWNER_ACCOUNT_ID, cn-beijing
const A_DOMAINS = {
  public: 'demo-registry.cn-hangzhou.cr.aliyuncs.com',
  vpc: 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com',
  custom: 'registry.example.com',
  custom2: 'images.example.org',
};
const B_DOMAINS = { public: 'demo-owner-registry.cn-beijing.cr.aliyuncs.com', vpc: 'demo-owner-registry-vpc.cn-beijing.cr.aliyuncs.com' };
const SVC = roleArn(DEMO_ACCOUNT_ID, 'acr-pull');
const USR = roleArn(DEMO_OWNER_ACCOUNT_ID, 'acr-pull-user');
/** A user role in the workload account itself (a second chain to instance A). */
const LOCAL_USR = roleArn(DEMO_ACCOUNT_ID, 'acr-pull-local');
const PUBLISHER_A = { accessKeyId: 'LTAI5tPublisherA00000001', accessKeySecret: 'publisher-a-secret-000000000' };
const PUBLISHER_B = { accessKeyId: 'LTAI5tPublisherB00000001', accessKeySecret: 'publisher-b-secret-000000000' };

interface Attempt {
  secret?: string;
  username?: string;
  error?: string;
  status?: number;
}
interface ImageResult {
  container?: string;
  image: string;
  repository: string;
  ok: boolean;
  digest?: string;
  layers?: number;
  credential?: Attempt;
  attempts: Attempt[];
  error?: string;
}
interface PullReport {
  object: string;
  ok: boolean;
  secrets: string[];
  missing?: string[];
  images: ImageResult[];
}

let cluster: Cluster;
let kubectl: Kubectl;
let emu: Emulator;
let world: DemoWorld;
let pki: Pki;
let webhookPort = 0;
let webhook: WebhookProcess | undefined;
let registries: InstanceRegistries | undefined;
const digests: Record<'A' | 'B', string> = { A: '', B: '' };
let network: string[] = [];

function testWorld(): DemoWorld {
  const w = demoState();
  const workload = w.accounts.find((a) => a.id === DEMO_ACCOUNT_ID)!;
  const owner = w.accounts.find((a) => a.id === DEMO_OWNER_ACCOUNT_ID)!;
  w.instances!.find((i) => i.id === A)!.customDomains = [A_DOMAINS.custom, A_DOMAINS.custom2];
  // The webhook's own identity serves the configured registry (instance A) for Pods without annotations.
  workload.users![0]!.permissions = { ...workload.users![0]!.permissions, crGetAuthorizationToken: [A], crPullRepository: [A] };
  workload.roles!.push({ name: 'acr-pull-local', trust: [{ role: SVC }], permissions: { crGetAuthorizationToken: [A], crReadInstance: [A], crPullRepository: [A] } });
  // The image publishers: the only identities that may push.
  const publisher = (key: typeof PUBLISHER_A, instance: string) => ({
    name: 'publisher',
    accessKeys: [{ id: key.accessKeyId, secret: key.accessKeySecret }],
    permissions: { crGetAuthorizationToken: [instance], crPullRepository: [instance], crPushRepository: [instance] },
  });
  workload.users!.push(publisher(PUBLISHER_A, A));
  owner.users = [publisher(PUBLISHER_B, B)];
  return w;
}


/** Pulls every image of the object like a node; the JSON report, whatever the exit status (1 = a pull failed). */
async function pull(target: { pod: string } | { imagecache: string }): Promise<PullReport> {
  const which = 'pod' in target ? ['--pod', `team-a/${target.pod}`] : ['--imagecache', target.imagecache];
  const r = await run(PULLER, ['pull', '--kubeconfig', cluster.kubeconfig, ...which, ...network], { env: { PATH: process.env.PATH } });
  if (r.status !== 0 && r.status !== 1) throw new Error(`kubelet-pull ${which.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  const report = JSON.parse(r.stdout) as PullReport;
  expect(r.status, JSON.stringify(report, null, 2)).toBe(report.ok ? 0 : 1);
  return report;
}

function pod(name: string, annotations: Record<string, string>, images: Record<string, string>, imagePullSecrets: string[] = []): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'team-a', annotations },
    spec: {
      containers: Object.entries(images).map(([c, image]) => ({ name: c, image })),
      ...(imagePullSecrets.length ? { imagePullSecrets: imagePullSecrets.map((n) => ({ name: n })) } : {}),
    },
  });
}

async function managedSecretsOf(podName: string): Promise<string[]> {
  const p = await kubectl.json(['get', 'pod', podName, '-n', 'team-a']);
  return (p.spec.imagePullSecrets ?? []).map((r: { name: string }) => r.name).filter((n: string) => n.startsWith('acr-pull-'));
}

async function secretPassword(namespace: string, name: string): Promise<{ password: string; expiresAt: number }> {
  const s = await kubectl.json(['get', 'secret', name, '-n', namespace]);
  const auths = JSON.parse(Buffer.from(s.data['.dockerconfigjson'], 'base64').toString()).auths;
  return { password: (Object.values(auths)[0] as { password: string }).password, expiresAt: Date.parse(s.metadata.annotations['acr-pull-webhook.k8s.aliyun.com/expires-at']) };
}

function expectPulled(report: PullReport, expected: Record<string, { digest: string; secret: string }>): void {
  const why = JSON.stringify(report, null, 2);
  expect(report.ok, why).toBe(true);
  const got = Object.fromEntries(report.images.map((i) => [i.image, { digest: i.digest, secret: i.credential?.secret }]));
  expect(got, why).toEqual(expected);
  for (const i of report.images) {
    expect(i.layers, why).toBe(2);
    expect(i.credential?.username).toBe('cr_temp_user');
  }
}

/** With the webhook stopped: wait out the Secret's token, see the pull fail, start the webhook, see it renew and pull. */
async function expiredThenRenewed(secret: string, start: () => Promise<void>): Promise<void> {
  const old = await secretPassword('team-a', secret);
  await until('the token to expire', () => (Date.now() > old.expiresAt + 1000 ? true : undefined), (TOKEN_TTL_SECONDS + 10) * 1000);
  expect((await secretPassword('team-a', secret)).password).toBe(old.password);
  const failed = await pull({ pod: 'cross-account' });
  expect(failed.ok).toBe(false);
  for (const i of failed.images) expect(i.attempts).toEqual([{ secret: `team-a/${secret}`, username: 'cr_temp_user', error: expect.stringContaining('UNAUTHORIZED'), status: 401 }]);

  await start();
  const renewed = await until('the Secret to be renewed', async () => {
    const now = await secretPassword('team-a', secret);
    return now.password !== old.password ? now : undefined;
  }, 30_000);
  expect(renewed.expiresAt).toBeGreaterThan(Date.now());
  expectPulled(await pull({ pod: 'cross-account' }), {
    [`${B_DOMAINS.public}/app/web:1`]: { digest: digests.B, secret: `team-a/${secret}` },
    [`${B_DOMAINS.vpc}/app/web:1`]: { digest: digests.B, secret: `team-a/${secret}` },
  });
}

async function startTheWebhook(): Promise<void> {
  webhook = await startWebhook({
    name: 'webhook-1',
    workDir: WORK,
    env: {
      KUBECONFIG: cluster.kubeconfig,
      PORT: String(webhookPort),
      METRICS_PORT: '0',
      TLS_CERT_FILE: join(WORK, 'certs/local/tls.crt'),
      TLS_KEY_FILE: join(WORK, 'certs/local/tls.key'),
      CONFIG_FILE: join(WORK, 'config.yaml'),
      ...emulatorEnv(emu, world.demo),
    },
  });
}

beforeAll(async () => {
  for (const [what, path] of [['control plane', CONTROLPLANE], ['registry', REGISTRY], ['kubelet-pull', PULLER]]) {
    if (!existsSync(path!)) throw new Error(`${path} (${what}) is missing: npm run e2e builds it`);
  }
  mkdirSync(WORK, { recursive: true });
  pki = createPki(join(WORK, 'pki'));
  cluster = await startCluster(CONTROLPLANE, join(WORK, 'cluster'));
  kubectl = new Kubectl(cluster.kubeconfig);
  world = testWorld();
  emu = await startEmulator({ world, tokenTtlSeconds: TOKEN_TTL_SECONDS, tls: realmTls(pki, ['cn-hangzhou', 'cn-beijing']) });
  registries = await startInstanceRegistries({
    binary: REGISTRY,
    workDir: WORK,
    emu,
    pki,
    instances: [
      { instanceId: A, region: 'cn-hangzhou', domains: Object.values(A_DOMAINS) },
      { instanceId: B, region: 'cn-beijing', domains: Object.values(B_DOMAINS) },
    ],
  });
  network = registries.network;
  digests.A = await pushRandomImage(PULLER, network, `${A_DOMAINS.public}/app/web:1`, await registryLogin(emu, PUBLISHER_A, 'cn-hangzhou', A));
  digests.B = await pushRandomImage(PULLER, network, `${B_DOMAINS.public}/app/web:1`, await registryLogin(emu, PUBLISHER_B, 'cn-beijing', B));

  webhookPort = await freePort();
  const gen = await run('bash', ['certs/gen-certs.sh', '--local', '--port', String(webhookPort), '--out', join(WORK, 'certs')]);
  if (gen.status !== 0) throw new Error(gen.stderr);
  writeFileSync(
    join(WORK, 'config.yaml'),
    [
      'defaultRegion: cn-hangzhou',
      `registries: [{instanceId: ${A}, region: cn-hangzhou, domains: [${Object.values(A_DOMAINS).join(', ')}]}]`,
      // Sessions are reused for 15 s only, so a renewal soon needs a new AssumeRole (the revocation test).
      'credentials: {sessionDurationSeconds: 900, refreshThreshold: 885s}',
      'secrets: {refreshInterval: 1s}',
      '',
    ].join('\n'),
  );
  await kubectl.ok(['apply', '-k', 'manifests/overlays/local']);
  await kubectl.ok(['wait', '--for=condition=Established', 'crd/imagecaches.eci.alibabacloud.com', '--timeout=60s']);
  await kubectl.createNamespace('team-a');
  await startTheWebhook();
});

afterAll(async () => {
  await webhook?.stop();
  await registries?.stop();
  await cluster?.stop();
  await emu?.close();
  if (process.env.E2E_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
});

describe('images pull with the webhook\'s Secrets, as on a node', () => {
  it('1. the cross-account chain pulls from the owner\'s instance on its public and VPC domains', async () => {
    await kubectl.ok(['apply', '-f', '-'], pod('cross-account', { 'k8s.aliyun.com/acr-instance-ids': `cn-beijing:${B}`, 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR }, {
      web: `${B_DOMAINS.public}/app/web:1`,
      vpc: `${B_DOMAINS.vpc}/app/web:1`,
    }));
    const [secret] = await managedSecretsOf('cross-account');
    const report = await pull({ pod: 'cross-account' });
    expectPulled(report, {
      [`${B_DOMAINS.public}/app/web:1`]: { digest: digests.B, secret: `team-a/${secret}` },
      [`${B_DOMAINS.vpc}/app/web:1`]: { digest: digests.B, secret: `team-a/${secret}` },
    });
    // The registry's token service saw the user role's session in the owner account behind the password.
    const exchanges = emu.calls.list({ product: 'registry-auth' }).slice(-2);
    expect(exchanges.map((c) => [c.status, c.principal])).toEqual([
      [200, `acs:ram::${DEMO_OWNER_ACCOUNT_ID}:role/acr-pull-user/acr-pull@team-a`],
      [200, `acs:ram::${DEMO_OWNER_ACCOUNT_ID}:role/acr-pull-user/acr-pull@team-a`],
    ]);
  });

  it('2. the instance-ID annotation serves custom domains (and public and VPC ones) with one Secret', async () => {
    await kubectl.ok(['apply', '-f', '-'], pod('custom-domain', { 'k8s.aliyun.com/acr-instance-ids': A, 'k8s.aliyun.com/acr-service-arns': SVC }, {
      custom: `${A_DOMAINS.custom}/app/web:1`,
      custom2: `${A_DOMAINS.custom2}/app/web:1`,
      public: `${A_DOMAINS.public}/app/web:1`,
      vpc: `${A_DOMAINS.vpc}/app/web:1`,
    }));
    const [secret] = await managedSecretsOf('custom-domain');
    const want = { digest: digests.A, secret: `team-a/${secret}` };
    expectPulled(await pull({ pod: 'custom-domain' }), Object.fromEntries(Object.values(A_DOMAINS).map((d) => [`${d}/app/web:1`, want])));
  });

  it('3. a configured registry pulls without annotations, with the webhook\'s own identity', async () => {
    await kubectl.ok(['apply', '-f', '-'], pod('configured', {}, { web: `${A_DOMAINS.custom2}/app/web:1` }));
    const [secret] = await managedSecretsOf('configured');
    expect(secret).toBeDefined();
    expectPulled(await pull({ pod: 'configured' }), { [`${A_DOMAINS.custom2}/app/web:1`]: { digest: digests.A, secret: `team-a/${secret}` } });
    expect(emu.calls.list({ product: 'registry-auth' }).at(-1)!.principal).toBe(`acs:ram::${DEMO_ACCOUNT_ID}:user/webhook`);
  });

  it('4. two chains on two instances in one Pod: each image matches its own Secret, next to the user\'s', async () => {
    // The user's own Secret, for another registry, stays first and matches neither image.
    const own = JSON.stringify({ auths: { 'docker.example.net': { username: 'me', password: 'mine', auth: Buffer.from('me:mine').toString('base64') } } });
    await kubectl.ok(['create', 'secret', 'generic', 'my-own', '-n', 'team-a', '--type=kubernetes.io/dockerconfigjson', `--from-literal=.dockerconfigjson=${own}`]);
    await kubectl.ok(['apply', '-f', '-'], pod('two-chains', {
      'k8s.aliyun.com/acr-instance-ids': `cn-hangzhou:${A},cn-beijing:${B}`,
      'k8s.aliyun.com/acr-service-arns': SVC,
      'k8s.aliyun.com/acr-user-arns': `${LOCAL_USR},${USR}`,
    }, { a: `${A_DOMAINS.public}/app/web:1`, b: `${B_DOMAINS.public}/app/web:1` }, ['my-own']));
    const managed = await managedSecretsOf('two-chains');
    expect(managed).toHaveLength(2);
    const report = await pull({ pod: 'two-chains' });
    expect(report.secrets).toEqual(['team-a/my-own', ...managed.map((n) => `team-a/${n}`)]);
    const forA = report.images.find((i) => i.container === 'a')!.credential!.secret!;
    const forB = report.images.find((i) => i.container === 'b')!.credential!.secret!;
    expect(new Set([forA, forB])).toEqual(new Set(managed.map((n) => `team-a/${n}`)));
    expectPulled(report, { [`${A_DOMAINS.public}/app/web:1`]: { digest: digests.A, secret: forA }, [`${B_DOMAINS.public}/app/web:1`]: { digest: digests.B, secret: forB } });
    // Each Secret holds only its instance's domains: one credential per image, none tried in vain.
    for (const i of report.images) expect(i.attempts).toHaveLength(1);
  });

  it('5. an ImageCache pulls with its "namespace:name" Secret', async () => {
    await kubectl.ok(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'eci.alibabacloud.com/v1',
      kind: 'ImageCache',
      metadata: { name: 'web-cache', annotations: { 'k8s.aliyun.com/acr-instance-ids': `cn-beijing:${B}`, 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR } },
      spec: { images: [`${B_DOMAINS.public}/app/web:1`] },
    }));
    const refs: string[] = (await kubectl.json(['get', 'imagecache', 'web-cache'])).spec.imagePullSecrets;
    expect(refs).toEqual([expect.stringMatching(/^acr-pull-webhook:acr-pull-[0-9a-f]{20}$/)]);
    expectPulled(await pull({ imagecache: 'web-cache' }), { [`${B_DOMAINS.public}/app/web:1`]: { digest: digests.B, secret: refs[0]!.replace(':', '/') } });
  });

  it('6. an image on a domain the Secret does not list gets no credential and fails, as on a node', async () => {
    // Annotated for instance A, image on instance B: the Secret's auths name only A's domains.
    await kubectl.ok(['apply', '-f', '-'], pod('mismatch', { 'k8s.aliyun.com/acr-instance-ids': A, 'k8s.aliyun.com/acr-service-arns': SVC }, { web: `${B_DOMAINS.public}/app/web:1` }));
    expect(await managedSecretsOf('mismatch')).toHaveLength(1);
    const report = await pull({ pod: 'mismatch' });
    expect(report.ok).toBe(false);
    const [image] = report.images;
    // No credential matched: the kubelet pulls anonymously, and the private repository refuses.
    expect(image!.attempts).toEqual([{ error: expect.stringContaining('UNAUTHORIZED'), status: 401 }]);
  });

  it('7. a live token of instance A does not pull from instance B', async () => {
    const [secretA] = await managedSecretsOf('custom-domain');
    const { password } = await secretPassword('team-a', secretA!);
    const borrowed = JSON.stringify({ auths: { [B_DOMAINS.public]: { username: 'cr_temp_user', password, auth: Buffer.from(`cr_temp_user:${password}`).toString('base64') } } });
    await kubectl.ok(['create', 'secret', 'generic', 'borrowed', '-n', 'team-a', '--type=kubernetes.io/dockerconfigjson', `--from-literal=.dockerconfigjson=${borrowed}`]);
    await kubectl.ok(['apply', '-f', '-'], pod('borrowed', {}, { web: `${B_DOMAINS.public}/app/web:1` }, ['borrowed']));
    const report = await pull({ pod: 'borrowed' });
    // The password was live (for A) when B's token service refused it.
    const issued = emu.state.registryTokens.get(password);
    expect(issued?.instanceId).toBe(A);
    expect(issued!.expiresAt).toBeGreaterThan(Date.now());
    expect(report.ok).toBe(false);
    expect(report.images[0]!.attempts).toEqual([{ secret: 'team-a/borrowed', username: 'cr_temp_user', error: expect.stringContaining(realmHost('cn-beijing')), status: 401 }]);
    expect(report.images[0]!.error).toContain('UNAUTHORIZED: incorrect username or password');
    expect(emu.calls.list({ product: 'registry-auth' }).at(-1)).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });

    // With the webhook's Secret after it, the node tries the user's Secret first, then the next match, and pulls.
    await kubectl.ok(['apply', '-f', '-'], pod('borrowed-then-managed', { 'k8s.aliyun.com/acr-instance-ids': `cn-beijing:${B}`, 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR }, { web: `${B_DOMAINS.public}/app/web:1` }, ['borrowed']));
    const [managed] = await managedSecretsOf('borrowed-then-managed');
    const both = await pull({ pod: 'borrowed-then-managed' });
    expectPulled(both, { [`${B_DOMAINS.public}/app/web:1`]: { digest: digests.B, secret: `team-a/${managed}` } });
    expect(both.images[0]!.attempts.map((a) => [a.secret, a.status])).toEqual([
      ['team-a/borrowed', 401],
      [`team-a/${managed}`, undefined],
    ]);
  });

  it('8. after the token expires the old Secret fails to pull; once the webhook has renewed it, the pull works again', async () => {
    const [secret] = await managedSecretsOf('cross-account');
    // Nobody renews while the webhook is down.
    await webhook!.stop();
    let restarted = false;
    try {
      await expiredThenRenewed(secret!, async () => {
        await startTheWebhook();
        restarted = true;
      });
    } finally {
      if (!restarted) await startTheWebhook();
    }
  });

  it('9. a Secret for a revoked role pulls until its token expires, then fails; the renewal is denied with an Event on the Secret', async () => {
    const [secret] = await managedSecretsOf('cross-account');
    // The owner account stops trusting the service role: no new sessions; live ones and their tokens run out.
    const userRole = world.accounts.find((a) => a.id === DEMO_OWNER_ACCOUNT_ID)!.roles!.find((r) => r.name === 'acr-pull-user')!;
    userRole.trust = [];
    // Right after the revocation the Secret's token (renewed with at least half its 30 s left) still pulls.
    expect((await pull({ pod: 'cross-account' })).ok).toBe(true);
    const event = await until('a RefreshFailed event on the Secret', async () => {
      const events = (await kubectl.json(['get', 'events', '-n', 'team-a', '--field-selector', `involvedObject.name=${secret},reason=RefreshFailed`])).items;
      return events[0];
    }, 60_000);
    expect(event.type).toBe('Warning');
    expect(event.involvedObject.kind).toBe('Secret');
    expect(event.message).toContain(`assuming user role ${USR} with service role ${SVC}`);
    // Events are readable by anyone who may list them in the namespace: no secret in it.
    for (const secretText of [world.demo.accessKeySecret, (await secretPassword('team-a', secret!)).password]) expect(event.message).not.toContain(secretText);
    // The Secret keeps the last token it got; once that expires, nothing pulls.
    const last = await secretPassword('team-a', secret!);
    await until('the last token to expire', () => (Date.now() > last.expiresAt + 1000 ? true : undefined), (TOKEN_TTL_SECONDS + 10) * 1000);
    expect((await secretPassword('team-a', secret!)).password).toBe(last.password);
    const failed = await pull({ pod: 'cross-account' });
    expect(failed.ok).toBe(false);
    for (const i of failed.images) expect(i.attempts).toEqual([{ secret: `team-a/${secret}`, username: 'cr_temp_user', error: expect.stringContaining('UNAUTHORIZED'), status: 401 }]);
  });
});
