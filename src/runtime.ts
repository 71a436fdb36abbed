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
import type { CredentialHelper } from './acr/credential-helper.js';
import type { HelperSecretFailure } from './admission/handler.js';
import type { ServiceAccountLookup } from './admission/service-account-context.js';
import type { ConfigMapData } from './kube/config-map-watch.js';
import { CredentialHelperConfig, type ConfigMapSource } from './kube/credential-helper-config.js';
import type { ReflectorEvent } from './kube/reflector.js';
import { HELPER_EVENT_REASON, ServiceAccountSync, type ServiceAccountInfo, type ServiceAccountWriter } from './pull-secrets/service-account-sync.js';
import type { EventType } from './pull-secrets/store.js';
import { annotatedAccountKeys, sendCondition } from './admission/match-conditions.js';
import type { Desired } from './kube/webhook-conditions.js';

/** The cluster-side parts (src/kube/cluster.ts), loaded only in cluster mode: client-node alone costs ~70 MiB. */
export interface ClusterParts {
  store: SecretStore;
  leader: Leadership & { start(): unknown; stop(): Promise<void> };
  usage: UsageSource;
  namespaces: SyncedCache & { labels: NamespaceLabels };
  serviceAccounts: ServiceAccountWriter & {
    start(): Promise<void>;
    stop(): Promise<void>;
    onEvent(listener: (e: ReflectorEvent<ServiceAccountInfo>) => void): void;
  };
  /** Keeps the default webhook's generated matchCondition current (WEBHOOK_CONFIGURATION_NAME set). */
  webhookConditions?: { start(desired: () => Desired): void; stop(): void };
  /** The credential helper's ConfigMap, when the configuration names one. */
  helperConfigMap?: ConfigMapSource & {
    location: string;
    synced(): boolean;
    start(): Promise<void>;
    stop(): Promise<void>;
    recordEvent(cm: ConfigMapData, type: EventType, reason: string, message: string): Promise<void>;
  };
}

export interface Runtime {
  manager: PullSecretManager;
  tokens: AcrTokenSource;
  /** The registries served without annotations, kept current (configured domains, look-ups, discovery). */
  discovery: RegistryDiscovery;
  explainer: TrustExplainer;
  namespaceLabels: NamespaceLabels;
  /** ServiceAccounts from the cluster (undefined in standalone mode). */
  serviceAccount?: ServiceAccountLookup;
  /** The credential helper's configuration in force. */
  credentialHelper: () => CredentialHelper | undefined;
  /** A credential-helper Secret could not be prepared at admission: Event on the ServiceAccount, metric. */
  reportHelperFailure(f: HelperSecretFailure): void;
  /** Every cache a decision reads; ready once all have synced (src/readiness.ts). */
  caches: CacheSet;
  /** Every cache a decision reads has been filled. */
  ready(): boolean;
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
  /** The namespaces the webhook never serves (from the serving rules in force): the helper's scope ends there too. */
  isExcludedNamespace?: (namespace: string) => boolean;
  /** Called whenever the registry index changes (the caller rebuilds its serving rules). */
  onIndex?: (index: RegistryIndex) => void;
}

export function createRuntime(opts: RuntimeOptions): Runtime {
  const { config, metrics, logger } = opts;
  const helperConfigMap = opts.cluster?.helperConfigMap;
  let sync: ServiceAccountSync | undefined;
  const helperConfig = helperConfigMap
    ? new CredentialHelperConfig({
        source: helperConfigMap,
        location: helperConfigMap.location,
        defaultRegion: () => config.defaultRegion,
        isExcluded: (ns) => opts.isExcludedNamespace?.(ns) ?? false,
        logger,
        recordEvent: (cm, type, reason, message) => helperConfigMap.recordEvent(cm, type, reason, message),
        onInvalid: () => metrics?.helperFailures.labels('config').inc(),
        onChange: () => sync?.poke(),
      })
    : undefined;
  const credentialHelper = () => helperConfig?.current();
  // The helper's expiring-threshold and the configuration's refreshThreshold: the larger wins (renewing earlier
  // is always safe). The token caches use the same value, so a renewal never gets back a token already due.
  const refreshThresholdMs = () => Math.max(config.credentials.refreshThresholdMs, credentialHelper()?.expiringThresholdMs ?? 0);
  const caller = new CloudCaller({ observe: (api, code, s) => metrics?.cloudCalls.labels(api, code).observe(s) });
  const explainer = new TrustExplainer({ identity: opts.identity, caller, stsEndpoint: opts.endpoints.sts, ramEndpoint: opts.endpoints.ram ?? DEFAULT_RAM_ENDPOINT });
  const tokens = new AcrTokenSource({
    explainRefusal: (roleArn, deniedAction, budget) => explainer.explain(roleArn, deniedAction, budget),
    identity: opts.identity,
    endpoints: opts.endpoints,
    caller,
    sessionDurationSeconds: config.credentials.sessionDurationSeconds,
    refreshThresholdMs,
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
  const usage = opts.cluster?.usage ?? NO_REFERENCES;
  const namespaces = opts.cluster?.namespaces;

  const manager = new PullSecretManager({
    store,
    tokens,
    refreshThresholdMs,
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
  const accounts = opts.cluster?.serviceAccounts;
  if (accounts) {
    const accountSync = new ServiceAccountSync({
      accounts,
      manager,
      leader,
      coverage: credentialHelper,
      intervalMs: config.secrets.refreshIntervalMs,
      logger,
      onFailure: (stage) => metrics?.helperFailures.labels(stage).inc(),
    });
    sync = accountSync;
    // An edited ServiceAccount (its entry removed) is repaired within the debounce, not the interval.
    accounts.onEvent(() => accountSync.poke());
  }
  // Every cache a decision reads: /readyz is 503, and reviews wait, until each has synced once
  // (src/readiness.ts). A new cache joins with one entry here.
  const caches = new CacheSet(
    [
      { name: 'secrets', start: () => store.start(), stop: () => store.stop(), synced: () => store.synced() },
      ...(namespaces ? [namespaces] : []),
      ...(accounts ? [{ name: 'serviceaccounts', start: () => accounts.start(), stop: () => accounts.stop(), synced: () => accounts.synced() }] : []),
      ...(helperConfigMap
        ? [{ name: 'credential helper ConfigMap', start: () => helperConfigMap.start().then(() => helperConfig?.reload()), stop: () => helperConfigMap.stop(), synced: () => helperConfigMap.synced() }]
        : []),
    ],
    { onSynced: (ms) => logger.info({ ms }, 'ready: every cache has synced') },
  );
  // The default webhook's generated matchCondition, recomputed only when an input changed: the registry index
  // (configuration, look-ups, discovery), a ServiceAccount, the credential helper's configuration.
  let accountsVersion = 0;
  accounts?.onEvent(() => accountsVersion++);
  let memo: { index: RegistryIndex; helper: CredentialHelper | undefined; accounts: number; value: Desired } | undefined;
  const desiredCondition = (): Desired => {
    if (!caches.synced()) return 'unknown';
    const index = discovery.current;
    const helper = credentialHelper();
    if (memo && memo.index === index && memo.helper === helper && memo.accounts === accountsVersion) return memo.value;
    const value = sendCondition({
      registries: index,
      annotatedServiceAccounts: annotatedAccountKeys(accounts?.list() ?? []),
      ...(helper && helper.bindings.length > 0 ? { helper: helper.scope } : {}),
    });
    memo = { index, helper, accounts: accountsVersion, value };
    return value;
  };
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
    ...(accounts ? { serviceAccount: (ns: string, name: string) => accounts.get(ns, name) } : {}),
    credentialHelper,
    reportHelperFailure(f) {
      metrics?.helperFailures.labels('secret').inc();
      logger.warn({ namespace: f.namespace, serviceAccount: f.serviceAccount, secret: f.secret, err: f.error }, 'credential helper: pull Secret not ready at admission');
      void accounts?.recordEvent(
        { namespace: f.namespace, name: f.serviceAccount },
        'Warning',
        HELPER_EVENT_REASON,
        `acr-pull-webhook (acr-configuration) could not prepare the pull Secret ${f.secret} at admission: ${f.error}; the reference is in place and the webhook keeps trying`,
      );
    },
    caches,
    ready: () => caches.synced(),
    start() {
      caches.start();
      leader.start();
      manager.start();
      refresher.start();
      sync?.start();
      collector.start();
      discovery.start();
      opts.cluster?.webhookConditions?.start(desiredCondition);
      // Found once, in the background: it names the webhook in denials and in this log line.
      void explainer.principal({ deadline: Date.now() + 10_000 }).then((p) =>
        p ? logger.info({ principal: p.arn, trustAs: p.trustArn }, "the webhook's own Alibaba Cloud principal") : logger.warn({}, 'GetCallerIdentity failed: denials will not name the webhook\'s principal until it succeeds'),
      );
    },
    async stop() {
      discovery.stop();
      opts.cluster?.webhookConditions?.stop();
      await Promise.allSettled([refresher.stop(), collector.stop(), manager.stop(), sync?.stop()]);
      await leader.stop();
      await caches.stop();
      caller.close();
    },
  };
}
