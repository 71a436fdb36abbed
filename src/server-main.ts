// The server's start-up, importable (tests): reads the settings, picks standalone or cluster mode, wires the parts
// and serves. The entry point that runs it (`node dist/src/main.js`, the image's command) is main.ts, through server-entry.ts.
import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { servingRules, type ServingRules } from './admission/plan.js';
import { endpointsFromEnv } from './cloud/endpoints.js';
import { identityFromEnv } from './cloud/identity.js';
import { ConfigError, loadConfigFile, parseConfig, type ConfigContext, type WebhookConfig } from './config/config.js';
import { Metrics } from './metrics.js';
import { startMetricsServer } from './metrics-server.js';
import { createRuntime } from './runtime.js';
import { buildServer } from './server.js';
import { connectionCloser, drainListener, type ConnectionCloser } from './shutdown.js';
import { ensureSelfSignedCert } from './standalone/self-signed.js';
import { packageVersion } from './version.js';

export const USAGE = `Usage: acr-pull-webhook server (node dist/src/main.js) [--help] [--version]

Serves the admission webhook. Everything else is set in the environment and the configuration file:
  PORT (8443), METRICS_PORT (9090), BIND_ADDRESS and METRICS_BIND_ADDRESS (0.0.0.0),
  TLS_CERT_FILE, TLS_KEY_FILE, TLS_MIN_VERSION (TLSv1.2 | TLSv1.3),
  CONFIG_FILE, POD_NAMESPACE, POD_NAME, LOG_LEVEL, ACR_PULL_WEBHOOK_MODE (standalone | cluster),
  WEBHOOK_CONFIGURATION_NAME (the MutatingWebhookConfiguration whose matchConditions the leader keeps),
  ALIBABA_CLOUD_* (identity, region and endpoints).
Without a cluster (no in-cluster service account, no KUBECONFIG) it runs standalone: self-signed HTTPS,
Secrets in memory, the bundled STS/ACR emulator as the cloud. See README.md.
`;

/**
 * The command line, read before anything else: --help and --version answer and exit without touching the
 * environment; anything else is refused rather than ignored. Undefined: go on and serve.
 */
export function commandLine(argv: string[]): { exitCode: number; stdout?: string; stderr?: string } | undefined {
  if (argv.length === 0) return undefined;
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) return { exitCode: 0, stdout: USAGE };
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) return { exitCode: 0, stdout: `${packageVersion()}\n` };
  return { exitCode: 2, stderr: `acr-pull-webhook: unknown argument ${JSON.stringify(argv[0])}\n${USAGE}` };
}

export type Mode = 'standalone' | 'cluster';

/** The service account token every Pod gets: with KUBERNETES_SERVICE_HOST, the sign of running in a cluster. */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function detectMode(env: NodeJS.ProcessEnv, tokenFile = SERVICE_ACCOUNT_TOKEN): Mode {
  const forced = env.ACR_PULL_WEBHOOK_MODE;
  if (forced === 'standalone' || forced === 'cluster') return forced;
  if (forced) throw new Error(`ACR_PULL_WEBHOOK_MODE must be "standalone" or "cluster", got ${JSON.stringify(forced)}`);
  // Only an explicit cluster counts: never fall back to client-node's silent http://localhost:8080.
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(tokenFile);
  return inCluster || Boolean(env.KUBECONFIG) ? 'cluster' : 'standalone';
}

export function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got ${JSON.stringify(value)}`);
  return n;
}

/** An IP address to listen on (all interfaces by default: 0.0.0.0; `::` for IPv6 and dual stack). */
export function bindAddress(value: string | undefined, name: string): string {
  if (value === undefined || value === '') return '0.0.0.0';
  if (isIP(value) === 0) throw new Error(`${name} must be an IP address to listen on (0.0.0.0 for all interfaces, 127.0.0.1, ::), got ${JSON.stringify(value)}`);
  return value;
}

/** What to tell a local curl: loopback when listening on all interfaces. */
export function urlHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '[::1]';
  return isIP(address) === 6 ? `[${address}]` : address;
}

/** Listens, or says which setting to change. */
export async function listening<T>(what: string, setting: string, address: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const hint = code === 'EADDRINUSE' ? 'the port is taken' : code === 'EADDRNOTAVAIL' ? `${address} is not an address of this host` : code === 'EACCES' ? 'not allowed to use this port' : '';
    throw new Error(`cannot listen for ${what} on ${urlHost(address)}:${port} (${setting}): ${code}${hint ? `: ${hint}` : ''}`);
  }
}

export function readConfig(env: NodeJS.ProcessEnv, ctx: ConfigContext): WebhookConfig {
  return env.CONFIG_FILE ? loadConfigFile(env.CONFIG_FILE, ctx) : parseConfig({}, ctx, 'defaults');
}

export interface StartOptions {
  /** Where standalone mode keeps its self-signed certificate when TLS_CERT_FILE is not set (default .local/tls). */
  selfSignedDir?: string;
  /** Where the JSON log lines go (default stdout); tests capture them. */
  logStream?: NodeJS.WritableStream;
}

/** A serving webhook: what the signal handler drains and stops (src/shutdown.ts), and the actual ports. */
export interface RunningServer {
  mode: Mode;
  app: FastifyInstance;
  closer: ConnectionCloser;
  port: number;
  metricsPort: number;
  /** Stops the runtime, the metrics listener and the emulator (after the admission listener has drained). */
  stopRest(): Promise<unknown>;
  /** In-process shutdown: drains the admission listener, stops the rest and the configuration watch. */
  close(): Promise<void>;
}

/** Reads the settings from `env`, wires the parts for its mode and listens; rejects with what to fix. */
export async function startServer(env: NodeJS.ProcessEnv, opts: StartOptions = {}): Promise<RunningServer> {
  const mode = detectMode(env);
  const ownNamespace = env.POD_NAMESPACE || 'acr-pull-webhook';
  const ctx = { ownNamespace, regionFromEnv: env.ALIBABA_CLOUD_REGION_ID };
  const config = readConfig(env, ctx);
  const httpsPort = port(env.PORT, 8443, 'PORT');
  const metricsPort = port(env.METRICS_PORT, 9090, 'METRICS_PORT');
  const host = bindAddress(env.BIND_ADDRESS, 'BIND_ADDRESS');
  const metricsHost = bindAddress(env.METRICS_BIND_ADDRESS, 'METRICS_BIND_ADDRESS');

  let tls;
  if (env.TLS_CERT_FILE || env.TLS_KEY_FILE) {
    if (!env.TLS_CERT_FILE || !env.TLS_KEY_FILE) throw new Error('set both TLS_CERT_FILE and TLS_KEY_FILE, or neither');
    tls = { certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE };
  } else if (mode === 'standalone') {
    tls = ensureSelfSignedCert(opts.selfSignedDir ?? resolve('.local/tls'));
  } else {
    throw new Error('cluster mode needs TLS_CERT_FILE and TLS_KEY_FILE (the API server only calls webhooks over HTTPS)');
  }
  if (env.TLS_MIN_VERSION && env.TLS_MIN_VERSION !== 'TLSv1.2' && env.TLS_MIN_VERSION !== 'TLSv1.3') {
    throw new Error(`TLS_MIN_VERSION must be TLSv1.2 or TLSv1.3, got ${JSON.stringify(env.TLS_MIN_VERSION)}`);
  }

  // Each mode loads only what it uses: the emulator in standalone mode, client-node in cluster mode.
  const cloud =
    mode === 'standalone'
      ? await (await import('./standalone/cloud.js')).standaloneCloud(env, config.endpoints)
      : (() => {
          const endpoints = endpointsFromEnv(env, config.endpoints);
          return { endpoints, identity: identityFromEnv(env, endpoints.sts), emulator: undefined };
        })();
  const metrics = new Metrics();
  const closer = connectionCloser();
  let rules: ServingRules;
  let current = config;
  // The server's logger (pino) is the one logger; the runtime gets it once the server exists.
  const app = buildServer({
    rules: () => rules,
    secrets: { ensure: (spec, budget) => runtime.manager.ensure(spec, budget), fresh: (spec) => runtime.manager.fresh(spec), ready: () => runtime.ready() },
    onHelperSecretFailure: (f) => runtime.reportHelperFailure(f),
    discovery: { refreshForMiss: (budget) => runtime.discovery.refreshForMiss(budget) },
    tls: { ...tls, minVersion: env.TLS_MIN_VERSION === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2' },
    logLevel: env.LOG_LEVEL,
    ...(opts.logStream ? { logStream: opts.logStream } : {}),
    observe: (o, seconds) => metrics.observeOutcome(o, seconds),
    onCertificate: (notAfter) => metrics.certificateExpiry.set(notAfter.getTime() / 1000),
    onConnection: (protocol) => metrics.connections.labels(protocol === 'h2' ? 'h2' : 'http/1.1').inc(),
    // Not ready until every cache has synced, nor while draining (the answers still go out).
    ready: () => runtime.caches.synced() && !closer.closing,
    caches: { synced: () => runtime.caches.synced(), whenSynced: () => runtime.caches.whenSynced(), pending: () => runtime.caches.pending() },
    connections: closer,
  });
  metrics.refreshThreshold.set(config.credentials.refreshThresholdMs / 1000);
  const runtime = createRuntime({
    config,
    identity: cloud.identity,
    endpoints: cloud.endpoints,
    ownNamespace,
    logger: app.log,
    metrics,
    cluster:
      mode === 'cluster'
        ? (await import('./kube/cluster.js')).clusterParts(env, {
            ownNamespace,
            replica: env.POD_NAME,
            logger: app.log,
            ...(config.credentialHelper.configMap ? { helperConfigMap: config.credentialHelper.configMap } : {}),
            ...(env.WEBHOOK_CONFIGURATION_NAME ? { webhookConfiguration: env.WEBHOOK_CONFIGURATION_NAME } : {}),
          })
        : undefined,
    isExcludedNamespace: (ns) => rules.isExcludedNamespace(ns),
    // Discovery and domain look-ups publish a new index: the rules (and their memo) are rebuilt around it.
    onIndex: (index) => (rules = servingRules(current, ownNamespace, runtime.namespaceLabels, index, lookups)),
  });
  // ServiceAccounts (their annotations) and the credential helper's ConfigMap, read live by the rules.
  const lookups = { ...(runtime.serviceAccount ? { serviceAccount: runtime.serviceAccount } : {}), credentialHelper: runtime.credentialHelper };
  rules = servingRules(config, ownNamespace, runtime.namespaceLabels, runtime.discovery.current, lookups);
  let stopWatch = (): void => {};
  if (env.CONFIG_FILE) {
    stopWatch = watchConfig(env.CONFIG_FILE, () => readConfig(env, ctx), (next) => {
      current = next;
      runtime.discovery.setConfig(next);
    }, app.log);
  }

  // Listening before the caches have synced: /readyz says 503 (with a log line per failed attempt) instead of a
  // process that exits, and the open listener keeps the retries going.
  runtime.start();
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  // Everything but the review listener: on close, after draining, and on a failed listen below.
  const stopRest = (): Promise<unknown> => {
    const opened = metricsServer;
    return Promise.allSettled([
      runtime.stop(),
      opened &&
        new Promise((r) => {
          opened.close(r);
          opened.closeIdleConnections();
        }),
      cloud.emulator?.close(),
    ]);
  };
  try {
    metricsServer = await listening('metrics', 'METRICS_BIND_ADDRESS/METRICS_PORT', metricsHost, metricsPort, () => startMetricsServer(metrics, metricsPort, metricsHost));
    await listening('reviews', 'BIND_ADDRESS/PORT', host, httpsPort, () => app.listen({ host, port: httpsPort }));
  } catch (e) {
    // Nothing will be served: stop what start-up began (watches, timers, the metrics listener, the emulator), so a
    // caller that goes on after the error (an embedding, a test) is not left with half a webhook running.
    stopWatch();
    await Promise.allSettled([stopRest(), app.close()]);
    throw e;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : httpsPort;
  const metricsAddress = metricsServer.address();
  app.log.info(
    {
      mode,
      address: host,
      port: actualPort,
      metricsAddress: metricsHost,
      metricsPort: typeof metricsAddress === 'object' && metricsAddress ? metricsAddress.port : metricsPort,
      namespace: ownNamespace,
      identity: cloud.identity.source,
      defaultRegion: config.defaultRegion ?? 'none: instance IDs need a region prefix (set ALIBABA_CLOUD_REGION_ID)',
      sts: cloud.endpoints.sts,
      policy: config.policy ? `${config.policy.rules.length} rules` : 'none: any well-formed annotation is served (RAM trust policies still apply)',
      registries: config.registries.length,
      credentialHelper: config.credentialHelper.configMap ? `${config.credentialHelper.configMap.namespace}/${config.credentialHelper.configMap.name} (read when it exists)` : 'off',
      discovery: config.discovery.enabled ? `on: ${config.discovery.regions.join(', ')}` : 'off',
    },
    'acr-pull-webhook serving',
  );
  if (mode === 'standalone') {
    console.error(
      `\nacr-pull-webhook STANDALONE mode: no Kubernetes cluster configured, Secrets are kept in memory.\n` +
        `  HTTPS on https://${isIP(host) === 6 ? `[${host}]` : host}:${actualPort} with a self-signed certificate (${tls.certFile})\n` +
        (cloud.emulator ? `  Cloud: the bundled STS/ACR emulator at ${cloud.emulator.url} (demo accounts, roles and instances)\n` : `  Cloud: ${cloud.endpoints.sts}\n`) +
        `  Try:  curl -sk https://${urlHost(host)}:${actualPort}/mutate -H 'Content-Type: application/json' \\\n` +
        `          --data @test/fixtures/admission-review/standalone-demo-cross-account.json\n`,
    );
  }

  return {
    mode,
    app,
    closer,
    port: actualPort,
    metricsPort: typeof metricsAddress === 'object' && metricsAddress ? metricsAddress.port : metricsPort,
    stopRest,
    async close() {
      stopWatch();
      await drainListener(app, closer, 20_000, app.log);
      await stopRest();
    },
  };
}

/** ConfigMap updates arrive as file changes: re-read, validate, and keep the old rules if the new file is bad. */
/** Checks the file's modification time every 2 s; returns what stops checking. */
export function watchConfig(file: string, load: () => WebhookConfig, apply: (c: WebhookConfig) => void, log: { info(o: object, m: string): void; error(o: object, m: string): void }): () => void {
  const stamp = () => {
    try {
      return String(statSync(file).mtimeMs);
    } catch {
      return undefined;
    }
  };
  let last = stamp();
  const timer = setInterval(() => {
    const now = stamp();
    if (now === undefined || now === last) return;
    last = now;
    try {
      apply(load());
      log.info({ file }, 'configuration reloaded');
    } catch (e) {
      log.error({ file, error: (e as Error).message }, 'new configuration rejected; keeping the previous one');
    }
  }, 2000).unref();
  return () => clearInterval(timer);
}

/** The line a failed start-up ends with (on stderr, before exit 1). */
export function startupFailure(e: unknown): string {
  const message = e instanceof ConfigError || e instanceof Error ? e.message : String(e);
  return `acr-pull-webhook: cannot start: ${message}`;
}
