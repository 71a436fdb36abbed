// Assembles the long-lived parts for one mode: where Secrets live (the API or memory), who refreshes and
// collects them (Lease leader or the only process), and the credential chain behind them.
import type { WebhookConfig } from './config/config.js';
import { CloudCaller } from './cloud/rpc.js';
import type { Endpoints } from './cloud/endpoints.js';
import type { Identity } from './cloud/identity.js';
import { AcrTokenSource } from './cloud/token-source.js';
import type { Metrics } from './metrics.js';
import { NO_REFERENCES, SecretCollector } from './pull-secrets/collector.js';
import { AlwaysLeader, type Leadership } from './pull-secrets/leadership.js';
import type { Logger } from './pull-secrets/logger.js';
import { PullSecretManager } from './pull-secrets/manager.js';
import { MemorySecretStore } from './pull-secrets/memory-store.js';
import { SecretRefresher } from './pull-secrets/refresher.js';
import type { SecretStore } from './pull-secrets/store.js';
import type { NamespaceLabels } from './admission/plan.js';
import type { UsageSource } from './pull-secrets/collector.js';
import { CacheSet, type SyncedCache } from './readiness.js';

/** The cluster-side parts (src/kube/cluster.ts), loaded only in cluster mode: client-node alone costs ~70 MiB. */
export interface ClusterParts {
  store: SecretStore;
  leader: Leadership & { start(): unknown; stop(): Promise<void> };
  usage: UsageSource;
  namespaces: SyncedCache & { labels: NamespaceLabels };
}

export interface Runtime {
  manager: PullSecretManager;
  tokens: AcrTokenSource;
  namespaceLabels: NamespaceLabels;
  /** Every cache a decision reads; ready once all have synced (src/readiness.ts). */
  caches: CacheSet;
  /** Starts everything without waiting for the caches (they retry on their own; see `caches`). */
  start(): void;
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
}

export function createRuntime(opts: RuntimeOptions): Runtime {
  const { config, metrics, logger } = opts;
  const caller = new CloudCaller({ observe: (api, code, s) => metrics?.cloudCalls.labels(api, code).observe(s) });
  const tokens = new AcrTokenSource({
    identity: opts.identity,
    endpoints: opts.endpoints,
    caller,
    sessionDurationSeconds: config.credentials.sessionDurationSeconds,
    refreshThresholdMs: config.credentials.refreshThresholdMs,
    externalIdFor: (arn) => config.credentials.externalIds[arn],
    maxEntries: config.credentials.cacheEntries,
    observeCache: (cache, outcome) => metrics?.cache.labels(cache, outcome).inc(),
  });

  const store: SecretStore = opts.cluster?.store ?? new MemorySecretStore();
  const leader = opts.cluster?.leader ?? new AlwaysLeader();
  const usage = opts.cluster?.usage ?? NO_REFERENCES;
  const namespaces = opts.cluster?.namespaces;

  // Every cache a decision reads: /readyz is 503, and reviews wait, until each has synced once. A new cache
  // (ServiceAccounts, ConfigMaps, ...) joins with one entry here.
  const caches = new CacheSet(
    [
      { name: 'secrets', start: () => store.start(), stop: () => store.stop(), synced: () => store.synced() },
      ...(namespaces ? [namespaces] : []),
    ],
    { onSynced: (ms) => logger.info({ ms }, 'ready: every cache has synced') },
  );

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
    namespaceLabels: namespaces ? namespaces.labels : () => undefined,
    caches,
    start() {
      caches.start();
      leader.start();
      manager.start();
      refresher.start();
      collector.start();
    },
    async stop() {
      await Promise.allSettled([refresher.stop(), collector.stop(), manager.stop()]);
      await leader.stop();
      await caches.stop();
      caller.close();
    },
  };
}
