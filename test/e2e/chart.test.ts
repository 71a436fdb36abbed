// The Helm chart and the release file on a real kube-apiserver, with the pinned helm: `helm install` applies every
// object the chart renders (Deployment, Service, RBAC, webhooks with their CEL conditions, the self-signed
// certificate, NetworkPolicy, monitoring objects), the webhook then serves an annotated Pod with the chart's
// certificate, configuration and ServiceAccount; upgrade keeps the CA and the Secrets; uninstall leaves the pull
// Secrets and running Pods as the README says; install.yaml applies cleanly.
//
// The control plane has no nodes, so the chart's Pods are created but never run: the webhook runs on this host
// (as in webhook.test.ts), reached through the chart's webhook.url, with the TLS Secret, ConfigMap and
// ServiceAccount token the chart made.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { controlPlaneBinary, goTool } from '../support/go-tools.js';
import { freePort, startCluster, type Cluster } from './support/cluster.js';
import { emulatorEnv } from '../support/webhook-process.js';

const ROOT = resolve('.');
const BINARY = controlPlaneBinary(ROOT);
const HELM = goTool('helm').path;
const WORK = join(ROOT, 'test/e2e/.work', `chart-${Date.now()}`);
const NS = 'acr-pull-webhook';
const SVC = 'acs:ram::1234567890123456:role/acr-pull';
const IMAGE = 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1';
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));

let cluster: Cluster;
let emu: Emulator;
let world: DemoWorld;
let port = 0;
let webhook: ChildProcess | undefined;
let webhookLog = '';
let installOutput = '';

function run(cmd: string, args: string[], input?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: WORK, HELM_CACHE_HOME: join(WORK, 'helm/cache'), HELM_CONFIG_HOME: join(WORK, 'helm/config'), HELM_DATA_HOME: join(WORK, 'helm/data') },
    });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ status: code ?? 1, ...out });
    });
    child.stdin.end(input ?? '');
  });
}
const kubectl = (args: string[], input?: string) => run('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args], input);
async function ok(p: Promise<{ status: number; stdout: string; stderr: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const kubectlOk = (args: string[], input?: string) => ok(kubectl(args, input), `kubectl ${args.join(' ')}`);
const helmOk = (args: string[]) => ok(run(HELM, ['--kubeconfig', cluster.kubeconfig, ...args]), `helm ${args.join(' ')}`);
const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-o', 'json']));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Kinds of cert-manager and the Prometheus Operator, accepted as they come (their controllers are not here). */
const stubCrd = (group: string, kind: string, plural: string) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
});
const STUB_CRDS = [
  stubCrd('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
  stubCrd('monitoring.coreos.com', 'PodMonitor', 'podmonitors'),
  stubCrd('monitoring.coreos.com', 'PrometheusRule', 'prometheusrules'),
  stubCrd('cert-manager.io', 'Certificate', 'certificates'),
  stubCrd('cert-manager.io', 'Issuer', 'issuers'),
];

const pod = (name: string, annotations: Record<string, string>) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'team-a', annotations }, spec: { containers: [{ name: 'app', image: IMAGE }] } });
const deployment = (name: string, annotations: Record<string, string>) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'team-a' },
    spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name }, annotations }, spec: { containers: [{ name: 'app', image: IMAGE }] } } },
  });

/** The webhook on this host with what the chart made: its TLS Secret, its ConfigMap, its ServiceAccount's token. */
async function startWebhook(): Promise<void> {
  const secret = await getJson(['get', 'secret', 'acr-pull-webhook-tls', '-n', NS]);
  mkdirSync(join(WORK, 'tls'), { recursive: true });
  writeFileSync(join(WORK, 'tls/tls.crt'), Buffer.from(secret.data['tls.crt'], 'base64'));
  writeFileSync(join(WORK, 'tls/tls.key'), Buffer.from(secret.data['tls.key'], 'base64'), { mode: 0o600 });
  const cm = await getJson(['get', 'configmap', 'acr-pull-webhook-config', '-n', NS]);
  writeFileSync(join(WORK, 'config.yaml'), cm.data['config.yaml']);
  const token = (await kubectlOk(['create', 'token', 'acr-pull-webhook', '-n', NS, '--duration=1h'])).trim();
  const kubeconfig = join(WORK, 'sa.kubeconfig');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.server, 'certificate-authority': join(cluster.workDir, 'pki', 'ca.crt') } }],
      users: [{ name: 'sa', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'sa' } }],
      'current-context': 'c',
    }),
    { mode: 0o600 },
  );
  webhookLog = '';
  webhook = spawn(process.execPath, [join(ROOT, 'dist/src/main.js')], {
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      KUBECONFIG: kubeconfig,
      PORT: String(port),
      METRICS_PORT: '0',
      TLS_CERT_FILE: join(WORK, 'tls/tls.crt'),
      TLS_KEY_FILE: join(WORK, 'tls/tls.key'),
      CONFIG_FILE: join(WORK, 'config.yaml'),
      POD_NAMESPACE: NS,
      POD_NAME: 'chart-host',
      LOG_LEVEL: 'info',
      ...emulatorEnv(emu, world.demo),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  webhook.stdout!.on('data', (d) => (webhookLog += d));
  webhook.stderr!.on('data', (d) => (webhookLog += d));
  await until('the webhook to serve', async () => {
    if (webhook!.exitCode !== null) throw new Error(`the webhook exited: ${webhookLog}`);
    return webhookLog.includes('acr-pull-webhook serving') ? true : undefined;
  });
}

async function stopWebhook(): Promise<void> {
  if (!webhook || webhook.exitCode !== null) return;
  const exited = new Promise((r) => webhook!.once('exit', r));
  webhook.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run test/e2e/build-control-plane.sh (npm run e2e does)`);
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run npm run tools (npm run e2e does)`);
  mkdirSync(WORK, { recursive: true });
  cluster = await startCluster(BINARY, join(WORK, 'cluster'));
  world = demoState();
  emu = await startEmulator({ world });
  port = await freePort();
  await kubectlOk(['apply', '-f', '-'], STUB_CRDS.map((c) => stringify(c)).join('---\n'));
  for (const c of STUB_CRDS) await kubectlOk(['wait', '--for=condition=Established', `crd/${c.metadata.name}`, '--timeout=60s']);
  installOutput = await helmOk([
    'install', 'acr-pull-webhook', 'charts/acr-pull-webhook', '--namespace', NS, '--create-namespace',
    '--set', `webhook.url=https://127.0.0.1:${port}`,
    '--set', 'imageCacheCRD.install=true',
    '--set', 'networkPolicy.enabled=true',
    '--set', 'monitoring.serviceMonitor.enabled=true',
    '--set', 'monitoring.podMonitor.enabled=true',
    '--set', 'monitoring.prometheusRule.enabled=true',
    '--set', 'monitoring.dashboard.enabled=true',
    '--set', 'identity.rrsa.mode=manual',
    '--set', `identity.rrsa.roleArn=${SVC}`,
    '--set', 'identity.rrsa.oidcProviderArn=acs:ram::1234567890123456:oidc-provider/ack-rrsa-e2e',
  ]);
  await kubectlOk(['create', 'namespace', 'team-a']);
  await until('the default ServiceAccount in team-a', async () => ((await kubectl(['get', 'sa', 'default', '-n', 'team-a'])).status === 0 ? true : undefined));
  await startWebhook();
}, 300_000);

afterAll(async () => {
  if (webhook && webhook.exitCode === null) webhook.kill('SIGKILL');
  if (webhookLog) writeFileSync(join(WORK, 'webhook.log'), webhookLog);
  await emu?.close();
  await cluster?.stop();
  if (process.env.E2E_KEEP !== '1') rmSync(WORK, { recursive: true, force: true });
}, 60_000);

describe('the Helm chart on a real API server', () => {
  it('helm install applies every object; the Deployment’s Pods are admitted with system-cluster-critical and the RRSA token volume', async () => {
    expect(installOutput).toContain('STATUS: deployed');
    const kinds = [
      ['deployment', NS], ['service', NS], ['serviceaccount', NS], ['configmap', NS], ['secret', NS], ['poddisruptionbudget', NS], ['role', NS], ['rolebinding', NS],
      ['networkpolicy', NS], ['servicemonitor', NS], ['podmonitor', NS], ['prometheusrule', NS],
      ['clusterrole'], ['clusterrolebinding'], ['mutatingwebhookconfiguration'], ['validatingwebhookconfiguration'],
      // The credential helper's ConfigMap is read through a Role next to it.
      ['role', 'kube-system'], ['rolebinding', 'kube-system'],
    ];
    for (const [kind, ns] of kinds) {
      const list = await getJson(['get', kind!, ...(ns ? ['-n', ns] : []), '-l', 'app.kubernetes.io/instance=acr-pull-webhook']);
      expect(list.items.length, kind).toBeGreaterThan(0);
    }
    await kubectlOk(['get', 'crd', 'imagecaches.eci.alibabacloud.com']);
    // The deployment controller creates the Pods (no node runs them): the API server resolved the priority
    // class and accepted the projected token volume.
    const pods = await until('the Deployment’s two Pods', async () => {
      const list = await getJson(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/name=acr-pull-webhook']);
      return list.items.length === 2 ? list.items : undefined;
    });
    for (const p of pods) {
      expect(p.spec.priorityClassName).toBe('system-cluster-critical');
      expect(p.spec.priority).toBe(2000000000);
      expect(p.spec.volumes.find((v: { name: string }) => v.name === 'rrsa-oidc-token').projected.sources[0].serviceAccountToken.audience).toBe('sts.aliyuncs.com');
      expect(p.spec.containers[0].image).toBe(`acr-pull-webhook:${pkg.version}`);
    }
    // The CEL matchConditions compiled (the API server keeps only valid ones).
    const vwc = await getJson(['get', 'validatingwebhookconfiguration', 'acr-pull-webhook']);
    expect(vwc.webhooks[0].matchConditions.map((c: { name: string }) => c.name)).toEqual(['has-acr-annotations']);
  });

  it('an annotated Pod gets the pull Secret, served with the chart’s certificate, configuration and RBAC', async () => {
    await kubectlOk(['create', '-f', '-'], pod('web', { 'k8s.aliyun.com/acr-service-arns': SVC }));
    const created = await getJson(['get', 'pod', 'web', '-n', 'team-a']);
    const ref = created.spec.imagePullSecrets?.[0]?.name as string;
    expect(ref).toMatch(/^acr-pull-[0-9a-f]{20}$/);
    const secret = await getJson(['get', 'secret', ref, '-n', 'team-a']);
    const auths = JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString()).auths;
    const password = (Object.values(auths)[0] as { password: string }).password;
    expect(emu.state.registryTokens.get(password)?.instanceId).toBe('cri-demo0000000001');
    expect(webhookLog).not.toMatch(/forbidden|\b403\b/i);
  });

  it('the validating webhook: an annotated template with a mistake is refused at apply; a plain one is never sent', async () => {
    const bad = await kubectl(['apply', '-f', '-'], deployment('bad', { 'k8s.aliyun.com/acr-user-arns': 'acs:ram::6543210987654321:role/x' }));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('admission webhook "workloads.acr-pull-webhook.k8s.aliyun.com" denied the request: Deployment team-a/bad');
    // In the webhook's place, a server that accepts connections and never answers: a review sent to it costs the
    // whole 5 s timeout (then Ignore). An annotated Deployment pays it; an unannotated one is not sent at all.
    await stopWebhook();
    const sockets: Socket[] = [];
    const hang = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hang.listen(port, '127.0.0.1', () => r()));
    try {
      let started = Date.now();
      await kubectlOk(['apply', '-f', '-'], deployment('annotated', { 'k8s.aliyun.com/acr-service-arns': SVC }));
      expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
      started = Date.now();
      await kubectlOk(['apply', '-f', '-'], deployment('plain', {}));
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(r));
    }
    await startWebhook();
  });

  it('helm upgrade keeps the CA and the pull Secrets and applies a new configuration', async () => {
    const caBefore = (await getJson(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook'])).webhooks[0].clientConfig.caBundle;
    const tlsBefore = (await getJson(['get', 'secret', 'acr-pull-webhook-tls', '-n', NS])).data;
    const secretsBefore = (await getJson(['get', 'secrets', '-n', 'team-a', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items.map((s: { metadata: { name: string; uid: string } }) => s.metadata.uid);
    const out = await helmOk(['upgrade', 'acr-pull-webhook', 'charts/acr-pull-webhook', '--namespace', NS, '--reuse-values', '--set', 'config.namespaces.exclude={sandbox-*}']);
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain('REVISION: 2');
    const mwc = await getJson(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook']);
    expect(mwc.webhooks.map((w: { clientConfig: { caBundle: string } }) => w.clientConfig.caBundle)).toEqual([caBefore, caBefore, caBefore]);
    expect((await getJson(['get', 'secret', 'acr-pull-webhook-tls', '-n', NS])).data).toEqual(tlsBefore);
    expect((await getJson(['get', 'configmap', 'acr-pull-webhook-config', '-n', NS])).data['config.yaml']).toContain('sandbox-*');
    expect((await getJson(['get', 'secrets', '-n', 'team-a', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items.map((s: { metadata: { uid: string } }) => s.metadata.uid)).toEqual(secretsBefore);
    // The running webhook (same certificate) still serves.
    await kubectlOk(['create', '-f', '-'], pod('after-upgrade', { 'k8s.aliyun.com/acr-service-arns': SVC }));
    expect((await getJson(['get', 'pod', 'after-upgrade', '-n', 'team-a'])).spec.imagePullSecrets).toEqual((await getJson(['get', 'pod', 'web', '-n', 'team-a'])).spec.imagePullSecrets);
  });

  it('helm uninstall: webhooks gone, pull Secrets and running Pods untouched, new Pods unmutated, the CRD kept', async () => {
    const webBefore = await getJson(['get', 'pod', 'web', '-n', 'team-a']);
    const secretsBefore = (await getJson(['get', 'secrets', '-n', 'team-a', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items.map((s: { metadata: { uid: string } }) => s.metadata.uid);
    expect(secretsBefore.length).toBeGreaterThan(0);
    await helmOk(['uninstall', 'acr-pull-webhook', '--namespace', NS]);
    await stopWebhook();
    expect((await kubectl(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook'])).status).not.toBe(0);
    expect((await kubectl(['get', 'validatingwebhookconfiguration', 'acr-pull-webhook'])).status).not.toBe(0);
    expect((await kubectl(['get', 'deployment', 'acr-pull-webhook', '-n', NS])).status).not.toBe(0);
    expect((await getJson(['get', 'secrets', '-n', 'team-a', '-l', 'app.kubernetes.io/managed-by=acr-pull-webhook'])).items.map((s: { metadata: { uid: string } }) => s.metadata.uid)).toEqual(secretsBefore);
    const webAfter = await getJson(['get', 'pod', 'web', '-n', 'team-a']);
    expect(webAfter.metadata.uid).toBe(webBefore.metadata.uid);
    expect(webAfter.spec.imagePullSecrets).toEqual(webBefore.spec.imagePullSecrets);
    await kubectlOk(['create', '-f', '-'], pod('after-uninstall', { 'k8s.aliyun.com/acr-service-arns': SVC }));
    expect((await getJson(['get', 'pod', 'after-uninstall', '-n', 'team-a'])).spec.imagePullSecrets).toBeUndefined();
    await kubectlOk(['get', 'crd', 'imagecaches.eci.alibabacloud.com']);
  });
});

describe('the release file on a real API server', () => {
  let install = '';
  beforeAll(async () => {
    const out = join(WORK, 'release');
    const changelog = join(WORK, 'CHANGELOG.md');
    writeFileSync(changelog, readFileSync('CHANGELOG.md'));
    const r = await run(process.execPath, [join(ROOT, 'dist/scripts/release.js'), '--out', out, '--changelog', changelog, '--helm', HELM]);
    if (r.status !== 0) throw new Error(`npm run release failed: ${r.stderr}`);
    install = join(out, 'install.yaml');
    // A fresh cluster as far as the webhook goes: helm uninstall leaves the namespace --create-namespace made.
    await kubectlOk(['delete', 'namespace', NS, '--wait=true', '--timeout=90s']);
  }, 120_000);

  it('kubectl apply -f install.yaml creates everything (cert-manager’s kinds accepted as stubs), and again changes nothing', async () => {
    const first = await kubectl(['apply', '-f', install]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    for (const o of ['namespace/acr-pull-webhook', 'deployment.apps/acr-pull-webhook', 'mutatingwebhookconfiguration.admissionregistration.k8s.io/acr-pull-webhook', 'certificate.cert-manager.io/acr-pull-webhook-serving', 'clusterrole.rbac.authorization.k8s.io/acr-pull-webhook', 'role.rbac.authorization.k8s.io/acr-pull-webhook-credential-helper']) {
      expect(first.stdout).toContain(`${o} created`);
    }
    const ns = await getJson(['get', 'namespace', NS]);
    expect(ns.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'acr-pull-webhook.k8s.aliyun.com/ignore': 'true' });
    const again = await kubectlOk(['apply', '-f', install]);
    // kubectl's client-side apply re-sends a PodDisruptionBudget's selector (patchStrategy "replace"), a no-op.
    expect(again.trim().split('\n').filter((l) => !l.endsWith(' unchanged') && !l.startsWith('poddisruptionbudget'))).toEqual([]);
  });

  it('the same file with server-side apply, as GitOps tools apply it', async () => {
    const r = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', install]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('deployment.apps/acr-pull-webhook serverside-applied');
  });
});
