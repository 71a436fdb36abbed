// The Secret lifecycle on a real kube-apiserver (and its etcd), with two webhook replicas: both answer reviews and
// agree on Secret names; a write that loses a race with another writer re-reads and writes again (HTTP 409 from the
// real API server); a watch whose resourceVersion expired while the API server was away relists and forgets Secrets
// deleted meanwhile; with a 30 s idle timeout, Secrets a real Pod or ImageCache references are kept and collected
// once those are deleted. The fast unit tests prove the same against test/kube/support/fake-apiserver.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { httpsRequest } from '../support/https.js';
import { freePort, startCluster, type Cluster } from './support/cluster.js';
import { Kubectl, ROOT, startWebhook, until, type WebhookProcess } from './support/harness.js';
import { emulatorEnv } from '../support/webhook-process.js';

const version = /k8s\.io\/kubernetes (v1\.\d+\.\d+)/.exec(readFileSync('test/e2e/controlplane/go.mod', 'utf8'))![1]!;
const BINARY = process.env.E2E_CONTROLPLANE ?? join(ROOT, 'test/e2e/.bin', version, 'controlplane');
const WORK = join(ROOT, 'test/e2e/.work', `lifecycle-${Date.now()}`);
const NS = 'team-life';
const MANAGED = 'app.kubernetes.io/managed-by=acr-pull-webhook';

let cluster: Cluster;
let k: Kubectl;
let emu: Emulator;
let world: DemoWorld;
let ca: Buffer;
/** replica-1 is the one the MutatingWebhookConfiguration calls (until test 1 switches it); replica-2 is called directly. */
const replicas: { name: string; port: number; metricsPort: number; process?: WebhookProcess }[] = [];

const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const USR = 'acs:ram::6543210987654321:role/acr-pull-user';
/** Two bindings, so that each replica can be given its own Secret to forget. */
const B1 = { annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cri-demo0000000001', 'k8s.aliyun.com/acr-service-arns': SVC }, image: 'registry.example.com/app/web:1' };
const B2 = {
  annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-demo0000000002', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR },
  image: 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1',
};
/** The same instance as B1 by its default domain: another binding, another Secret. */
const B4 = { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, image: 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1' };
type BindingCase = { annotations: Record<string, string>; image: string };

function podObject(name: string, b: BindingCase): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, annotations: b.annotations }, spec: { containers: [{ name: 'app', image: b.image }] } };
}

let uid = 0;
/** An AdmissionReview for a Pod with binding `b`, as the API server would send it. */
function review(b: BindingCase): string {
  uid++;
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(uid).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: NS,
      name: `direct-${uid}`,
      userInfo: { username: 'e2e' },
      object: podObject(`direct-${uid}`, b),
      oldObject: null,
      dryRun: false,
    },
  });
}

/** Sends a review straight to a replica; the name of the managed Secret its patch references. */
async function ask(replica: (typeof replicas)[number], b: BindingCase): Promise<string> {
  const res = await httpsRequest(`https://127.0.0.1:${replica.port}/mutate?timeout=10s`, { body: review(b), ca, timeoutMs: 15_000 });
  expect(res.status).toBe(200);
  expect(res.json.response.allowed, res.json.response.status?.message).toBe(true);
  const ops = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString());
  expect(ops).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) }] }]);
  return ops[0].value[0].name;
}

async function secret(name: string): Promise<any | undefined> {
  const r = await k.run(['get', 'secret', name, '-n', NS, '-o', 'json']);
  return r.status === 0 ? JSON.parse(r.stdout) : undefined;
}

const password = (s: any): string => (Object.values(JSON.parse(Buffer.from(s.data['.dockerconfigjson'], 'base64').toString()).auths)[0] as { password: string }).password;

/** Sum of a counter or histogram-count series over both replicas, by exact label set. */
async function metric(series: string): Promise<number> {
  let total = 0;
  for (const r of replicas) {
    const text = await (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text();
    for (const line of text.split('\n')) if (line.startsWith(`${series} `)) total += Number(line.slice(series.length + 1));
  }
  return total;
}

/** etcd's JSON gateway (keys and values base64). */
async function etcd(path: string, body: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${cluster.etcd}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function setWebhookPort(port: number): Promise<void> {
  const mwc = await k.json(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook']);
  const ops = mwc.webhooks.map((_: unknown, i: number) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/url`, value: `https://127.0.0.1:${port}/mutate` }));
  await k.ok(['patch', 'mutatingwebhookconfiguration', 'acr-pull-webhook', '--type=json', '-p', JSON.stringify(ops)]);
}

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run test/e2e/build-control-plane.sh (npm run e2e does)`);
  mkdirSync(WORK, { recursive: true });
  cluster = await startCluster(BINARY, join(WORK, 'cluster'));
  k = new Kubectl(cluster.kubeconfig);
  world = demoState();
  // Hour-long tokens: nothing is renewed behind a test's back until test 3 shortens them.
  emu = await startEmulator({ world, tokenTtlSeconds: 3600 });
  for (const name of ['replica-1', 'replica-2']) replicas.push({ name, port: await freePort(), metricsPort: await freePort() });
  execFileSync('bash', ['certs/gen-certs.sh', '--local', '--port', String(replicas[0]!.port), '--out', join(WORK, 'certs')], { stdio: 'ignore' });
  ca = readFileSync(join(WORK, 'certs/ca.crt'));
  writeFileSync(
    join(WORK, 'config.yaml'),
    ['defaultRegion: cn-hangzhou', 'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}', 'secrets: {refreshInterval: 1s}', ''].join('\n'),
  );
  await k.ok(['apply', '-k', 'manifests/overlays/local']);
  await k.ok(['wait', '--for=condition=Established', 'crd/imagecaches.eci.alibabacloud.com', '--timeout=60s']);
  await k.createNamespace(NS);
  for (const r of replicas) r.process = await startWebhook({ name: r.name, workDir: WORK, env: replicaEnv(r) });
});

function replicaEnv(r: (typeof replicas)[number]): NodeJS.ProcessEnv {
  return {
    KUBECONFIG: cluster.kubeconfig,
    PORT: String(r.port),
    METRICS_PORT: String(r.metricsPort),
    TLS_CERT_FILE: join(WORK, 'certs/local/tls.crt'),
    TLS_KEY_FILE: join(WORK, 'certs/local/tls.key'),
    CONFIG_FILE: join(WORK, 'config.yaml'),
    ...emulatorEnv(emu, world.demo),
  };
}

afterAll(async () => {
  for (const r of replicas) await r.process?.stop();
  await cluster?.stop();
  await emu?.close();
  if (process.env.E2E_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
});

describe('the Secret lifecycle on a real API server, two replicas', () => {
  let s1 = '';

  it('1. both replicas answer the same review at once with the same Secret name; one Secret exists, with a live token', async () => {
    const [a, b] = await Promise.all([ask(replicas[0]!, B1), ask(replicas[1]!, B1)]);
    expect(a).toBe(b);
    s1 = a;
    const managed = (await k.json(['get', 'secrets', '-n', NS, '-l', MANAGED])).items.map((s: any) => s.metadata.name);
    expect(managed).toEqual([s1]);
    expect(emu.state.registryTokens.get(password(await secret(s1)))?.instanceId).toBe('cri-demo0000000001');

    // Through the API server: a Pod admitted by replica-1, then one admitted by replica-2, name the same Secret.
    await k.ok(['apply', '-f', '-'], JSON.stringify(podObject('via-replica-1', B1)));
    await setWebhookPort(replicas[1]!.port);
    try {
      await k.ok(['apply', '-f', '-'], JSON.stringify(podObject('via-replica-2', B1)));
    } finally {
      await setWebhookPort(replicas[0]!.port);
    }
    for (const pod of ['via-replica-1', 'via-replica-2']) {
      expect((await k.json(['get', 'pod', pod, '-n', NS])).spec.imagePullSecrets, pod).toEqual([{ name: s1 }]);
    }
    expect((await k.json(['get', 'secrets', '-n', NS, '-l', MANAGED])).items).toHaveLength(1);
  });

  it('2. a watch whose resourceVersion expired while the API server was down relists: Secrets deleted meanwhile are written again on the next review', async () => {
    const s2 = await ask(replicas[1]!, B4);
    // Both replicas hold both Secrets in their caches: each answers both bindings without a write.
    // Both Secrets were created (the series is right), and now neither replica creates anything.
    expect(await metric('acr_webhook_secret_writes_total{operation="create",outcome="ok"}')).toBeGreaterThanOrEqual(2);
    await until('both replicas to have seen both Secrets', async () => {
      const before = await metric('acr_webhook_secret_writes_total{operation="create",outcome="ok"}');
      for (const r of replicas) for (const b of [B1, B4]) await ask(r, b);
      return (await metric('acr_webhook_secret_writes_total{operation="create",outcome="ok"}')) === before ? true : undefined;
    });

    await cluster.restartApiServer(async () => {
      // Behind the API server's back: both Secrets deleted, and history compacted past the replicas' watches.
      for (const name of [s1, s2]) {
        const del = await etcd('/v3/kv/deleterange', { key: b64(`/registry/secrets/${NS}/${name}`) });
        expect(del.deleted, name).toBe('1');
      }
      const { header } = await etcd('/v3/kv/range', { key: b64('/registry/'), limit: 1 });
      await etcd('/v3/kv/compaction', { revision: header.revision, physical: true });
    });
    expect(await secret(s1)).toBeUndefined();
    expect(await secret(s2)).toBeUndefined();

    // Each replica writes its binding's Secret again once it has relisted (a replica that kept its stale cache would
    // answer from it and write nothing). Reviews are repeated while the replicas reconnect, within a bound.
    const recreated = async (r: (typeof replicas)[number], b: BindingCase, name: string) =>
      until(`${r.name} to write ${name} again`, async () => {
        expect(await ask(r, b)).toBe(name);
        return (await secret(name)) ? true : undefined;
      }, 90_000);
    await recreated(replicas[0]!, B1, s1);
    await recreated(replicas[1]!, B4, s2);
    for (const name of [s1, s2]) expect(emu.state.registryTokens.get(password(await secret(name)))).toBeDefined();
    for (const r of replicas) expect(r.process!.log()).toContain('secret watch failed');
  }, 240_000);
  it('3. another writer updates the Secret between the renewal\'s read and its write: 409, re-read, written again, the other writer\'s change kept', async () => {
    // A 60 s token is renewed 30 s after it was issued (half its life, under the 40 s threshold), and the token cache
    // no longer serves it then (expiry less the threshold): the renewal asks the registry for a token.
    emu.state.settings.tokenTtlSeconds = 60;
    const s3 = await ask(replicas[0]!, B2);
    const before = await secret(s3);
    const conflictsBefore = await metric('acr_webhook_secret_writes_total{operation="replace",outcome="conflict"}');
    const tokenCalls = emu.calls.count({ action: 'GetAuthorizationToken' });
    // The renewal's registry token takes 5 s to come: the window for the other writer.
    const slow = emu.injectLatency(5000, { action: 'GetAuthorizationToken', times: 1 });
    try {
      // The renewal has read the Secret (from its cache) once it asks for the token.
      await until('the renewal to ask for a registry token', () => (emu.calls.count({ action: 'GetAuthorizationToken' }) > tokenCalls ? true : undefined), 60_000);
      await k.ok(['annotate', 'secret', s3, '-n', NS, 'e2e.example.com/other-writer=was-here']);
      const renewed = await until('the Secret to be renewed', async () => {
        const now = await secret(s3);
        return password(now) !== password(before) ? now : undefined;
      }, 30_000);
      expect(slow.hits).toBe(1);
      expect(renewed.metadata.resourceVersion).not.toBe(before.metadata.resourceVersion);
      expect(renewed.metadata.annotations['e2e.example.com/other-writer']).toBe('was-here');
      expect(emu.state.registryTokens.get(password(renewed))?.instanceId).toBe('cri-demo0000000002');
      expect(Date.parse(renewed.metadata.annotations['acr-pull-webhook.k8s.aliyun.com/expires-at'])).toBeGreaterThan(Date.now());
      expect(await metric('acr_webhook_secret_writes_total{operation="replace",outcome="conflict"}')).toBeGreaterThan(conflictsBefore);
    } finally {
      slow.remove();
    }
  }, 180_000);

});

describe('idle collection of Secrets referenced by real Pods and ImageCaches (replicas restarted with idleTimeout 30s)', () => {
  beforeAll(async () => {
    writeFileSync(
      join(WORK, 'config-idle.yaml'),
      ['defaultRegion: cn-hangzhou', 'credentials: {sessionDurationSeconds: 900, refreshThreshold: 40s}', 'secrets: {refreshInterval: 1s, idleTimeout: 30s}', ''].join('\n'),
    );
    emu.state.settings.tokenTtlSeconds = 3600;
    for (const r of replicas) await r.process?.stop();
    for (const r of replicas) r.process = await startWebhook({ name: `${r.name}-idle`, workDir: WORK, env: { ...replicaEnv(r), CONFIG_FILE: join(WORK, 'config-idle.yaml') } });
  });

  it('4. a Secret an ImageCache or a Pod references is kept past idleTimeout; once they are deleted it is collected, like one nothing ever referenced', async () => {
    const exists = async (namespace: string, name: string) => (await k.run(['get', 'secret', name, '-n', namespace])).status === 0;
    // An ImageCache (its Secret lives in the webhook's namespace), a Pod, and a Secret made by a review whose Pod never
    // came (nothing references it).
    await k.ok(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'eci.alibabacloud.com/v1',
      kind: 'ImageCache',
      metadata: { name: 'kept-cache', annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-demo0000000002', 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR } },
      spec: { images: ['demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1'] },
    }));
    const icRef: string = (await k.json(['get', 'imagecache', 'kept-cache'])).spec.imagePullSecrets[0];
    const [icNamespace, icSecret] = icRef.split(':') as [string, string];
    expect(icNamespace).toBe('acr-pull-webhook');
    // Personal Edition, and an instance known by its default domain only: bindings no earlier test used.
    const podBinding = { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC }, image: 'registry.cn-hangzhou.aliyuncs.com/team/app:1' };
    await k.ok(['apply', '-f', '-'], JSON.stringify(podObject('kept-pod', podBinding)));
    const podSecret: string = (await k.json(['get', 'pod', 'kept-pod', '-n', NS])).spec.imagePullSecrets[0].name;
    const unused = await ask(replicas[0]!, { annotations: { 'k8s.aliyun.com/acr-service-arns': SVC, 'k8s.aliyun.com/acr-user-arns': USR }, image: 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/app/web:1' });
    const made = Date.now();
    expect(new Set([icSecret, podSecret, unused]).size).toBe(3);

    // Unreferenced: gone after idleTimeout (30 s), within one sweep interval (30 s) and the first sweep's delay (10 s).
    const gone = await until(`${unused} to be collected`, async () => ((await exists(NS, unused)) ? undefined : Date.now()), 90_000);
    expect(gone - made).toBeGreaterThanOrEqual(30_000);
    expect(gone - made).toBeLessThanOrEqual(80_000);
    // Referenced: kept, although as old.
    expect(await exists('acr-pull-webhook', icSecret)).toBe(true);
    expect(await exists(NS, podSecret)).toBe(true);

    // Unreferenced from now on: collected like the other one.
    await k.ok(['delete', 'imagecache', 'kept-cache']);
    await k.ok(['delete', 'pod', 'kept-pod', '-n', NS, '--grace-period=0', '--force']);
    const released = Date.now();
    for (const [namespace, name] of [['acr-pull-webhook', icSecret], [NS, podSecret]] as const) {
      const at = await until(`${namespace}/${name} to be collected`, async () => ((await exists(namespace, name)) ? undefined : Date.now()), 100_000);
      // The last sweep that saw it referenced counts as a use: at most one interval before the release.
      expect(at - released).toBeLessThanOrEqual(30_000 + 30_000 + 10_000);
    }
  }, 300_000);
});
