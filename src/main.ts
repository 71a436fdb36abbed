// Entry point: reads process settings, picks standalone or cluster mode, wires the parts and serves.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfigFile, parseConfig, ConfigError, type WebhookConfig } from './config/config.js';
import { servingRules } from './admission/plan.js';
import { buildServer } from './server.js';
import { ensureSelfSignedCert } from './standalone/self-signed.js';
import { unconfiguredProvider } from './pull-secrets/unconfigured.js';
import type { PullSecretProvider } from './pull-secrets/types.js';

type Mode = 'standalone' | 'cluster';

function detectMode(env: NodeJS.ProcessEnv): Mode {
  const forced = env.ACR_PULL_WEBHOOK_MODE;
  if (forced === 'standalone' || forced === 'cluster') return forced;
  if (forced) throw new Error(`ACR_PULL_WEBHOOK_MODE must be "standalone" or "cluster", got ${JSON.stringify(forced)}`);
  // Only an explicit cluster counts: never fall back to client-node's silent http://localhost:8080.
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
  return inCluster || Boolean(env.KUBECONFIG) ? 'cluster' : 'standalone';
}

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  const env = process.env;
  const mode = detectMode(env);
  const ownNamespace = env.POD_NAMESPACE || 'acr-pull-webhook';
  const ctx = { ownNamespace, regionFromEnv: env.ALIBABA_CLOUD_REGION_ID };
  const config: WebhookConfig = env.CONFIG_FILE ? loadConfigFile(env.CONFIG_FILE, ctx) : parseConfig({}, ctx, 'defaults');
  const rules = servingRules(config, ownNamespace);
  const httpsPort = port(env.PORT, 8443, 'PORT');

  let tls;
  if (env.TLS_CERT_FILE || env.TLS_KEY_FILE) {
    if (!env.TLS_CERT_FILE || !env.TLS_KEY_FILE) throw new Error('set both TLS_CERT_FILE and TLS_KEY_FILE, or neither');
    tls = { certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE };
  } else if (mode === 'standalone') {
    tls = ensureSelfSignedCert(resolve('.local/tls'));
  } else {
    throw new Error('cluster mode needs TLS_CERT_FILE and TLS_KEY_FILE (the API server only calls webhooks over HTTPS)');
  }

  const secrets: PullSecretProvider = unconfiguredProvider;
  const app = buildServer({
    rules: () => rules,
    secrets,
    tls: { ...tls, minVersion: env.TLS_MIN_VERSION === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2' },
    logLevel: env.LOG_LEVEL,
  });
  await app.listen({ host: '0.0.0.0', port: httpsPort });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : httpsPort;
  app.log.info({ mode, port: actualPort, namespace: ownNamespace }, 'acr-pull-webhook serving');
  if (mode === 'standalone') {
    console.error(
      `\nacr-pull-webhook STANDALONE mode: no Kubernetes cluster configured, Secrets are kept in memory.\n` +
        `  HTTPS on https://0.0.0.0:${actualPort} with a self-signed certificate (${tls.certFile})\n` +
        `  Try:  curl -sk https://127.0.0.1:${actualPort}/mutate -H 'Content-Type: application/json' \\\n` +
        `          --data @test/fixtures/admission-review/pod-default-domain-service-arn.json\n`,
    );
  }

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: no new reviews, finishing in-flight ones');
    // close() stops accepting, answers in-flight requests, then resolves.
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  const message = e instanceof ConfigError || e instanceof Error ? e.message : String(e);
  console.error(`acr-pull-webhook: cannot start: ${message}`);
  process.exit(1);
});
