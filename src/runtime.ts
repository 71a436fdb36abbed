// Assembles the long-lived parts for one mode: where Secrets live (the API or memory), who refreshes and
// collects them (Lease leader or the only process), and the credential chain behind them.
import type { WebhookConfig } from './config/config.js';
import { CloudCaller } from './cloud/rpc.js';
import type { Endpoints } from './cloud/endpoints.js';
import type { Identity } from './cloud/identity.js';
import { AcrTokenSource } from './cloud/token-source.js';
import { RegistryDiscovery } from './cloud/discovery.js';
import { DEFAULT_RAM_ENDPOINT } from './cloud/endpoints.js';
import { TrustExplainer } from './cloud/trust-explainer.js';
import type { RegistryIndex } from './acr/served-registries.js';
import type { Metrics } from './metrics.js';
import { SecretCollector, MemoryUsageSource } from './pull-secrets/collector.js';
import { AlwaysLeader, type Leadership } from './pull-secrets/leadership.js';
import type { Logger } from './pull-secrets/logger.js';
import { PullSecretManager } from './pull-secrets/manager.js';
import { MemorySecretStore } from './pull-secrets/memory-store.js';
import { SecretRefresher } from './pull-secrets/refresher.js';
import type { SecretStore } from './pull-secrets/store.js';
import type { NamespaceLabels } from './admission/plan.js';
import type { UsageSource } from './pull-secrets/collector.js';

/** The cluster-side parts (src/kube/cluster.ts), loaded only in cluster mode: client-node alone costs ~70 MiB. */
export interface ClusterParts {
  store: SecretStore;
  leader: Leadership & { start(): unknown; stop(): Promise<void> };
  usage: UsageSource;
  namespaces: { labels: NamespaceLabels; start(): Promise<void>; stop(): Promise<void> };
}

export interface Runtime {
  manager: PullSecretManager;
  tokens: AcrTokenSource;
  /** The registries served without annotations, kept current (configured domains, look-ups, discovery). */
  discovery: RegistryDiscovery;
  explainer: TrustExplainer;
  namespaceLabels: NamespaceLabels;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  config: WebhookConfig;
  identity: Identity;
  endpoints: Endpoints;
  ownNamespace: string;
  logger: Logger;
  metrics?: Metrics;
  /** Cluster mode when given; memory otherwise. */
  cluster?: ClusterParts;
  /** Called whenever the registry index changes (the caller rebuilds its serving rules). */
  onIndex?: (index: RegistryIndex) => void;
}

export function createRuntime(opts: RuntimeOptions): Runtime {
  const { config, metrics, logger } = opts;
  const caller = new CloudCaller({ observe: (api, code, s) => metrics?.cloudCalls.labels(api, code).observe(s) });
  const explainer = new TrustExplainer({ identity: opts.identity, caller, stsEndpoint: opts.endpoints.sts, ramEndpoint: opts.endpoints.ram ?? DEFAULT_RAM_ENDPOINT });
  const tokens = new AcrTokenSource({
    explainRefusal: (roleArn, deniedAction, budget) => explainer.explain(roleArn, deniedAction, budget),
    identity: opts.identity,
    endpoints: opts.endpoints,
    caller,
    sessionDurationSeconds: config.credentials.sessionDurationSeconds,
    refreshThresholdMs: config.credentials.refreshThresholdMs,
    externalIdFor: (arn) => config.credentials.externalIds[arn],
    maxEntries: config.credentials.cacheEntries,
    observeCache: (cache, outcome) => metrics?.cache.labels(cache, outcome).inc(),
  });

  const discovery = new RegistryDiscovery({
    config,
    caller,
    endpoints: opts.endpoints,
    tokens,
    requester: opts.ownNamespace,
    onIndex: (index) => opts.onIndex?.(index),
    logger,
    metrics: metrics && {
      discovered: (n) => metrics.discoveredInstances.set(n),
      error: (step, code) => metrics.discoveryErrors.labels(step, code).inc(),
      success: (at) => metrics.discoveryLastSuccess.set(at / 1000),
    },
  });

  const store: SecretStore = opts.cluster?.store ?? new MemorySecretStore();
  const leader = opts.cluster?.leader ?? new AlwaysLeader();
  const usage = opts.cluster?.usage ?? new MemoryUsageSource();
  const namespaces = opts.cluster?.namespaces;

  const manager = new PullSecretManager({
    store,
    tokens,
    refreshThresholdMs: config.credentials.refreshThresholdMs,
    logger,
    onWrite: (w) => metrics?.secretWrites.labels(w.op, w.outcome).inc(),
  });
  const refresher = new SecretRefresher({
    manager,
    leader,
    intervalMs: config.secrets.refreshIntervalMs,
    logger,
    onRefresh: (r) => {
      if (r.outcome === 'failed') metrics?.refreshFailures.inc();
    },
  });
  const collector = new SecretCollector({ store, usage, leader, marks: manager.usage, idleMs: config.secrets.idleTimeoutMs, logger });

  // The soonest managed token expiry, computed at scrape time from the cache, never stored.
  if (metrics) {
    metrics.soonestTokenExpiry = () => {
      let soonest = Number.POSITIVE_INFINITY;
      for (const s of store.list()) soonest = Math.min(soonest, manager.expiresAt(s) ?? soonest);
      return Number.isFinite(soonest) ? soonest : undefined;
    };
  }

  return {
    manager,
    tokens,
    discovery,
    explainer,
    namespaceLabels: namespaces ? namespaces.labels : () => undefined,
    async start() {
      await store.start();
      void namespaces?.start();
      leader.start();
      manager.start();
      refresher.start();
      collector.start();
      discovery.start();
      // Found once, in the background: it names the webhook in denials and in this log line.
      void explainer.principal({ deadline: Date.now() + 10_000 }).then((p) =>
        p ? logger.info({ principal: p.arn, trustAs: p.trustArn }, "the webhook's own Alibaba Cloud principal") : logger.warn({}, 'GetCallerIdentity failed: denials will not name the webhook\'s principal until it succeeds'),
      );
    },
    async stop() {
      discovery.stop();
      await Promise.allSettled([refresher.stop(), collector.stop(), manager.stop()]);
      await leader.stop();
      await Promise.allSettled([store.stop(), namespaces?.stop()]);
      caller.close();
    },
  };
}
