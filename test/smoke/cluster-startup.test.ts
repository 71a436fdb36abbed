// Cluster mode on the compiled server while the API server refuses (403, missing RBAC) or cannot be reached: the
// process must keep running and retrying, say why on every attempt, and stay not ready (never exit 0 as if done).
// And /readyz waits for every cache a decision reads, the namespace labels included.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { freePort } from '../e2e/support/cluster.js';
import { FakeApiServer } from '../kube/support/fake-apiserver.js';
import { fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'cluster-startup-'));
const tls = ensureSelfSignedCert(join(dir, 'tls'));
let api: FakeApiServer;
let w: WebhookProcess | undefined;

function kubeconfig(server: string): string {
  return writeKubeconfig(join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`), server);
}

function clusterEnv(server: string): NodeJS.ProcessEnv {
  return {
    ACR_PULL_WEBHOOK_MODE: 'cluster',
    KUBECONFIG: kubeconfig(server),
    TLS_CERT_FILE: tls.certFile,
    TLS_KEY_FILE: tls.keyFile,
    POD_NAMESPACE: 'acr-pull-webhook',
    POD_NAME: 'smoke-1',
    LOG_LEVEL: 'info',
    ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-never-used',
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'never-used',
    ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts',
    ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}',
  };
}

const readyz = async (port: number) => (await httpsRequest(`https://127.0.0.1:${port}/readyz`, { ca: w!.ca })).status;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

beforeAll(async () => {
  api = new FakeApiServer();
  await api.start();
});
afterEach(() => {
  w?.kill();
  w = undefined;
  api.forbid = () => false;
});
afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster mode when the API server refuses or is unreachable', () => {
  it('403 on every call: keeps running and retrying, /readyz 503, one log line per attempt naming the call, the status and RBAC', async () => {
    api.forbid = () => true;
    w = await startCompiledWebhook(clusterEnv(api.url));
    await sleep(6000);
    expect(w.child.exitCode, w.output().stdout).toBeNull();
    expect(await readyz(w.port)).toBe(503);
    expect((await httpsRequest(`https://127.0.0.1:${w.port}/healthz`, { ca: w.ca })).status).toBe(200);

    // One log line per attempt: the API server's count and the lines logged agree once the latest attempt's line
    // is out (on a slow start the next attempt, at about 7.5 s, can land between the two reads).
    expect(await eventually(() => w!.lines('listing secrets failed').length === api.count('GET', '/api/v1/secrets', { watch: false }), 3000)).toBe(true);
    const failures = w.lines('listing secrets failed');
    // Backoff 0.5 s doubling: attempts at about 0, 0.5, 1.5 and 3.5 s.
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const f of failures) {
      expect(f).toMatchObject({ level: 40, call: 'list secrets (GET /api/v1/secrets)', status: 403, server: api.url });
      expect(f.check).toContain('RBAC');
      expect(f.check).toContain('secrets');
    }
    const ns = w.lines('listing namespaces failed');
    expect(ns.length).toBeGreaterThanOrEqual(2);
    expect(ns[0]).toMatchObject({ call: 'list namespaces (GET /api/v1/namespaces)', status: 403 });
    expect(ns[0]!.check).toContain('RBAC');
    // Every cache's list says the same (the shared reflector: ServiceAccounts here).
    expect(w.lines('listing serviceaccounts failed')[0]).toMatchObject({ call: 'list serviceaccounts (GET /api/v1/serviceaccounts)', status: 403 });

    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('unreachable API server: keeps running, /readyz 503, the log says which address and the network error', async () => {
    const closed = await freePort();
    const server = `http://127.0.0.1:${closed}`;
    w = await startCompiledWebhook(clusterEnv(server));
    await sleep(4000);
    expect(w.child.exitCode, w.output().stdout).toBeNull();
    expect(await readyz(w.port)).toBe(503);
    const failures = w.lines('listing secrets failed');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    for (const f of failures) {
      expect(f).toMatchObject({ call: 'list secrets (GET /api/v1/secrets)', server });
      expect(f.status).toBeUndefined();
      expect(f.error).toContain('ECONNREFUSED');
      expect(f.check).toContain('API server address');
    }
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  // Each cache a decision reads, refused alone: the namespace labels, the ServiceAccounts whose annotations stand in
  // for a Pod's, and the credential helper's ConfigMap (kube-system/acr-configuration by default).
  it.each([
    ['namespaces', '/api/v1/namespaces', 'listing namespaces failed'],
    ['serviceaccounts', '/api/v1/serviceaccounts', 'listing serviceaccounts failed'],
    ['credential helper ConfigMap', '/api/v1/namespaces/kube-system/configmaps', 'listing configmaps failed'],
  ])('/readyz stays 503, and reviews wait, until the %s cache is listed too', async (cache, listPath, logged) => {
    let forbidden = true;
    api.forbid = (_m, path) => forbidden && path === listPath;
    api.namespaces = [{ metadata: { name: 'team-a', labels: { team: 'a' } } }];
    w = await startCompiledWebhook(clusterEnv(api.url));
    // The other lists are answered; this one is refused.
    expect(await eventually(() => w!.lines(logged).some((l) => l.status === 403) && api.count('GET', '/api/v1/secrets', { watch: true }) >= 1, 10_000)).toBe(true);
    await sleep(500);
    expect(await readyz(w.port)).toBe(503);
    // A review before then waits for the caches within its deadline, and is answered 503 (a call failure, so the
    // failurePolicy applies) rather than decided on unknown labels.
    const mutate = (timeout: string) => httpsRequest(`https://127.0.0.1:${w!.port}/mutate?timeout=${timeout}`, { body: fixtureText('pod-no-annotations'), ca: w!.ca, timeoutMs: 40_000 });
    const early = await mutate('2s');
    expect(early.status).toBe(503);
    expect(early.json.message).toBe(`acr-pull-webhook is starting: its ${cache} cache has not synced yet`);
    const waiting = mutate('30s');
    await sleep(300);
    forbidden = false;
    expect(await eventually(async () => (await readyz(w!.port)) === 200, 20_000)).toBe(true);
    expect(w.lines('ready: every cache has synced')).toHaveLength(1);
    const late = await waiting;
    expect(late.status).toBe(200);
    expect(late.json.response.allowed).toBe(true);
  });
});
