// What the ACK credential helper does, from the leader: every ServiceAccount its ConfigMap names, in every
// namespace it watches, lists the namespace's pull Secrets in `imagePullSecrets`, and those Secrets exist and are
// fresh. A pass runs on an interval and soon after a ServiceAccount changes (someone removed the entry: it is put
// back). New ServiceAccounts are served earlier, at admission (src/admission/service-accounts.ts); this loop
// covers those that existed before, and repairs. Failures back off per ServiceAccount and are reported as a
// Warning Event on it plus a metric: what the helper's `notify-email` was for.
import type { PullSecretSpec } from '../acr/model.js';
import type { Leadership } from './leadership.js';
import { silentLogger, type Logger } from './logger.js';
import type { PullSecretManager } from './manager.js';
import type { EventType } from './store.js';
import { backoffDelay, describeError, keyOf } from './util.js';

/** What the webhook keeps of a ServiceAccount. */
export interface ServiceAccountInfo {
  namespace: string;
  name: string;
  resourceVersion?: string;
  uid?: string;
  /** Its `k8s.aliyun.com/` annotations; undefined when it has none. */
  vendorAnnotations?: Record<string, string>;
  /** Names listed in `imagePullSecrets`, in order; undefined when the field is absent. */
  imagePullSecrets?: string[];
}

/** The Secrets the credential helper's configuration gives each covered ServiceAccount. */
export interface HelperCoverage {
  /** True when ServiceAccount `name` of `namespace` gets the helper's Secrets (namespace exclusions included). */
  covers(namespace: string, name: string): boolean;
  /** One Secret per credential chain of the configuration, in `namespace`. */
  specs(namespace: string): PullSecretSpec[];
}

export interface ServiceAccountWriter {
  list(): Iterable<ServiceAccountInfo>;
  get(namespace: string, name: string): ServiceAccountInfo | undefined;
  synced(): boolean;
  /** Appends references to the version given; rejects when it changed meanwhile. */
  addPullSecrets(sa: ServiceAccountInfo, names: readonly string[]): Promise<void>;
  /** Best effort: never rejects. */
  recordEvent(sa: Pick<ServiceAccountInfo, 'namespace' | 'name' | 'uid'>, type: EventType, reason: string, message: string): Promise<void>;
}

export type HelperFailureStage = 'secret' | 'patch';

export interface ServiceAccountSyncOptions {
  accounts: ServiceAccountWriter;
  manager: PullSecretManager;
  leader: Leadership;
  /** The coverage in force now (the ConfigMap can change at any time); undefined when there is none. */
  coverage: () => HelperCoverage | undefined;
  /** Full passes (default 30 s); changes of single ServiceAccounts are handled within `debounceMs` (default 200 ms). */
  intervalMs?: number;
  debounceMs?: number;
  /** Budget of one Secret write (default 30 s). */
  timeoutMs?: number;
  /** Retry delay after a failure (default 10 s doubling to 5 min). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** ServiceAccounts handled in parallel (default 4). */
  concurrency?: number;
  now?: () => number;
  logger?: Logger;
  /** Metrics hook, once per failure. */
  onFailure?: (stage: HelperFailureStage) => void;
}

export interface SyncResult {
  namespace: string;
  name: string;
  outcome: 'patched' | 'failed';
  stage?: HelperFailureStage;
  error?: string;
}

export const HELPER_EVENT_REASON = 'PullSecretNotReady';

export class ServiceAccountSync {
  private readonly o: Required<Pick<ServiceAccountSyncOptions, 'intervalMs' | 'debounceMs' | 'timeoutMs' | 'backoffInitialMs' | 'backoffMaxMs' | 'concurrency'>> & ServiceAccountSyncOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly retry = new Map<string, { failures: number; retryAt: number }>();
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<SyncResult[]> | undefined;
  private again = false;
  readonly stats = { passes: 0, patched: 0, failed: 0 };

  constructor(opts: ServiceAccountSyncOptions) {
    this.o = { intervalMs: 30_000, debounceMs: 200, timeoutMs: 30_000, backoffInitialMs: 10_000, backoffMaxMs: 5 * 60_000, concurrency: 4, ...opts };
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    this.timer = undefined;
    this.debounce = undefined;
    await this.running;
  }

  /**
   * Something changed (a ServiceAccount, the ConfigMap, a relist): a pass soon. A pass over every ServiceAccount
   * is a walk of the cache (a few microseconds each when all is in place), so changes are not tracked one by one.
   */
  poke(): void {
    if (!this.timer || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.tick();
    }, this.o.debounceMs);
    this.debounce.unref?.();
  }

  private async tick(): Promise<void> {
    try {
      await this.runOnce();
    } catch (err) {
      this.logger.error({ err: describeError(err) }, 'ServiceAccount pass failed');
    }
  }

  /** One pass over every covered ServiceAccount (nothing unless leader, synced and configured). */
  async runOnce(): Promise<SyncResult[]> {
    if (this.running) {
      // A change during a pass is looked at by one more pass right after it.
      this.again = true;
      return this.running;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.tick();
      }
    });
    return this.running;
  }

  private async pass(): Promise<SyncResult[]> {
    const coverage = this.o.coverage();
    const { accounts, leader, manager } = this.o;
    if (!coverage || !leader.isLeader() || !accounts.synced() || !manager.store.synced()) return [];
    this.stats.passes++;
    const now = this.now();
    const due: ServiceAccountInfo[] = [];
    const seen = new Set<string>();
    for (const sa of accounts.list()) {
      if (!coverage.covers(sa.namespace, sa.name)) continue;
      const key = keyOf(sa.namespace, sa.name);
      seen.add(key);
      const r = this.retry.get(key);
      if (r && r.retryAt > now) continue;
      if (this.inPlace(sa, coverage.specs(sa.namespace))) {
        this.retry.delete(key);
        continue;
      }
      due.push(sa);
    }
    for (const key of this.retry.keys()) if (!seen.has(key)) this.retry.delete(key);

    const results: SyncResult[] = [];
    let next = 0;
    // One write per namespace at a time: the ServiceAccounts of a namespace share its Secrets.
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const sa = due[next++]!;
        if (!leader.isLeader()) return;
        results.push(await this.syncOne(sa, coverage.specs(sa.namespace)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, due.length) }, worker));
    return results;
  }

  /** Listed and fresh: nothing to do (no API call, no write). */
  private inPlace(sa: ServiceAccountInfo, specs: PullSecretSpec[]): boolean {
    const listed = new Set(sa.imagePullSecrets ?? []);
    const store = this.o.manager.store;
    return specs.every((s) => {
      if (!listed.has(s.name)) return false;
      const cur = store.get(s.namespace, s.name);
      return cur !== undefined && this.o.manager.isFresh(cur, s);
    });
  }

  private async syncOne(sa: ServiceAccountInfo, specs: PullSecretSpec[]): Promise<SyncResult> {
    const { namespace, name } = sa;
    const key = keyOf(namespace, name);
    let stage: HelperFailureStage = 'secret';
    try {
      // The Secrets first: a reference to a Secret that does not exist yet would only move the failure to the kubelet.
      for (const spec of specs) await this.o.manager.renew(spec, { deadline: Date.now() + this.o.timeoutMs });
      stage = 'patch';
      // The cache may have moved on while the Secrets were written: patch the version it holds now.
      const current = this.o.accounts.get(namespace, name) ?? sa;
      const listed = new Set(current.imagePullSecrets ?? []);
      const missing = specs.map((s) => s.name).filter((n) => !listed.has(n));
      if (missing.length > 0) {
        await this.o.accounts.addPullSecrets(current, missing);
        this.logger.info({ namespace, name, secrets: missing }, 'ServiceAccount given the credential helper\'s pull Secrets');
      }
      this.retry.delete(key);
      this.stats.patched++;
      return { namespace, name, outcome: 'patched' };
    } catch (err) {
      const failures = (this.retry.get(key)?.failures ?? 0) + 1;
      const delay = backoffDelay(failures, { initialMs: this.o.backoffInitialMs, maxMs: this.o.backoffMaxMs });
      this.retry.set(key, { failures, retryAt: this.now() + delay });
      this.stats.failed++;
      const error = describeError(err);
      this.o.onFailure?.(stage);
      this.logger.warn({ namespace, name, stage, failures, err: error }, 'credential helper: ServiceAccount not served');
      const what = stage === 'secret' ? `could not prepare the pull Secret ${specs.map((s) => s.name).join(', ')}` : 'could not add its pull Secrets to imagePullSecrets';
      await this.o.accounts.recordEvent(
        sa,
        'Warning',
        HELPER_EVENT_REASON,
        `acr-pull-webhook (acr-configuration) ${what} (attempt ${failures}): ${error}; retrying in ${Math.round(delay / 1000)}s`,
      );
      return { namespace, name, outcome: 'failed', stage, error };
    }
  }
}
