// The server's start-up settings, in-process (src/server-main.ts): the command line, the mode, the ports and
// addresses, the listen errors, the configuration file and its reload. test/smoke/ runs the compiled entry.
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, type WebhookConfig } from '../../src/config/config.js';
import { Metrics } from '../../src/metrics.js';
import { startMetricsServer } from '../../src/metrics-server.js';
import {
  bindAddress,
  commandLine,
  detectMode,
  listening,
  port,
  readConfig,
  SERVICE_ACCOUNT_TOKEN,
  startupFailure,
  urlHost,
  USAGE,
  watchConfig,
} from '../../src/server-main.js';

const EXPECTED_USAGE = `Usage: acr-pull-webhook server (node dist/src/main.js) [--help] [--version]

Serves the admission webhook. Everything else is set in the environment and the configuration file:
  PORT (8443), METRICS_PORT (9090), BIND_ADDRESS and METRICS_BIND_ADDRESS (0.0.0.0),
  TLS_CERT_FILE, TLS_KEY_FILE, TLS_MIN_VERSION (TLSv1.2 | TLSv1.3),
  CONFIG_FILE, POD_NAMESPACE, POD_NAME, LOG_LEVEL, ACR_PULL_WEBHOOK_MODE (standalone | cluster),
  WEBHOOK_CONFIGURATION_NAME (the MutatingWebhookConfiguration whose matchConditions the leader keeps),
  ALIBABA_CLOUD_* (identity, region and endpoints).
Without a cluster (no in-cluster service account, no KUBECONFIG) it runs standalone: self-signed HTTPS,
Secrets in memory, the bundled STS/ACR emulator as the cloud. See README.md.
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'server-main-'));
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('commandLine', () => {
  it('without arguments: undefined (serve)', () => {
    expect(commandLine([])).toBeUndefined();
  });

  it.each(['--help', '-h'])('%s: the usage on stdout, exit code 0', (flag) => {
    expect(commandLine([flag])).toEqual({ exitCode: 0, stdout: EXPECTED_USAGE });
    expect(USAGE).toBe(EXPECTED_USAGE);
  });

  it.each(['--version', '-v'])('%s: the package version and a newline on stdout, exit code 0', (flag) => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    expect(commandLine([flag])).toEqual({ exitCode: 0, stdout: `${version}\n` });
  });

  it.each([
    [['--port=8443'], '"--port=8443"'],
    [['serve'], '"serve"'],
    [['--help', '--version'], '"--help"'],
    [['--version', 'x'], '"--version"'],
    [['-v', '-v'], '"-v"'],
    [['-h', '-h'], '"-h"'],
    [[''], '""'],
  ])('%j: refused with the first argument and the usage on stderr, exit code 2', (argv, shown) => {
    expect(commandLine(argv)).toEqual({ exitCode: 2, stderr: `acr-pull-webhook: unknown argument ${shown}\n${EXPECTED_USAGE}` });
  });
});

describe('detectMode', () => {
  let token: string;
  beforeEach(() => {
    token = join(dir, 'token');
    writeFileSync(token, 'a-token');
  });

  it('the in-cluster token path', () => {
    expect(SERVICE_ACCOUNT_TOKEN).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
  });

  it.each<[string, NodeJS.ProcessEnv, 'standalone' | 'cluster']>([
    ['nothing set', {}, 'standalone'],
    ['ACR_PULL_WEBHOOK_MODE empty: not forced', { ACR_PULL_WEBHOOK_MODE: '' }, 'standalone'],
    ['forced standalone, with a KUBECONFIG', { ACR_PULL_WEBHOOK_MODE: 'standalone', KUBECONFIG: '/k' }, 'standalone'],
    ['forced standalone, in a cluster', { ACR_PULL_WEBHOOK_MODE: 'standalone', KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'standalone'],
    ['forced cluster, nothing else', { ACR_PULL_WEBHOOK_MODE: 'cluster' }, 'cluster'],
    ['KUBECONFIG', { KUBECONFIG: '/k' }, 'cluster'],
    ['KUBECONFIG empty', { KUBECONFIG: '' }, 'standalone'],
    ['KUBERNETES_SERVICE_HOST and the token', { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'cluster'],
    ['KUBERNETES_SERVICE_HOST empty, the token', { KUBERNETES_SERVICE_HOST: '' }, 'standalone'],
    ['KUBERNETES_SERVICE_HOST and KUBECONFIG', { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBECONFIG: '/k' }, 'cluster'],
  ])('%s (token file present): %s', (_, env, mode) => {
    expect(detectMode(env, token)).toBe(mode);
  });

  it.each<[string, NodeJS.ProcessEnv, 'standalone' | 'cluster']>([
    ['KUBERNETES_SERVICE_HOST alone', { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'standalone'],
    ['KUBERNETES_SERVICE_HOST and KUBECONFIG', { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBECONFIG: '/k' }, 'cluster'],
    ['nothing set', {}, 'standalone'],
  ])('%s (no token file): %s', (_, env, mode) => {
    expect(detectMode(env, join(dir, 'missing'))).toBe(mode);
  });

  it('reads the real token path by default', () => {
    // This machine (not a Pod) has no service account token: with the host alone it is standalone.
    const here = existsSync(SERVICE_ACCOUNT_TOKEN) ? 'cluster' : 'standalone';
    expect(detectMode({ KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toBe(here);
  });

  it.each(['Cluster', 'kubernetes', ' standalone'])('refuses ACR_PULL_WEBHOOK_MODE=%j', (value) => {
    expect(() => detectMode({ ACR_PULL_WEBHOOK_MODE: value, KUBECONFIG: '/k' }, token)).toThrow(
      new Error(`ACR_PULL_WEBHOOK_MODE must be "standalone" or "cluster", got ${JSON.stringify(value)}`),
    );
  });
});

describe('port', () => {
  it.each<[string | undefined, number]>([
    [undefined, 8443],
    ['', 8443],
    ['0', 0],
    ['1', 1],
    ['8080', 8080],
    ['65535', 65535],
  ])('%j: %d', (value, expected) => {
    expect(port(value, 8443, 'PORT')).toBe(expected);
  });

  it('the fallback is the caller’s', () => {
    expect(port(undefined, 9090, 'METRICS_PORT')).toBe(9090);
    expect(port('', 9090, 'METRICS_PORT')).toBe(9090);
  });

  it.each(['65536', '-1', '1.5', 'http', '8443/tcp', 'NaN', 'Infinity', '99999'])('refuses %j, naming the setting', (value) => {
    expect(() => port(value, 9090, 'METRICS_PORT')).toThrow(new Error(`METRICS_PORT must be a port number, got ${JSON.stringify(value)}`));
  });
});

describe('bindAddress', () => {
  it.each<[string | undefined, string]>([
    [undefined, '0.0.0.0'],
    ['', '0.0.0.0'],
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::7', 'fd00::7'],
  ])('%j: %j', (value, expected) => {
    expect(bindAddress(value, 'BIND_ADDRESS')).toBe(expected);
  });

  it.each(['localhost', '0.0.0.0:9090', '[::1]', '256.0.0.1', 'example.com'])('refuses %j, naming the setting', (value) => {
    expect(() => bindAddress(value, 'METRICS_BIND_ADDRESS')).toThrow(
      new Error(`METRICS_BIND_ADDRESS must be an IP address to listen on (0.0.0.0 for all interfaces, 127.0.0.1, ::), got ${JSON.stringify(value)}`),
    );
  });
});

describe('urlHost', () => {
  it.each([
    ['0.0.0.0', '127.0.0.1'],
    ['::', '[::1]'],
    ['::1', '[::1]'],
    ['fd00::7', '[fd00::7]'],
    ['127.0.0.2', '127.0.0.2'],
    ['10.1.2.3', '10.1.2.3'],
  ])('%s: %s', (address, expected) => {
    expect(urlHost(address)).toBe(expected);
  });
});

describe('listening', () => {
  let taken: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (taken ? taken.close(r) : r(undefined)));
    taken = undefined;
  });

  const failing = (e: Error) => () => Promise.reject(e);
  const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

  it('resolves with what the listen resolves with', async () => {
    expect(await listening('reviews', 'BIND_ADDRESS/PORT', '127.0.0.1', 8443, () => Promise.resolve('up'))).toBe('up');
  });

  it('a port already taken on 127.0.0.1: EADDRINUSE, the port is taken, naming the settings', async () => {
    taken = createServer();
    await new Promise<void>((r) => taken!.listen(0, '127.0.0.1', r));
    const p = (taken.address() as { port: number }).port;
    await expect(listening('metrics', 'METRICS_BIND_ADDRESS/METRICS_PORT', '127.0.0.1', p, () => startMetricsServer(new Metrics(), p, '127.0.0.1'))).rejects.toThrow(
      new Error(`cannot listen for metrics on 127.0.0.1:${p} (METRICS_BIND_ADDRESS/METRICS_PORT): EADDRINUSE: the port is taken`),
    );
  });

  it.each([
    ['EADDRNOTAVAIL', '198.51.100.7', 'cannot listen for reviews on 198.51.100.7:8443 (BIND_ADDRESS/PORT): EADDRNOTAVAIL: 198.51.100.7 is not an address of this host'],
    ['EACCES', '0.0.0.0', 'cannot listen for reviews on 127.0.0.1:8443 (BIND_ADDRESS/PORT): EACCES: not allowed to use this port'],
    ['EADDRINUSE', '::', 'cannot listen for reviews on [::1]:8443 (BIND_ADDRESS/PORT): EADDRINUSE: the port is taken'],
    ['EMFILE', 'fd00::7', 'cannot listen for reviews on [fd00::7]:8443 (BIND_ADDRESS/PORT): EMFILE'],
  ])('%s on %s', async (code, address, message) => {
    await expect(listening('reviews', 'BIND_ADDRESS/PORT', address, 8443, failing(errno(code)))).rejects.toThrow(new Error(message));
  });

  it('an error without a code: its message', async () => {
    await expect(listening('reviews', 'BIND_ADDRESS/PORT', '127.0.0.1', 0, failing(new Error('fastify is closed')))).rejects.toThrow(
      new Error('cannot listen for reviews on 127.0.0.1:0 (BIND_ADDRESS/PORT): fastify is closed'),
    );
  });
});

describe('readConfig', () => {
  const ctx = { ownNamespace: 'acr-system', regionFromEnv: 'cn-shanghai' };

  it('without CONFIG_FILE: the defaults, with the region from the environment', () => {
    const c = readConfig({}, ctx);
    expect(c.defaultRegion).toBe('cn-shanghai');
    expect(c.registries).toEqual([]);
    expect(c.policy).toBeUndefined();
    expect(c.imageCacheSecretNamespace).toBe('acr-system');
    expect(c.credentials.refreshThresholdMs).toBe(900_000);
  });

  it('an empty CONFIG_FILE is no file', () => {
    expect(readConfig({ CONFIG_FILE: '' }, ctx).defaultRegion).toBe('cn-shanghai');
  });

  it('CONFIG_FILE: its values', () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'defaultRegion: cn-beijing\nnamespaces: {exclude: [kube-*]}\n');
    const c = readConfig({ CONFIG_FILE: file }, ctx);
    expect(c.defaultRegion).toBe('cn-beijing');
    expect(c.namespaces.exclude).toEqual(['kube-*']);
  });

  it('a missing file and a bad one: a ConfigError naming the file', () => {
    const missing = join(dir, 'missing.yaml');
    expect(() => readConfig({ CONFIG_FILE: missing }, ctx)).toThrow(new ConfigError('(file)', `cannot read ${missing}: ENOENT`, missing));
    expect(() => readConfig({ CONFIG_FILE: missing }, ctx)).toThrow(`${missing}: (file): cannot read ${missing}: ENOENT`);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'policy: {rules: [{name: x}]}\n');
    expect(() => readConfig({ CONFIG_FILE: bad }, ctx)).toThrow(new ConfigError('policy.rules[0].namespaces', 'expected a mapping', bad));
    expect(() => readConfig({ CONFIG_FILE: bad }, ctx)).toThrow(`${bad}: policy.rules[0].namespaces: expected a mapping`);
  });
});

describe('startupFailure', () => {
  it('the line a failed start ends with', () => {
    expect(startupFailure(new Error('PORT must be a port number, got "x"'))).toBe('acr-pull-webhook: cannot start: PORT must be a port number, got "x"');
    expect(startupFailure(new ConfigError('registries[0]', 'bad', 'config.yaml'))).toBe('acr-pull-webhook: cannot start: config.yaml: registries[0]: bad');
    expect(startupFailure('a string')).toBe('acr-pull-webhook: cannot start: a string');
    expect(startupFailure(42)).toBe('acr-pull-webhook: cannot start: 42');
  });
});

describe('watchConfig', () => {
  let file: string;
  let info: Array<[object, string]>;
  let error: Array<[object, string]>;
  const log = { info: (o: object, m: string) => void info.push([o, m]), error: (o: object, m: string) => void error.push([o, m]) };
  let mtime = Date.parse('2025-01-01T00:00:00Z') / 1000;
  /** Rewrites the file with a modification time a minute later than the last (no waiting on the clock). */
  const rewrite = (text: string) => {
    writeFileSync(file, text);
    mtime += 60;
    utimesSync(file, mtime, mtime);
  };

  beforeEach(() => {
    file = join(dir, 'config.yaml');
    info = [];
    error = [];
    rewrite('defaultRegion: cn-hangzhou\n');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });

  const config = (region: string) => ({ defaultRegion: region }) as WebhookConfig;

  it('every 2 s: an unchanged file is not re-read; a changed one is loaded, applied and logged once', () => {
    const loads: string[] = [];
    const applied: WebhookConfig[] = [];
    const stop = watchConfig(file, () => (loads.push(readFileSync(file, 'utf8')), config(`r${loads.length}`)), (c) => applied.push(c), log);
    vi.advanceTimersByTime(4000);
    expect(loads).toEqual([]);
    rewrite('defaultRegion: cn-beijing\n');
    vi.advanceTimersByTime(1999);
    expect(loads).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(loads).toEqual(['defaultRegion: cn-beijing\n']);
    expect(applied).toEqual([config('r1')]);
    expect(info).toEqual([[{ file }, 'configuration reloaded']]);
    vi.advanceTimersByTime(6000);
    expect(loads).toHaveLength(1);
    expect(error).toEqual([]);
    stop();
  });

  it('a bad new file: rejected and logged with the reason, nothing applied; the next good one applies', () => {
    const applied: WebhookConfig[] = [];
    const ctx = { ownNamespace: 'acr-system', regionFromEnv: undefined };
    const stop = watchConfig(file, () => readConfig({ CONFIG_FILE: file }, ctx), (c) => applied.push(c), log);
    rewrite('defaultRegion: [not, a, string]\n');
    vi.advanceTimersByTime(2000);
    expect(applied).toEqual([]);
    expect(info).toEqual([]);
    expect(error).toHaveLength(1);
    expect(error[0]![1]).toBe('new configuration rejected; keeping the previous one');
    expect(error[0]![0]).toEqual({ file, error: `${file}: defaultRegion: expected a string, got ["not","a","string"]` });
    // The same bad file is not reported again.
    vi.advanceTimersByTime(4000);
    expect(error).toHaveLength(1);
    rewrite('defaultRegion: cn-beijing\n');
    vi.advanceTimersByTime(2000);
    expect(applied.map((c) => c.defaultRegion)).toEqual(['cn-beijing']);
    expect(info).toEqual([[{ file }, 'configuration reloaded']]);
    stop();
  });

  it('a file that disappears is skipped; when it comes back it is loaded', () => {
    const applied: WebhookConfig[] = [];
    const stop = watchConfig(file, () => config('back'), (c) => applied.push(c), log);
    rmSync(file);
    vi.advanceTimersByTime(4000);
    expect(applied).toEqual([]);
    expect(error).toEqual([]);
    rewrite('defaultRegion: cn-beijing\n');
    vi.advanceTimersByTime(2000);
    expect(applied).toEqual([config('back')]);
    stop();
  });

  it('a file missing at the start is loaded once it appears', () => {
    rmSync(file);
    const applied: WebhookConfig[] = [];
    const stop = watchConfig(file, () => config('new'), (c) => applied.push(c), log);
    vi.advanceTimersByTime(2000);
    expect(applied).toEqual([]);
    rewrite('defaultRegion: cn-beijing\n');
    vi.advanceTimersByTime(2000);
    expect(applied).toEqual([config('new')]);
    stop();
  });

  it('the returned function stops the checks', () => {
    const applied: WebhookConfig[] = [];
    const stop = watchConfig(file, () => config('x'), (c) => applied.push(c), log);
    stop();
    rewrite('defaultRegion: cn-beijing\n');
    vi.advanceTimersByTime(10_000);
    expect(applied).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
