// The whole server started in-process (startServer in src/server-main.ts) on 127.0.0.1 with ports chosen by the
// system: standalone with the bundled emulator, standalone with the cloud from the environment, cluster mode
// against the fake API server, and the settings that stop start-up before anything listens. Each test closes
// what it started. test/smoke/ runs the same through the compiled entry (dist/src/main.js).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/config/config.js';
import { startServer, type RunningServer } from '../../src/server-main.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { FakeApiServer, waitFor } from '../kube/support/fake-apiserver.js';
import { decodePatch, fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

/** Loopback, ports from the system, info logs. */
const BASE_ENV: NodeJS.ProcessEnv = { PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.1', METRICS_BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'info' };
const NONE_POLICY = 'none: any well-formed annotation is served (RAM trust policies still apply)';
const NONE_REGION = 'none: instance IDs need a region prefix (set ALIBABA_CLOUD_REGION_ID)';

let dir: string;
let server: RunningServer | undefined;
let logs: string;
let logStream: PassThrough;
let banner: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'server-start-'));
  logs = '';
  logStream = new PassThrough();
  logStream.on('data', (d: Buffer) => (logs += d.toString()));
  banner = [];
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void banner.push(a.map(String).join(' ')));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
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

/** A new connection per request: the connection counter counts requests. */
const once = () => new Agent({ keepAlive: false });

async function eventually(check: () => Promise<boolean> | boolean, tries = 40): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function refused(url: string): Promise<string> {
  try {
    await fetch(url);
    return 'answered';
  } catch (e) {
    return ((e as Error & { cause?: NodeJS.ErrnoException }).cause?.code ?? 'error') as string;
  }
}

describe('standalone, the bundled emulator as the cloud', () => {
  it('listens on the given address with system ports, says how to try it, answers a review, counts it, and closes everything', async () => {
    server = await startServer({ ...BASE_ENV }, { selfSignedDir: join(dir, 'tls'), logStream });
    const { port, metricsPort } = server;
    const certFile = join(dir, 'tls', 'tls.crt');
    const ca = readFileSync(certFile);
    expect(server.mode).toBe('standalone');
    expect(server.app.server.address()).toMatchObject({ address: '127.0.0.1', port });
    expect(port).toBeGreaterThan(0);
    expect(metricsPort).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(port);

    const serving = logLines('acr-pull-webhook serving');
    expect(serving).toHaveLength(1);
    const sts = serving[0]!.sts as string;
    expect(sts).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sts$/);
    expect(serving[0]).toEqual({
      mode: 'standalone',
      address: '127.0.0.1',
      port,
      metricsAddress: '127.0.0.1',
      metricsPort,
      namespace: 'acr-pull-webhook',
      identity: 'static:emulator demo user',
      defaultRegion: NONE_REGION,
      sts,
      policy: NONE_POLICY,
      registries: 0,
      credentialHelper: 'kube-system/acr-configuration (read when it exists)',
      discovery: 'off',
    });
    const emulatorUrl = sts.slice(0, -'/sts'.length);
    expect(banner).toEqual([
      `\nacr-pull-webhook STANDALONE mode: no Kubernetes cluster configured, Secrets are kept in memory.\n` +
        `  HTTPS on https://127.0.0.1:${port} with a self-signed certificate (${certFile})\n` +
        `  Cloud: the bundled STS/ACR emulator at ${emulatorUrl} (demo accounts, roles and instances)\n` +
        `  Try:  curl -sk https://127.0.0.1:${port}/mutate -H 'Content-Type: application/json' \\\n` +
        `          --data @test/fixtures/admission-review/standalone-demo-cross-account.json\n`,
    ]);

    expect((await httpsRequest(`https://127.0.0.1:${port}/readyz`, { ca, agent: once() })).status).toBe(200);
    const res = await httpsRequest(`https://127.0.0.1:${port}/mutate?timeout=10s`, { body: fixtureText('standalone-demo-cross-account'), ca, agent: once() });
    expect(res.status).toBe(200);
    expect(res.json.response.uid).toBe('00000000-0000-4000-8000-0000000000d1');
    expect(res.json.response.allowed).toBe(true);
    expect(decodePatch(res.json)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'acr-pull-57ac48007f2ba42fd6fe' }] }]);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^acr_webhook_admission_duration_seconds_count\{kind="Pod",result="patched",path="cold"\} 1$/m);
    expect(metrics).toMatch(/^acr_webhook_connections_total\{protocol="http\/1.1"\} 2$/m);
    expect(metrics).toMatch(/^acr_webhook_connections_total\{protocol="h2"\} 0$/m);
    expect(metrics).toMatch(/^acr_webhook_refresh_threshold_seconds 900$/m);
    const notAfter = Date.parse(new X509Certificate(ca).validTo) / 1000;
    expect(metrics).toMatch(new RegExp(`^acr_webhook_tls_certificate_expiry_timestamp_seconds ${notAfter}$`, 'm'));
    expect(metrics).toMatch(/^acr_webhook_secret_writes_total\{operation="create",outcome="ok"\} 1$/m);

    const running = server;
    server = undefined;
    await running.close();
    expect(running.app.server.listening).toBe(false);
    expect(await refused(`http://127.0.0.1:${metricsPort}/metrics`)).toBe('ECONNREFUSED');
    expect(await refused(`${emulatorUrl}/sts`)).toBe('ECONNREFUSED');
  });

  it('re-reads CONFIG_FILE: a policy change applies without a restart, a bad file is logged and the old one kept', async () => {
    const file = join(dir, 'config.yaml');
    let mtime = Date.parse('2025-01-01T00:00:00Z') / 1000;
    const write = (text: string) => {
      writeFileSync(file, text);
      utimesSync(file, (mtime += 60), mtime);
    };
    const policy = (instance: string) =>
      `policy:\n  rules:\n    - name: team-a\n      namespaces: {names: [team-a]}\n      serviceArns: ["*"]\n      userArns: ["*"]\n      instances: ["${instance}"]\n`;
    write(policy('cn-hangzhou:cri-demo0000000001'));
    server = await startServer({ ...BASE_ENV, CONFIG_FILE: file }, { selfSignedDir: join(dir, 'tls'), logStream });
    const ca = readFileSync(join(dir, 'tls', 'tls.crt'));
    expect(logLines('acr-pull-webhook serving')[0]).toMatchObject({ policy: '1 rules' });
    const review = async () =>
      (await httpsRequest(`https://127.0.0.1:${server!.port}/mutate?timeout=10s`, { body: fixtureText('standalone-demo-cross-account'), ca })).json.response;
    expect(await review()).toMatchObject({ allowed: false, status: { code: 403 } });

    write(policy('cn-beijing:cri-demo0000000002'));
    expect(await eventually(async () => (await review()).allowed === true)).toBe(true);
    expect(logLines('configuration reloaded')).toEqual([{ file }]);

    write('policy: {rules: [{name: x}]}\n');
    expect(await eventually(() => logLines('new configuration rejected; keeping the previous one').length === 1)).toBe(true);
    expect(logLines('new configuration rejected; keeping the previous one')).toEqual([{ file, error: `${file}: policy.rules[0].namespaces: expected a mapping` }]);
    expect((await review()).allowed).toBe(true);
  });
});

describe('standalone, the cloud and the certificate from the environment', () => {
  it('serves with the given certificate, TLS 1.3 only, and names the cloud endpoint instead of the emulator', async () => {
    const tls = ensureSelfSignedCert(join(dir, 'own'));
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      [
        'registries: [{instanceId: cri-aaaaaaaaaaaaaaaa, region: cn-hangzhou}, {instanceId: "", region: cn-beijing}]',
        'discovery: {enabled: true, regions: [cn-hangzhou, cn-beijing]}',
        'credentialHelper: {configMap: ""}',
        'credentials: {refreshThreshold: 20m}',
        'policy: {rules: [{name: a, namespaces: {names: [a]}, serviceArns: ["*"], userArns: ["*"], instances: ["*"]}, {name: b, namespaces: {names: [b]}, serviceArns: ["*"], userArns: ["*"], instances: ["*"]}]}',
        '',
      ].join('\n'),
    );
    server = await startServer(
      {
        ...BASE_ENV,
        TLS_CERT_FILE: tls.certFile,
        TLS_KEY_FILE: tls.keyFile,
        TLS_MIN_VERSION: 'TLSv1.3',
        CONFIG_FILE: file,
        POD_NAMESPACE: 'acr-system',
        ALIBABA_CLOUD_REGION_ID: 'cn-shanghai',
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-never-used',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'never-used',
        ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts',
        ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}',
      },
      { selfSignedDir: join(dir, 'unused'), logStream },
    );
    const { port, metricsPort } = server;
    expect(logLines('acr-pull-webhook serving')).toEqual([
      {
        mode: 'standalone',
        address: '127.0.0.1',
        port,
        metricsAddress: '127.0.0.1',
        metricsPort,
        namespace: 'acr-system',
        identity: 'env (AccessKey)',
        defaultRegion: 'cn-shanghai',
        sts: 'http://127.0.0.1:9/sts',
        policy: '2 rules',
        registries: 2,
        credentialHelper: 'off',
        discovery: 'on: cn-hangzhou, cn-beijing',
      },
    ]);
    expect(banner).toEqual([
      `\nacr-pull-webhook STANDALONE mode: no Kubernetes cluster configured, Secrets are kept in memory.\n` +
        `  HTTPS on https://127.0.0.1:${port} with a self-signed certificate (${tls.certFile})\n` +
        `  Cloud: http://127.0.0.1:9/sts\n` +
        `  Try:  curl -sk https://127.0.0.1:${port}/mutate -H 'Content-Type: application/json' \\\n` +
        `          --data @test/fixtures/admission-review/standalone-demo-cross-account.json\n`,
    ]);

    const ca = readFileSync(tls.certFile);
    const handshake = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', maxVersion }, () => {
          resolve(s.getProtocol() ?? 'none');
          s.destroy();
        });
        s.once('error', () => resolve('refused'));
      });
    expect(await handshake('TLSv1.3')).toBe('TLSv1.3');
    expect(await handshake('TLSv1.2')).toBe('refused');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^acr_webhook_refresh_threshold_seconds 1200$/m);
  });

  it('TLS_MIN_VERSION=TLSv1.2 (and unset) also accepts TLS 1.2', async () => {
    const tls = ensureSelfSignedCert(join(dir, 'own'));
    for (const min of ['TLSv1.2', undefined]) {
      server = await startServer(
        { ...BASE_ENV, TLS_CERT_FILE: tls.certFile, TLS_KEY_FILE: tls.keyFile, ...(min ? { TLS_MIN_VERSION: min } : {}), ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts' },
        { logStream },
      );
      const port = server.port;
      const protocol = await new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(tls.certFile), servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
          resolve(s.getProtocol() ?? 'none');
          s.destroy();
        });
        s.once('error', (e) => resolve(`refused: ${e.message}`));
      });
      expect(protocol, String(min)).toBe('TLSv1.2');
      await server.close();
      server = undefined;
    }
  });
});

describe('cluster mode against the fake API server', () => {
  let api: FakeApiServer;
  beforeEach(async () => {
    api = new FakeApiServer();
    await api.start();
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await api.stop();
  });

  function kubeconfig(): string {
    return writeKubeconfig(join(dir, 'kubeconfig'), api.url);
  }

  it('syncs its caches, takes the Lease as POD_NAME, keeps the webhook configuration named, is ready; no banner; closes its watches', async () => {
    const tls = ensureSelfSignedCert(join(dir, 'tls'));
    api.namespaces = [{ metadata: { name: 'team-a', labels: { team: 'a' } } }];
    // The namespace list is refused at first: not ready until it succeeds (retried after 1 s).
    let refuseNamespaces = true;
    api.forbid = (_m, path) => refuseNamespaces && path === '/api/v1/namespaces';
    server = await startServer(
      {
        ...BASE_ENV,
        KUBECONFIG: kubeconfig(),
        TLS_CERT_FILE: tls.certFile,
        TLS_KEY_FILE: tls.keyFile,
        POD_NAMESPACE: 'acr-system',
        POD_NAME: 'webhook-7',
        WEBHOOK_CONFIGURATION_NAME: 'acr-pull-webhook',
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-never-used',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'never-used',
        ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:9/sts',
        ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:9/cr/{region}',
      },
      { logStream },
    );
    expect(server.mode).toBe('cluster');
    const { port, metricsPort } = server;
    expect(logLines('acr-pull-webhook serving')).toEqual([
      {
        mode: 'cluster',
        address: '127.0.0.1',
        port,
        metricsAddress: '127.0.0.1',
        metricsPort,
        namespace: 'acr-system',
        identity: 'env (AccessKey)',
        defaultRegion: NONE_REGION,
        sts: 'http://127.0.0.1:9/sts',
        policy: NONE_POLICY,
        registries: 0,
        credentialHelper: 'kube-system/acr-configuration (read when it exists)',
        discovery: 'off',
      },
    ]);
    expect(banner).toEqual([]);
    const ca = readFileSync(tls.certFile);
    const readyz = async () => (await httpsRequest(`https://127.0.0.1:${port}/readyz`, { ca })).status;
    await waitFor(() => api.count('GET', '/api/v1/namespaces', { watch: false }) >= 1 && api.count('GET', '/api/v1/secrets', { watch: true }) >= 1, 5000, 'the first lists');
    expect(await readyz()).toBe(503);
    refuseNamespaces = false;
    expect(await eventually(async () => (await readyz()) === 200)).toBe(true);
    await waitFor(() => api.leases.get('acr-system/acr-pull-webhook-leader')?.spec?.holderIdentity === 'webhook-7', 10_000, 'the Lease');
    await waitFor(() => api.count('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/acr-pull-webhook') >= 1, 10_000, 'the webhook configuration');
    expect(api.count('GET', '/api/v1/namespaces/kube-system/configmaps', { watch: false })).toBeGreaterThanOrEqual(1);
    expect(api.count('GET', '/api/v1/namespaces', { watch: true })).toBeGreaterThanOrEqual(1);
    expect(api.openWatches()).toBe(1);

    // A Pod without annotations in a served namespace, decided on the listed labels.
    const res = await httpsRequest(`https://127.0.0.1:${port}/mutate?timeout=10s`, { body: fixtureText('pod-no-annotations'), ca });
    expect(res.json.response).toEqual({ uid: JSON.parse(fixtureText('pod-no-annotations')).request.uid, allowed: true });

    const running = server;
    server = undefined;
    await running.close();
    await waitFor(() => api.openWatches() === 0, 2000, 'the Secret watch to close');
    expect(await refused(`http://127.0.0.1:${metricsPort}/metrics`)).toBe('ECONNREFUSED');
  });
});

describe('settings that stop start-up before anything listens', () => {
  it.each<[string, NodeJS.ProcessEnv, string]>([
    ['an unknown mode', { ACR_PULL_WEBHOOK_MODE: 'kube' }, 'ACR_PULL_WEBHOOK_MODE must be "standalone" or "cluster", got "kube"'],
    ['a bad PORT', { PORT: 'https' }, 'PORT must be a port number, got "https"'],
    ['a bad METRICS_PORT', { METRICS_PORT: '70000' }, 'METRICS_PORT must be a port number, got "70000"'],
    ['a bad BIND_ADDRESS', { BIND_ADDRESS: 'localhost' }, 'BIND_ADDRESS must be an IP address to listen on (0.0.0.0 for all interfaces, 127.0.0.1, ::), got "localhost"'],
    ['a bad METRICS_BIND_ADDRESS', { METRICS_BIND_ADDRESS: '127.0.0.1:9090' }, 'METRICS_BIND_ADDRESS must be an IP address to listen on (0.0.0.0 for all interfaces, 127.0.0.1, ::), got "127.0.0.1:9090"'],
    ['TLS_CERT_FILE alone', { TLS_CERT_FILE: '/tls/tls.crt' }, 'set both TLS_CERT_FILE and TLS_KEY_FILE, or neither'],
    ['TLS_KEY_FILE alone', { TLS_KEY_FILE: '/tls/tls.key' }, 'set both TLS_CERT_FILE and TLS_KEY_FILE, or neither'],
    ['cluster mode without a certificate', { ACR_PULL_WEBHOOK_MODE: 'cluster' }, 'cluster mode needs TLS_CERT_FILE and TLS_KEY_FILE (the API server only calls webhooks over HTTPS)'],
    ['TLS 1.1', { TLS_CERT_FILE: '/tls/tls.crt', TLS_KEY_FILE: '/tls/tls.key', TLS_MIN_VERSION: 'TLSv1.1' }, 'TLS_MIN_VERSION must be TLSv1.2 or TLSv1.3, got "TLSv1.1"'],
    ['PORT checked before the addresses', { PORT: '-1', BIND_ADDRESS: 'x' }, 'PORT must be a port number, got "-1"'],
    ['PORT checked before METRICS_PORT', { PORT: 'a', METRICS_PORT: 'b' }, 'PORT must be a port number, got "a"'],
    ['BIND_ADDRESS checked before METRICS_BIND_ADDRESS', { BIND_ADDRESS: 'a', METRICS_BIND_ADDRESS: 'b' }, 'BIND_ADDRESS must be an IP address to listen on (0.0.0.0 for all interfaces, 127.0.0.1, ::), got "a"'],
  ])('%s', async (_, env, message) => {
    await expect(startServer(env, { selfSignedDir: join(dir, 'tls'), logStream })).rejects.toThrow(new Error(message));
    expect(logs).toBe('');
  });

  it('a configuration file that cannot be read: the ConfigError naming it', async () => {
    const missing = join(dir, 'config.yaml');
    await expect(startServer({ CONFIG_FILE: missing }, { logStream })).rejects.toThrow(new ConfigError('(file)', `cannot read ${missing}: ENOENT`, missing));
  });

  it('a configuration file is read with POD_NAMESPACE and ALIBABA_CLOUD_REGION_ID as its context', async () => {
    const file = join(dir, 'config.yaml');
    // A registry without a region needs the default region: none here, so the file is refused.
    writeFileSync(file, 'registries: [{instanceId: cri-aaaaaaaaaaaaaaaa}]\n');
    await expect(startServer({ CONFIG_FILE: file, PORT: 'x' }, { logStream })).rejects.toThrow(ConfigError);
    // With the region from the environment it is accepted, and the next setting is the one refused.
    await expect(startServer({ CONFIG_FILE: file, PORT: 'x', ALIBABA_CLOUD_REGION_ID: 'cn-hangzhou' }, { logStream })).rejects.toThrow(new Error('PORT must be a port number, got "x"'));
  });
});
