// What startServer (src/server-main.ts) wires between the parts, seen from outside the running server: where the
// self-signed certificate goes by default, how connections are counted, the banner for an IPv6 address, /readyz
// while draining, the warm path for a fresh Secret, discovery on a miss, the explicit TLS 1.2 minimum, and which
// listener and setting a failed listen names; in cluster mode (the fake API server) the cloud from the environment,
// reviews before the caches sync, ServiceAccount annotations and the credential helper. Loopback, system ports;
// each test closes what it started (start.test.ts has the main paths).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Server as NetServer, createServer as netServer } from 'node:net';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import tls, { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startServer, type RunningServer } from '../../src/server-main.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { FakeApiServer, waitFor } from '../kube/support/fake-apiserver.js';
import { decodePatch, fixture, fixtureText } from '../support/fixtures.js';
import { h2Request, h2Session } from '../support/h2.js';
import { httpsRequest } from '../support/https.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const BASE_ENV: NodeJS.ProcessEnv = { PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.1', METRICS_BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'info' };

let dir: string;
let server: RunningServer | undefined;
let logStream: PassThrough;
let banner: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'server-wiring-'));
  logStream = new PassThrough();
  logStream.resume();
  banner = [];
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void banner.push(a.map(String).join(' ')));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const once = () => new Agent({ keepAlive: false });
const metricsText = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

describe('the certificate', () => {
  it('without TLS files or a directory given, the self-signed certificate goes to .local/tls under the working directory', async () => {
    vi.spyOn(process, 'cwd').mockReturnValue(dir);
    server = await startServer({ ...BASE_ENV }, { logStream });
    const certFile = join(dir, '.local', 'tls', 'tls.crt');
    expect(banner[0]).toContain(`  HTTPS on https://127.0.0.1:${server.port} with a self-signed certificate (${certFile})\n`);
    const res = await httpsRequest(`https://127.0.0.1:${server.port}/readyz`, { ca: readFileSync(certFile), agent: once() });
    expect(res.status).toBe(200);
  });
});

describe('connections', () => {
  it('counts an HTTP/2 connection under h2 and an HTTP/1.1 one under http/1.1', async () => {
    server = await startServer({ ...BASE_ENV }, { selfSignedDir: join(dir, 'tls'), logStream });
    const ca = readFileSync(join(dir, 'tls', 'tls.crt'));
    const session = await h2Session(`https://127.0.0.1:${server.port}`, ca);
    try {
      expect((await h2Request(session, '/readyz')).status).toBe(200);
    } finally {
      session.close();
    }
    const text = await metricsText(server.metricsPort);
    expect(text).toMatch(/^acr_webhook_connections_total\{protocol="h2"\} 1$/m);
    expect(text).toMatch(/^acr_webhook_connections_total\{protocol="http\/1.1"\} 0$/m);
  });
});

describe('the banner', () => {
  it('an IPv6 BIND_ADDRESS is bracketed in both URLs', async () => {
    server = await startServer({ ...BASE_ENV, BIND_ADDRESS: '::1' }, { selfSignedDir: join(dir, 'tls'), logStream });
    const port = server.port;
    expect(server.app.server.address()).toMatchObject({ address: '::1', port });
    expect(banner).toHaveLength(1);
    expect(banner[0]).toContain(`  HTTPS on https://[::1]:${port} with a self-signed certificate (${join(dir, 'tls', 'tls.crt')})\n`);
    expect(banner[0]).toContain(`  Try:  curl -sk https://[::1]:${port}/mutate -H 'Content-Type: application/json' \\\n`);
  });
});

describe('the default configuration', () => {
  it('without CONFIG_FILE a bad ALIBABA_CLOUD_REGION_ID is named as coming from the defaults', async () => {
    await expect(startServer({ ...BASE_ENV, ALIBABA_CLOUD_REGION_ID: 'nowhere' }, { selfSignedDir: join(dir, 'tls'), logStream })).rejects.toMatchObject({
      name: 'ConfigError',
      message: 'defaults: defaultRegion (from ALIBABA_CLOUD_REGION_ID): "nowhere" is not a region ID such as cn-hangzhou',
    });
  });
});

describe('readiness', () => {
  it('/readyz says 503 once the drain has begun, though every cache has synced', async () => {
    server = await startServer({ ...BASE_ENV }, { selfSignedDir: join(dir, 'tls'), logStream });
    const ca = readFileSync(join(dir, 'tls', 'tls.crt'));
    const readyz = async () => {
      const res = await httpsRequest(`https://127.0.0.1:${server!.port}/readyz`, { ca, agent: once() });
      return [res.status, res.json];
    };
    expect(await readyz()).toEqual([200, { status: 'ready' }]);
    // What the signal handler does first (src/shutdown.ts); the listener still accepts until close() below.
    await server.closer.close();
    expect(await readyz()).toEqual([503, { status: 'not ready' }]);
  });
});

describe('reviews', () => {
  it('a review whose time is already up is answered from a fresh Secret without waiting for anything', async () => {
    server = await startServer({ ...BASE_ENV }, { selfSignedDir: join(dir, 'tls'), logStream });
    const ca = readFileSync(join(dir, 'tls', 'tls.crt'));
    const review = async (timeout: string) =>
      (await httpsRequest(`https://127.0.0.1:${server!.port}/mutate?timeout=${timeout}`, { body: fixtureText('standalone-demo-cross-account'), ca, agent: once() })).json.response;
    const patch = Buffer.from(JSON.stringify([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-57ac48007f2ba42fd6fe' }] }])).toString('base64');
    expect(await review('10s')).toEqual({ uid: '00000000-0000-4000-8000-0000000000d1', allowed: true, patchType: 'JSONPatch', patch });
    // 100 ms leaves a deadline already past (at least 150 ms are kept for the answer's way back): only the warm
    // path, which asks the cache whether the Secret is fresh, can still answer it.
    expect(await review('100ms')).toEqual({ uid: '00000000-0000-4000-8000-0000000000d1', allowed: true, patchType: 'JSONPatch', patch });
    const text = await metricsText(server.metricsPort);
    expect(text).toMatch(/^acr_webhook_admission_duration_seconds_count\{kind="Pod",result="patched",path="cold"\} 1$/m);
    expect(text).toMatch(/^acr_webhook_admission_duration_seconds_count\{kind="Pod",result="patched",path="cached"\} 1$/m);
  });

  it('with discovery on, a Pod on an unknown Enterprise domain of a discovery region makes discovery run again', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'discovery: {enabled: true, regions: [cn-hangzhou], missInterval: 1s}\n');
    server = await startServer({ ...BASE_ENV, CONFIG_FILE: file }, { selfSignedDir: join(dir, 'tls'), logStream });
    const ca = readFileSync(join(dir, 'tls', 'tls.crt'));
    const errors = async () => Number(/^acr_webhook_discovery_errors_total\{step="list",code="NoPermission"\} (\d+)$/m.exec(await metricsText(server!.metricsPort))?.[1] ?? 0);
    // The demo user may not list instances: each discovery run counts one error.
    for (let i = 0; i < 40 && (await errors()) === 0; i++) await new Promise((r) => setTimeout(r, 250));
    expect(await errors()).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    const doc = fixture('pod-no-annotations');
    doc.request.object.spec.containers = [{ name: 'c', image: 'foreign-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1' }];
    const res = await httpsRequest(`https://127.0.0.1:${server.port}/mutate?timeout=10s`, { body: JSON.stringify(doc), ca, agent: once() });
    expect(res.status).toBe(200);
    expect(res.json.response).toEqual({ uid: doc.request.uid, allowed: true });
    expect(await errors()).toBe(2);
  });
});

describe('TLS', () => {
  let defaultMin: tls.SecureVersion;
  beforeEach(() => {
    defaultMin = tls.DEFAULT_MIN_VERSION;
  });
  afterEach(() => {
    tls.DEFAULT_MIN_VERSION = defaultMin;
  });

  it('TLS_MIN_VERSION unset is an explicit TLS 1.2 minimum, whatever the process default (node --tls-min-v1.0)', async () => {
    tls.DEFAULT_MIN_VERSION = 'TLSv1';
    const own = ensureSelfSignedCert(join(dir, 'own'));
    server = await startServer({ ...BASE_ENV, TLS_CERT_FILE: own.certFile, TLS_KEY_FILE: own.keyFile, ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts' }, { logStream });
    const port = server.port;
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(own.certFile), servername: 'localhost', minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
        resolve(`${s.getProtocol()} ok`);
        s.destroy();
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    // The protocol version alert: refused for its version, before any cipher is looked at.
    expect(outcome).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });
});

describe('a port that cannot be had', () => {
  let taken: NetServer;
  let listening: NetServer[];
  beforeEach(async () => {
    taken = netServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    // Start-up stops at the failed listen and closes what it opened: collect what listened, to check it closed.
    listening = [];
    const listen = NetServer.prototype.listen;
    vi.spyOn(NetServer.prototype, 'listen').mockImplementation(function (this: NetServer, ...args: unknown[]) {
      listening.push(this);
      return (listen as (...a: unknown[]) => NetServer).apply(this, args);
    });
  });
  afterEach(async () => {
    for (const s of [taken, ...listening]) if (s.listening) await new Promise((r) => s.close(r));
  });
  const takenPort = () => (taken.address() as { port: number }).port;
  const own = () => ensureSelfSignedCert(join(dir, 'own'));

  it('METRICS_PORT taken: names the metrics listener and its settings', async () => {
    const tlsFiles = own();
    await expect(
      startServer({ ...BASE_ENV, METRICS_PORT: String(takenPort()), TLS_CERT_FILE: tlsFiles.certFile, TLS_KEY_FILE: tlsFiles.keyFile, ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts' }, { logStream }),
    ).rejects.toThrow(new Error(`cannot listen for metrics on 127.0.0.1:${takenPort()} (METRICS_BIND_ADDRESS/METRICS_PORT): EADDRINUSE: the port is taken`));
    expect(listening.filter((s) => s.listening)).toEqual([]);
  });

  it('PORT taken: names the review listener and its settings', async () => {
    const tlsFiles = own();
    await expect(
      startServer({ ...BASE_ENV, PORT: String(takenPort()), TLS_CERT_FILE: tlsFiles.certFile, TLS_KEY_FILE: tlsFiles.keyFile, ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts' }, { logStream }),
    ).rejects.toThrow(new Error(`cannot listen for reviews on 127.0.0.1:${takenPort()} (BIND_ADDRESS/PORT): EADDRINUSE: the port is taken`));
    // The metrics listener had opened: closed again.
    expect(listening.length).toBeGreaterThan(0);
    expect(listening.filter((s) => s.listening)).toEqual([]);
  });

  it('PORT taken in standalone mode: the metrics listener and the bundled emulator are closed again', async () => {
    await expect(startServer({ ...BASE_ENV, PORT: String(takenPort()) }, { selfSignedDir: join(dir, 'tls'), logStream })).rejects.toThrow(
      new Error(`cannot listen for reviews on 127.0.0.1:${takenPort()} (BIND_ADDRESS/PORT): EADDRINUSE: the port is taken`),
    );
    // The emulator and the metrics listener, both opened before the failed listen.
    expect(listening.length).toBeGreaterThanOrEqual(2);
    expect(listening.filter((s) => s.listening)).toEqual([]);
    expect(banner).toEqual([]);
  });
});

describe('cluster mode against the fake API server', () => {
  let api: FakeApiServer;
  let logs: string;
  let tlsFiles: { certFile: string; keyFile: string };
  beforeEach(async () => {
    api = new FakeApiServer();
    await api.start();
    logs = '';
    logStream.on('data', (d: Buffer) => (logs += d.toString()));
    tlsFiles = ensureSelfSignedCert(join(dir, 'own'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await api.stop();
  });

  /** The JSON log lines whose msg is `msg`, without pino's own fields. */
  function logLines(msg: string): Array<Record<string, unknown>> {
    return logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === msg)
      .map(({ level: _l, time: _t, pid: _p, hostname: _h, msg: _m, ...rest }) => rest);
  }

  function clusterEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...BASE_ENV,
      KUBECONFIG: writeKubeconfig(join(dir, 'kubeconfig'), api.url),
      TLS_CERT_FILE: tlsFiles.certFile,
      TLS_KEY_FILE: tlsFiles.keyFile,
      POD_NAMESPACE: 'acr-system',
      POD_NAME: 'webhook-7',
      ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-never-used',
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'never-used',
      ...extra,
    };
  }

  it('a review before the caches have synced waits for them, or answers 503 naming the cache still pending; an annotated ServiceAccount serves its Pods', async () => {
    api.namespaces = [{ metadata: { name: 'team-a' } }];
    api.serviceAccounts = [
      {
        metadata: {
          namespace: 'team-a',
          name: 'builder',
          resourceVersion: '3',
          annotations: { 'k8s.aliyun.com/acr-instance-ids': 'cn-beijing:cri-abc123def4567890', 'k8s.aliyun.com/acr-service-arns': 'acs:ram::1234567890123456:role/acr-pull' },
        },
      },
    ];
    let refuseNamespaces = true;
    api.forbid = (_m, path) => refuseNamespaces && path === '/api/v1/namespaces';
    server = await startServer(clusterEnv({ ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts', ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}' }), { logStream });
    const ca = readFileSync(tlsFiles.certFile);
    await waitFor(
      () => api.count('GET', '/api/v1/secrets', { watch: true }) >= 1 && api.count('GET', '/api/v1/serviceaccounts', { watch: true }) >= 1 && api.count('GET', '/api/v1/namespaces/kube-system/configmaps', { watch: true }) >= 1,
      5000,
      'every cache but the namespaces to sync',
    );
    const doc = fixture('pod-serviceaccount-annotated');
    doc.request.dryRun = true;
    const post = (timeout: string) => httpsRequest(`https://127.0.0.1:${server!.port}/mutate?timeout=${timeout}`, { body: JSON.stringify(doc), ca, agent: once() });

    const notReady = { error: 'NotReady', message: 'acr-pull-webhook is starting: its namespaces cache has not synced yet' };
    // The other caches mark themselves synced just after their watch is sent: until the namespaces are all that
    // is missing, ask with a deadline already past (answered at once).
    for (let i = 0; i < 40 && JSON.stringify((await post('100ms')).json) !== JSON.stringify(notReady); i++) await new Promise((r) => setTimeout(r, 100));
    const early = await post('1s');
    expect(early.status).toBe(503);
    expect(early.json).toEqual(notReady);
    expect(logLines('listing namespaces failed')[0]).toEqual({
      call: 'list namespaces (GET /api/v1/namespaces)',
      status: 403,
      error: 'Error HTTP 403 Forbidden',
      server: api.url,
      check: "check RBAC: the webhook's ServiceAccount may not list namespaces; apply manifests/base/rbac.yaml (ClusterRole and Role acr-pull-webhook*), see manifests/README.md",
      retryMs: 1000,
    });

    // This one waits: the namespace list is allowed again before its deadline.
    const waiting = post('10s');
    refuseNamespaces = false;
    const res = await waiting;
    expect(res.status).toBe(200);
    // Dry run: the patch from the ServiceAccount's annotations, nothing written.
    expect(res.json.response.allowed).toBe(true);
    expect(decodePatch(res.json)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-fa9cb3233d48ba297b2c' }] }]);

    // A dropped namespace watch is named as the watch, not the list.
    api.dropWatches();
    await waitFor(() => logLines('namespace watch failed').length === 1, 5000, 'the watch failure');
    expect(logLines('namespace watch failed')[0]).toMatchObject({ call: 'watch namespaces (GET /api/v1/namespaces)', server: api.url, retryMs: 1000 });
  });

  it('takes the cloud from the environment (the public STS endpoint by default), never the bundled emulator', async () => {
    server = await startServer(clusterEnv(), { logStream });
    expect(server.mode).toBe('cluster');
    expect(logLines('acr-pull-webhook serving')).toMatchObject([{ mode: 'cluster', identity: 'env (AccessKey)', sts: 'https://sts.aliyuncs.com' }]);
    expect(banner).toEqual([]);
  });

  it('the credential helper: a Secret it cannot prepare at admission is reported; the leader serves only namespaces the webhook serves', async () => {
    api.namespaces = [{ metadata: { name: 'team-b' } }, { metadata: { name: 'kube-system' } }, { metadata: { name: 'acr-system' } }];
    api.serviceAccounts = ['team-b', 'kube-system', 'acr-system'].map((namespace, i) => ({ metadata: { namespace, name: 'default', resourceVersion: String(10 + i) } }));
    api.configMaps = [
      {
        metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '5' },
        data: { 'service-account': 'default', 'watch-namespace': 'all', 'acr-registry-info': '- instanceId: cri-aaaaaaaaaaaaaaaa\n  regionId: cn-hangzhou\n  domains: myreg.example.com\n' },
      },
    ];
    server = await startServer(clusterEnv({ ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts', ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}' }), { logStream });
    const ca = readFileSync(tlsFiles.certFile);
    await waitFor(() => api.leases.get('acr-system/acr-pull-webhook-leader')?.spec?.holderIdentity === 'webhook-7', 10_000, 'the Lease');
    await waitFor(() => logLines('credential helper: ServiceAccount not served').length >= 1, 10_000, 'the leader\'s pass');

    const doc = fixture('pod-no-annotations');
    doc.request.namespace = 'team-b';
    doc.request.object.metadata.namespace = 'team-b';
    doc.request.object.spec.containers = [{ name: 'c', image: 'myreg.example.com/app/web:1' }];
    const res = await httpsRequest(`https://127.0.0.1:${server.port}/mutate?timeout=10s`, { body: JSON.stringify(doc), ca, agent: once() });
    expect(res.status).toBe(200);
    const secret = 'acr-pull-06f69aacd17d08b1871b';
    // The identity loads (the AccessKey of the env given, not of process.env); the registry's endpoint refuses.
    const err =
      'acr-pull-webhook failed getting a registry token for ACR instance cri-aaaaaaaaaaaaaaaa in cn-hangzhou as the webhook\'s own identity: Unreachable. ' +
      'Container Registry (http://127.0.0.1:9/cr/cn-hangzhou) could not be reached from the webhook: check its network and endpoint settings. ' +
      'Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again';
    // Admitted with the reference in place and told why; the failure is logged for the operator.
    expect(res.json.response.allowed).toBe(true);
    expect(res.json.response.warnings).toEqual([`pull Secret ${secret} (acr-configuration) is not ready yet; the webhook retries: see its Events`]);
    expect(decodePatch(res.json)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: secret }] }]);
    expect(logLines('credential helper: pull Secret not ready at admission')).toEqual([{ namespace: 'team-b', serviceAccount: 'default', secret, err }]);
    // The leader's pass tried team-b's default ServiceAccount only: kube-system and the webhook's own namespace
    // are never served, whatever the helper's watch-namespace says.
    expect(logLines('credential helper: ServiceAccount not served')).toEqual([{ namespace: 'team-b', name: 'default', stage: 'secret', failures: 1, err }]);
  });
});
