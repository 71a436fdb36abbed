// Renews every managed Secret before its tokens expire, so Pods that restart or move hours later still pull.
// Runs only while this replica is the leader. Failures back off per Secret, are logged without secrets,
// counted through `onRefresh`, and surface as Warning events on the Secret.
import type { PullSecretSpec } from '../acr/model.js';
import type { Leadership } from './leadership.js';
import { silentLogger, type Logger } from './logger.js';
import type { PullSecretManager } from './manager.js';
import type { SecretObject, SecretStore } from './store.js';
import { backoffDelay, describeError, keyOf } from './util.js';

export type RefreshOutcome = 'renewed' | 'failed' | 'invalid';

export interface RefreshResult {
  namespace: string;
  name: string;
  outcome: RefreshOutcome;
  /** Consecutive failures so far (0 after a success). */
  failures: number;
  /** Safe description of the failure. */
  error?: string;
  /** When a failed Secret will be tried again (ms since epoch). */
  retryAt?: number;
}

export interface SecretRefresherOptions {
  /** Does the writing (shares single flight and conflict handling with admissions). */
  manager: PullSecretManager;
  leader: Leadership;
  /** How often the loop looks for Secrets due (default 30 s). */
  intervalMs?: number;
  /** Budget of one renewal (default 30 s). */
  timeoutMs?: number;
  /** First retry delay after a failure (default 10 s), doubled per failure up to `backoffMaxMs` (default 5 min). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Renewals in parallel (default 4). */
  concurrency?: number;
  now?: () => number;
  logger?: Logger;
  /** Metrics hook, called once per renewal attempt. */
  onRefresh?: (result: RefreshResult) => void;
}

interface RetryState {
  failures: number;
  retryAt: number;
}

export class SecretRefresher {
  private readonly manager: PullSecretManager;
  private readonly store: SecretStore;
  private readonly leader: Leadership;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly onRefresh: ((r: RefreshResult) => void) | undefined;
  private readonly retry = new Map<string, RetryState>();
  private readonly reportedInvalid = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RefreshResult[]> | undefined;
  /** Totals since start, for tests and debugging. */
  readonly stats = { renewed: 0, failed: 0, invalid: 0 };

  constructor(opts: SecretRefresherOptions) {
    this.manager = opts.manager;
    this.store = opts.manager.store;
    this.leader = opts.leader;
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.backoff = { initialMs: opts.backoffInitialMs ?? 10_000, maxMs: opts.backoffMaxMs ?? 5 * 60_000 };
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.onRefresh = opts.onRefresh;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Consecutive failures and next retry time of one Secret, if it is backing off. */
  retryState(namespace: string, name: string): Readonly<RetryState> | undefined {
    return this.retry.get(keyOf(namespace, name));
  }

  /** One pass: renews every due Secret (skips everything when not leader or the cache is not synced). */
  async runOnce(): Promise<RefreshResult[]> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      await this.runOnce();
    } catch (err) {
      this.logger.error({ err: describeError(err) }, 'pull Secret refresh pass failed');
    }
  }

  private async pass(): Promise<RefreshResult[]> {
    if (!this.leader.isLeader() || !this.store.synced()) return [];
    const now = this.now();
    const secrets = this.store.list();
    const present = new Set(secrets.map((s) => keyOf(s.metadata.namespace, s.metadata.name)));
    for (const key of this.retry.keys()) if (!present.has(key)) this.retry.delete(key);
    for (const key of this.reportedInvalid.keys()) if (!present.has(key)) this.reportedInvalid.delete(key);

    const due: SecretObject[] = [];
    for (const s of secrets) {
      const key = keyOf(s.metadata.namespace, s.metadata.name);
      if (!this.manager.needsRenewal(s, now)) {
        this.retry.delete(key);
        continue;
      }
      const r = this.retry.get(key);
      if (r && r.retryAt > now) continue;
      due.push(s);
    }

    const results: RefreshResult[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const s = due[next++];
        if (!s) break;
        if (!this.leader.isLeader()) return; // lost leadership mid-pass: the new leader takes over
        const r = await this.refreshOne(s);
        if (r) results.push(r);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, due.length) }, worker));
    return results;
  }

  private async refreshOne(secret: SecretObject): Promise<RefreshResult | undefined> {
    const { namespace, name } = secret.metadata;
    const key = keyOf(namespace, name);
    const d = this.manager.decode(secret);
    if (!d) {
      // Managed label but no readable binding/expiry: nothing to renew it with. Report once per version.
      const version = secret.metadata.resourceVersion ?? '';
      if (this.reportedInvalid.get(key) === version) return undefined;
      this.reportedInvalid.set(key, version);
      this.stats.invalid++;
      const result: RefreshResult = { namespace, name, outcome: 'invalid', failures: 0, error: 'binding or expiry annotation missing or malformed' };
      this.logger.warn({ namespace, name }, 'managed pull Secret cannot be renewed: binding or expiry annotation missing or malformed');
      await this.store.recordEvent(secret, 'Warning', 'RefreshSkipped', 'acr-pull-webhook cannot renew this Secret: its binding or expiry annotation is missing or malformed');
      this.onRefresh?.(result);
      return result;
    }
    const spec: PullSecretSpec = { namespace, name, requester: d.requester, binding: d.binding };
    try {
      await this.manager.renew(spec, { deadline: Date.now() + this.timeoutMs });
      const hadFailures = this.retry.get(key)?.failures ?? 0;
      this.retry.delete(key);
      this.stats.renewed++;
      const result: RefreshResult = { namespace, name, outcome: 'renewed', failures: 0 };
      this.logger.info({ namespace, name, previousFailures: hadFailures }, 'pull Secret renewed');
      this.onRefresh?.(result);
      return result;
    } catch (err) {
      const failures = (this.retry.get(key)?.failures ?? 0) + 1;
      const delay = backoffDelay(failures, this.backoff);
      const retryAt = this.now() + delay;
      this.retry.set(key, { failures, retryAt });
      this.stats.failed++;
      const error = describeError(err);
      const result: RefreshResult = { namespace, name, outcome: 'failed', failures, error, retryAt };
      this.logger.warn({ namespace, name, failures, retryInMs: delay, err: error }, 'pull Secret renewal failed');
      const expires = new Date(d.expiresAt).toISOString();
      await this.store.recordEvent(
        secret,
        'Warning',
        'RefreshFailed',
        `acr-pull-webhook could not renew the registry credentials (attempt ${failures}): ${error}; ` +
          `retrying in ${Math.round(delay / 1000)}s; current credentials expire at ${expires}`,
      );
      this.onRefresh?.(result);
      return result;
    }
  }
}
