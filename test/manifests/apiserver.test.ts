// The manifests on a real kube-apiserver (the control plane test/e2e/build-control-plane.sh builds; skipped with
// the reason shown when it has not been built): the certs-script overlay applies cleanly and again unchanged,
// the Deployment's Pods pass the restricted Pod Security Standard, the CEL matchConditions compile, RBAC grants
// what it should and nothing else, and the webhooks are called for exactly the objects they should be: checked
// through the local overlay against a stub webhook in this process, up and down.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { demoState, startEmulator, type Emulator } from '../../emulator/index.js';
import { freePort, startCluster, type Cluster } from '../e2e/support/cluster.js';
import { genCerts, hasKubectl, kustomize, ROOT, workspace, type K8sObject, type Workspace } from './helpers.js';
import { controlPlaneBinary } from '../support/go-tools.js';
import { emulatorEnv } from '../support/webhook-process.js';

const BINARY = controlPlaneBinary(ROOT);
const available = hasKubectl && existsSync(BINARY);
const NS = 'acr-pull-webhook';
const SA = `system:serviceaccount:${NS}:acr-pull-webhook`;

let ws: Workspace;
let cluster: Cluster;
let stub: Server | undefined;
let stubPort = 0;
const calls: { kind: string; name: string; namespace?: string; dryRun: boolean; timeout: string | null }[] = [];

/** Asynchronous: the stub webhook lives in this process and must answer while kubectl waits. */
function kubectl(args: string[], input?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn('kubectl', ['--kubeconfig', cluster.kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ status: code ?? 1, ...out });
    });
    child.stdin.end(input ?? '');
  });
}
async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout + r.stderr;
}
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function startStub(): Promise<void> {
  stub = createServer({ key: readFileSync(join(ws.certs, 'local/tls.key')), cert: readFileSync(join(ws.certs, 'local/tls.crt')) }, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const review = JSON.parse(body);
      const o = review.request.object;
      calls.push({ kind: o.kind, name: o.metadata.name, namespace: review.request.namespace, dryRun: review.request.dryRun, timeout: new URL(req.url!, 'https://x').searchParams.get('timeout') });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } }));
    });
  });
  return new Promise((r) => stub!.listen(stubPort, '127.0.0.1', () => r()));
}
const stopStub = () => new Promise<void>((r) => (stub ? stub.close(() => r()) : r()));

const pod = (name: string, namespace: string, annotations: Record<string, string> = {}, image = 'registry.example.com/app:1') =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, annotations },
    spec: {
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } } }],
    },
  });
const imageCache = (name: string, annotations: Record<string, string> = {}, image = 'registry.example.com/app:1') =>
  JSON.stringify({ apiVersion: 'eci.alibabacloud.com/v1', kind: 'ImageCache', metadata: { name, annotations }, spec: { images: [image] } });
const ACR = { 'k8s.aliyun.com/acr-instance-id': 'cri-0123456789abcdef' };
const MIRROR = { 'kubernetes.io/config.mirror': 'checksum' };
const onNode = (p: string) => { const o = JSON.parse(p); o.spec.nodeName = 'node-1'; return JSON.stringify(o); };

beforeAll(async () => {
  if (!available) return;
  ws = workspace();
  stubPort = await freePort();
  genCerts(ws, '--local', '--port', String(stubPort));
  cluster = await startCluster(BINARY, join(ws.dir, 'cluster'));
}, 300_000);

let webhook: ChildProcess | undefined;
let emu: Emulator | undefined;

afterAll(async () => {
  if (webhook && webhook.exitCode === null) webhook.kill('SIGKILL');
  await emu?.close();
  await stopStub();
  await cluster?.stop();
  if (process.env.E2E_KEEP !== '1') ws?.cleanup();
}, 60_000);

describe.skipIf(!available)(
  available ? 'on a real API server' : `on a real API server: SKIPPED, ${hasKubectl ? `no control plane at ${BINARY} (npm run e2e builds it)` : 'kubectl is not installed'}`,
  () => {
    let firstApply = '';

    it('the certs-script overlay (with the ImageCache CRD) applies without errors or Pod Security warnings', async () => {
      const dir = join(ws.manifests, 'overlays', 'apiserver-check');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [../certs-script]\ncomponents: [../../components/imagecache-crd]\n');
      const r = await kubectl(['apply', '-k', dir]);
      firstApply = r.stdout;
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      for (const o of ['namespace/acr-pull-webhook', 'deployment.apps/acr-pull-webhook', 'mutatingwebhookconfiguration.admissionregistration.k8s.io/acr-pull-webhook', 'customresourcedefinition.apiextensions.k8s.io/imagecaches.eci.alibabacloud.com', 'secret/acr-pull-webhook-tls', 'poddisruptionbudget.policy/acr-pull-webhook']) {
        expect(firstApply).toContain(`${o} created`);
      }
      await kubectlOk(['wait', '--for=condition=Established', 'crd/imagecaches.eci.alibabacloud.com', '--timeout=60s']);
    });

    it('applying it again changes nothing', async () => {
      const dir = join(ws.manifests, 'overlays', 'apiserver-check');
      const versions = async () =>
        Object.fromEntries(JSON.parse(await kubectlOk(['get', '-k', dir, '-o', 'json'])).items.map((o: K8sObject) => [`${o.kind}/${o.metadata.name}`, o.metadata.resourceVersion]));
      const before = await versions();
      const r = await kubectlOk(['apply', '-k', dir]);
      const lines = r.trim().split('\n');
      expect(lines.length).toBe(firstApply.trim().split('\n').length);
      // kubectl's client-side apply always re-sends a PodDisruptionBudget's selector (patchStrategy "replace"),
      // which the API server stores as a no-op: the resourceVersions below prove it.
      expect(lines.filter((l) => !l.endsWith(' unchanged'))).toEqual(['poddisruptionbudget.policy/acr-pull-webhook configured']);
      expect(await versions()).toEqual(before);
    });

    it('the API server kept the CEL matchConditions (they compiled) and the preStop sleep action', async () => {
      const mwc = JSON.parse(await kubectlOk(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook', '-o', 'json']));
      expect(mwc.webhooks.map((w: K8sObject) => w.matchConditions?.length ?? 0)).toEqual([2, 2, 0]);
      const d = JSON.parse(await kubectlOk(['get', 'deployment', 'acr-pull-webhook', '-n', NS, '-o', 'json']));
      expect(d.spec.template.spec.containers[0].lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    });

    it('the API server refuses a broken CEL expression (so the test above means something)', async () => {
      const mwc = kustomize(join(ws.manifests, 'base')).find((o) => o.kind === 'MutatingWebhookConfiguration');
      mwc.metadata.name = 'broken-cel';
      mwc.webhooks[0].matchConditions[1].expression = 'object.metadata.annotations.exists(k, k.startsWith(1))';
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(mwc));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/matchConditions\[1\]\.expression/);
    });

    it('the Deployment’s two Pods are admitted in the namespace that enforces the restricted Pod Security Standard', async () => {
      const pods = await until('the Deployment’s Pods', async () => {
        const list = JSON.parse(await kubectlOk(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/name=acr-pull-webhook', '-o', 'json']));
        return list.items.length === 2 ? list.items : undefined;
      });
      for (const p of pods) expect(p.spec.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
      const events = await kubectlOk(['get', 'events', '-n', NS, '-o', 'json']);
      expect(JSON.parse(events).items.filter((e: K8sObject) => e.reason === 'FailedCreate')).toEqual([]);
    }, 90_000);

    it('the cert-manager overlay’s own objects validate (cert-manager’s kinds need cert-manager installed)', async () => {
      const objs = kustomize(join(ws.manifests, 'overlays/cert-manager')).filter((o) => !o.apiVersion.startsWith('cert-manager.io/'));
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], objs.map((o) => stringify(o)).join('---\n'));
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });

    describe('RBAC of the ServiceAccount', () => {
      const allowed: [string, string, string?][] = [
        ['get', 'secrets', 'team-x'],
        ['list', 'secrets'],
        ['watch', 'secrets'],
        ['create', 'secrets', 'team-x'],
        ['update', 'secrets', 'team-x'],
        ['delete', 'secrets', 'team-x'],
        ['list', 'pods'],
        ['watch', 'pods'],
        ['list', 'namespaces'],
        ['watch', 'namespaces'],
        ['list', 'imagecaches.eci.alibabacloud.com'],
        ['create', 'events', 'team-x'],
        ['create', 'events.events.k8s.io', 'team-x'],
        ['get', 'leases.coordination.k8s.io', NS],
        ['create', 'leases.coordination.k8s.io', NS],
        ['update', 'leases.coordination.k8s.io', NS],
        ['list', 'serviceaccounts'],
        ['watch', 'serviceaccounts'],
        ['patch', 'serviceaccounts', 'team-x'],
        ['list', 'configmaps/acr-configuration', 'kube-system'],
        ['watch', 'configmaps/acr-configuration', 'kube-system'],
        ['get', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/acr-pull-webhook'],
        ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/acr-pull-webhook'],
      ];
      const denied: [string, string, string?][] = [
        ['patch', 'secrets', 'team-x'],
        ['deletecollection', 'secrets', 'team-x'],
        ['get', 'configmaps', NS],
        ['create', 'pods', 'team-x'],
        ['delete', 'pods', 'team-x'],
        ['get', 'namespaces'],
        ['create', 'imagecaches.eci.alibabacloud.com'],
        ['delete', 'leases.coordination.k8s.io', NS],
        ['update', 'leases.coordination.k8s.io', 'kube-system'],
        ['update', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'],
        ['patch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-else'],
        ['list', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'],
        ['patch', 'validatingwebhookconfigurations.admissionregistration.k8s.io/acr-pull-webhook'],
        ['create', 'serviceaccounts/token', NS],
        ['update', 'serviceaccounts', 'team-x'],
        ['delete', 'serviceaccounts', 'team-x'],
        ['get', 'configmaps/acr-configuration', 'kube-system'],
        ['get', 'configmaps/coredns', 'kube-system'],
        ['list', 'configmaps', 'kube-system'],
        ['update', 'configmaps/acr-configuration', 'kube-system'],
      ];
      const canI = async ([verb, resource, namespace]: [string, string, string?]) =>
        (await kubectl(['auth', 'can-i', '--as', SA, verb, resource, ...(namespace ? ['-n', namespace] : ['--all-namespaces'])])).stdout.trim();
      it.each(allowed)('may %s %s (%s)', async (...a) => expect(await canI(a)).toBe('yes'));
      it.each(denied)('may not %s %s (%s)', async (...a) => expect(await canI(a)).toBe('no'));
    });

    describe('which objects reach the webhooks (local overlay, stub webhook on 127.0.0.1)', () => {
      beforeAll(async () => {
        if (!available) return;
        await kubectlOk(['apply', '-k', join(ws.manifests, 'overlays/local')]);
        await kubectlOk(['create', 'namespace', 'team-x']);
        await kubectlOk(['create', 'namespace', 'opted-out']);
        await kubectlOk(['label', 'namespace', 'opted-out', 'acr-pull-webhook.k8s.aliyun.com/ignore=true']);
        for (const ns of ['team-x', 'opted-out', NS]) {
          await until(`the default ServiceAccount in ${ns}`, async () => ((await kubectl(['get', 'serviceaccount', 'default', '-n', ns])).status === 0 ? true : undefined));
        }
      }, 120_000);

      it('webhook down: annotated Pods and ImageCaches are refused (Fail), other Pods and ImageCaches are created (Ignore)', async () => {
        const refused = await kubectl(['create', '-f', '-'], pod('down-annotated', 'team-x', ACR));
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toMatch(/failed calling webhook "annotated\.acr-pull-webhook\.k8s\.aliyun\.com"/);
        const refusedCache = await kubectl(['create', '-f', '-'], imageCache('down-annotated', ACR));
        expect(refusedCache.stderr).toMatch(/failed calling webhook "annotated\.acr-pull-webhook\.k8s\.aliyun\.com"/);
        const dryRun = await kubectl(['create', '--dry-run=server', '-f', '-'], pod('down-dry-run', 'team-x', ACR));
        expect(dryRun.stderr).toMatch(/failed calling webhook "annotated/);
        await kubectlOk(['create', '-f', '-'], pod('down-plain', 'team-x'));
        await kubectlOk(['create', '-f', '-'], pod('down-other-annotations', 'team-x', { 'example.com/acr-instance-id': 'x', 'k8s.aliyun.com/eci-use-specs': '2-4Gi' }));
        await kubectlOk(['create', '-f', '-'], imageCache('down-plain'));
        // Skipped by the namespaceSelector or the mirror condition: created although annotated.
        await kubectlOk(['create', '-f', '-'], pod('down-opted-out', 'opted-out', ACR));
        await kubectlOk(['create', '-f', '-'], pod('down-kube-system', 'kube-system', ACR));
        await kubectlOk(['create', '-f', '-'], pod('down-own-namespace', NS, ACR));
        await kubectlOk(['create', '-f', '-'], onNode(pod('down-mirror', 'team-x', { ...ACR, ...MIRROR })));
      });

      it('webhook up: called once for each Pod or ImageCache it serves, never for mirror Pods or skipped namespaces', async () => {
        await startStub();
        const create = (o: string) => kubectlOk(['create', '-f', '-'], o);
        await create(pod('up-annotated', 'team-x', ACR));
        await create(pod('up-plain', 'team-x'));
        await create(imageCache('up-annotated', ACR));
        await create(imageCache('up-plain'));
        await kubectlOk(['create', '--dry-run=server', '-f', '-'], pod('up-dry-run', 'team-x', ACR));
        await create(onNode(pod('up-mirror', 'team-x', { ...ACR, ...MIRROR })));
        await create(onNode(pod('up-mirror-plain', 'team-x', MIRROR)));
        await create(pod('up-opted-out', 'opted-out', ACR));
        await create(pod('up-kube-system', 'kube-system', ACR));
        await create(pod('up-own-namespace', NS, ACR));
        // Workloads only reach the validating webhook, which the stub also answers.
        await create(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'up-configmap', namespace: 'team-x', annotations: ACR } }));
        const mutating = calls.filter((c) => c.kind === 'Pod' || c.kind === 'ImageCache');
        expect(mutating.map((c) => `${c.kind}/${c.name}${c.dryRun ? ' (dry run)' : ''}`)).toEqual([
          'Pod/up-annotated',
          'Pod/up-plain',
          'ImageCache/up-annotated',
          'ImageCache/up-plain',
          'Pod/up-dry-run (dry run)',
        ]);
        // The API server passes the configured timeout on.
        expect(new Set(mutating.map((c) => c.timeout))).toEqual(new Set(['5s']));
        expect(calls.filter((c) => c.kind === 'ConfigMap')).toEqual([]);
      });

      it('the validating webhook sees workload templates in served namespaces only', async () => {
        calls.length = 0;
        const deployment = (namespace: string) =>
          JSON.stringify({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'web', namespace },
            spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' }, annotations: ACR }, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } } },
          });
        await kubectlOk(['create', '-f', '-'], deployment('team-x'));
        await kubectlOk(['create', '-f', '-'], deployment('opted-out'));
        // (The ReplicaSets the deployment controller makes are validated too; only the Deployments matter here.)
        expect(calls.filter((c) => c.kind === 'Deployment').map((c) => `${c.namespace}/${c.name}`)).toEqual(['team-x/web']);
      });

      it('the validating webhook sees only workloads with ACR annotations: on the template, a CronJob’s job template, or misplaced on the workload', async () => {
        calls.length = 0;
        const template = (annotations: Record<string, string>) => ({ metadata: { labels: { app: 'w' }, annotations }, spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } });
        const objects = [
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'plain', namespace: 'team-x' }, spec: { replicas: 0, selector: { matchLabels: { app: 'w' } }, template: { ...template({}), spec: { containers: template({}).spec.containers } } } },
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'misplaced', namespace: 'team-x', annotations: ACR }, spec: { replicas: 0, selector: { matchLabels: { app: 'w' } }, template: { ...template({}), spec: { containers: template({}).spec.containers } } } },
          { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly', namespace: 'team-x' }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: template(ACR) } } } },
          { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'plain-cron', namespace: 'team-x' }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: template({}) } } } },
          { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'once', namespace: 'team-x' }, spec: { suspend: true, template: template(ACR) } },
          { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'other-annotations', namespace: 'team-x' }, spec: { suspend: true, template: template({ 'k8s.aliyun.com/eci-use-specs': '2-4Gi' }) } },
        ];
        for (const o of objects) await kubectlOk(['create', '-f', '-'], JSON.stringify(o));
        expect(calls.filter((c) => ['Deployment', 'CronJob', 'Job'].includes(c.kind)).map((c) => `${c.kind}/${c.name}`)).toEqual(['Deployment/misplaced', 'CronJob/nightly', 'Job/once']);
      });

      const MAIN = join(ROOT, 'dist/src/main.js');
      it.skipIf(!existsSync(MAIN))(
        existsSync(MAIN)
          ? 'the webhook itself, with only its ServiceAccount’s RBAC and the shipped config.yaml, serves a Pod and an ImageCache and takes the Lease'
          : 'the webhook with only its RBAC: SKIPPED, dist/src/main.js is not built (npm run build)',
        async () => {
          await stopStub();
          const world = demoState();
          emu = await startEmulator({ world });
          const token = (await kubectlOk(['create', 'token', 'acr-pull-webhook', '-n', NS, '--duration=1h'])).trim();
          const kubeconfig = join(ws.dir, 'sa.kubeconfig');
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
          let log = '';
          webhook = spawn(process.execPath, [MAIN], {
            env: {
              PATH: process.env.PATH,
              NODE_ENV: 'production',
              KUBECONFIG: kubeconfig,
              PORT: String(stubPort),
              METRICS_PORT: '0',
              TLS_CERT_FILE: join(ws.certs, 'local/tls.crt'),
              TLS_KEY_FILE: join(ws.certs, 'local/tls.key'),
              CONFIG_FILE: join(ws.manifests, 'base/config.yaml'),
              POD_NAMESPACE: NS,
              POD_NAME: 'rbac-check',
              LOG_LEVEL: 'info',
              WEBHOOK_CONFIGURATION_NAME: 'acr-pull-webhook',
              ...emulatorEnv(emu, world.demo),
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          webhook.stdout!.on('data', (d) => (log += d));
          webhook.stderr!.on('data', (d) => (log += d));
          await until('the webhook to serve', async () => {
            if (webhook!.exitCode !== null) throw new Error(`the webhook exited: ${log}`);
            return log.includes('acr-pull-webhook serving') ? true : undefined;
          });

          const SVC = 'acs:ram::1234567890123456:role/acr-pull';
          const IMAGE = 'demo-registry.cn-hangzhou.cr.aliyuncs.com/app/web:1';
          await kubectlOk(['create', '-f', '-'], pod('rbac-pod', 'team-x', { 'k8s.aliyun.com/acr-service-arns': SVC }, IMAGE));
          const created = JSON.parse(await kubectlOk(['get', 'pod', 'rbac-pod', '-n', 'team-x', '-o', 'json']));
          const ref = created.spec.imagePullSecrets?.[0]?.name as string;
          expect(ref).toMatch(/^acr-pull-/);
          const secret = JSON.parse(await kubectlOk(['get', 'secret', ref, '-n', 'team-x', '-o', 'json']));
          expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
          expect(secret.metadata.labels['app.kubernetes.io/managed-by']).toBe('acr-pull-webhook');

          await kubectlOk(['create', '-f', '-'], imageCache('rbac-cache', { 'k8s.aliyun.com/acr-service-arns': SVC }, IMAGE));
          const cache = JSON.parse(await kubectlOk(['get', 'imagecache', 'rbac-cache', '-o', 'json']));
          const [cacheRef] = cache.spec.imagePullSecrets as string[];
          expect(cacheRef).toMatch(new RegExp(`^${NS}:acr-pull-`));
          await kubectlOk(['get', 'secret', cacheRef!.split(':')[1]!, '-n', NS]);

          const lease = await until('the Lease', async () => {
            const r = await kubectl(['get', 'lease', 'acr-pull-webhook-leader', '-n', NS, '-o', 'json']);
            return r.status === 0 ? JSON.parse(r.stdout) : undefined;
          });
          expect(lease.spec.holderIdentity).toBe('rbac-check');
          // As leader, it writes its generated matchCondition into its own configuration with these grants alone.
          await until('the generated matchCondition', async () => {
            const mwc = JSON.parse(await kubectlOk(['get', 'mutatingwebhookconfiguration', 'acr-pull-webhook', '-o', 'json']));
            const entry = mwc.webhooks.find((w: { name: string }) => w.name.startsWith('default.'));
            return entry?.matchConditions?.some((c: { name: string }) => c.name === 'needs-acr-pull-webhook') ? true : undefined;
          });
          expect(log).not.toMatch(/forbidden|\b403\b/i);

          const exited = new Promise<number | null>((r) => webhook!.once('exit', (code) => r(code)));
          webhook.kill('SIGTERM');
          expect(await exited).toBe(0);
          expect(log).not.toMatch(/forbidden|\b403\b/i);
        },
        120_000,
      );
    });
  },
);
