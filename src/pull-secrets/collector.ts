// Deletes managed Secrets nothing has used for an idle period. A Secret referenced by a Pod or an ImageCache is
// never deleted, nor one created or used (admitted, seen referenced) within the idle period: a Pod may have
// been admitted but not yet persisted. Runs only on the leader; deletes carry a resourceVersion precondition.
import { LAST_USED_AT_ANNOTATION, parseTime } from './docker-config.js';
import type { Leadership } from './leadership.js';
import { silentLogger, type Logger } from './logger.js';
import { ConflictError, type SecretObject, type SecretStore } from './store.js';
import type { UsageMarks } from './usage-marks.js';
import { describeError, keyOf } from './util.js';
import { ownString } from '../util/own-string.js';

/** Which Secrets are referenced right now, as `namespace/name` keys. */
export interface UsageSource {
  /**
   * Secrets referenced by live objects (Pods' `spec.imagePullSecrets`, ImageCaches' `spec.imagePullSecrets`).
   * With `namespaces`, only Pods in those namespaces need be looked at. Rejects when usage cannot be known:
   * the collector then deletes nothing.
   */
  referenced(namespaces?: readonly string[]): Promise<Set<string>>;
}

/** Usage recorded by the process itself (standalone mode: what the webhook admitted and still knows about). */
export class MemoryUsageSource implements UsageSource {
  private readonly refs = new Map<string, number>();

  /** An object referencing the Secret exists (counted: several objects may reference one Secret). */
  add(namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    const n = this.refs.get(key);
    this.refs.set(n === undefined ? ownString(key) : key, (n ?? 0) + 1);
  }

  /** One referencing object is gone. */
  remove(namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    const n = (this.refs.get(key) ?? 0) - 1;
    if (n > 0) this.refs.set(key, n);
    else this.refs.delete(key);
  }

  async referenced(): Promise<Set<string>> {
    return new Set(this.refs.keys());
  }
}

export interface CollectResult {
  /** `namespace/name` of the Secrets deleted. */
  deleted: string[];
  /** Managed Secrets referenced right now. */
  inUse: number;
  /** Managed Secrets kept although unreferenced (used or created recently). */
  idleKept: number;
  /** Why the pass did nothing. */
  skipped?: 'not-leader' | 'not-synced' | 'usage-unavailable';
}

export interface SecretCollectorOptions {
  store: SecretStore;
  usage: UsageSource;
  leader: Leadership;
  /** Usage recorded by admissions (shared with the manager); references seen are recorded into it too. */
  marks?: UsageMarks;
  /** Unreferenced and unused for this long means deleted (default 24 h). */
  idleMs?: number;
  /** How often `start()` runs a pass (default 10 minutes). */
  intervalMs?: number;
  now?: () => number;
  logger?: Logger;
  /** Metrics hook, called once per pass. */
  onCollect?: (result: CollectResult) => void;
}

export const DEFAULT_IDLE_MS = 24 * 60 * 60_000;

export class SecretCollector {
  private readonly store: SecretStore;
  private readonly usage: UsageSource;
  private readonly leader: Leadership;
  private readonly marks: UsageMarks | undefined;
  private readonly idleMs: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly onCollect: ((r: CollectResult) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CollectResult> | undefined;

  constructor(opts: SecretCollectorOptions) {
    this.store = opts.store;
    this.usage = opts.usage;
    this.leader = opts.leader;
    this.marks = opts.marks;
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.intervalMs = opts.intervalMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.onCollect = opts.onCollect;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.runOnce().catch((err: unknown) => this.logger.error({ err: describeError(err) }, 'pull Secret collection failed'));
    }, this.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  async runOnce(): Promise<CollectResult> {
    if (this.running) return this.running;
    this.running = this.pass()
      .then((r) => {
        this.onCollect?.(r);
        return r;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Latest known use of an unreferenced Secret: last-used annotation, creation, or a recorded use. */
  private lastUse(s: SecretObject): number {
    const { namespace, name } = s.metadata;
    return Math.max(
      parseTime(s.metadata.annotations?.[LAST_USED_AT_ANNOTATION]) ?? 0,
      // No creation time known: treat it as new, never as old.
      parseTime(s.metadata.creationTimestamp) ?? this.now(),
      this.marks?.get(namespace, name) ?? 0,
    );
  }

  private async pass(): Promise<CollectResult> {
    const result: CollectResult = { deleted: [], inUse: 0, idleKept: 0 };
    if (!this.leader.isLeader()) return { ...result, skipped: 'not-leader' };
    if (!this.store.synced()) return { ...result, skipped: 'not-synced' };

    const secrets = this.store.list();
    if (secrets.length === 0) return result;
    let refs: Set<string>;
    try {
      refs = await this.usage.referenced([...new Set(secrets.map((s) => s.metadata.namespace))]);
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'cannot tell which pull Secrets are in use; deleting none');
      return { ...result, skipped: 'usage-unavailable' };
    }

    const now = this.now();
    const candidates: SecretObject[] = [];
    for (const s of secrets) {
      const { namespace, name } = s.metadata;
      if (refs.has(keyOf(namespace, name))) {
        result.inUse++;
        this.marks?.mark(namespace, name, now);
      } else if (now - this.lastUse(s) > this.idleMs) {
        candidates.push(s);
      } else {
        result.idleKept++;
      }
    }
    if (candidates.length === 0) return result;

    // Look again, narrowly, right before deleting: a Pod may have appeared since the first listing.
    let again: Set<string>;
    try {
      again = await this.usage.referenced([...new Set(candidates.map((s) => s.metadata.namespace))]);
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'cannot tell which pull Secrets are in use; deleting none');
      return { ...result, skipped: 'usage-unavailable' };
    }

    for (const s of candidates) {
      const { namespace, name } = s.metadata;
      if (!this.leader.isLeader()) break;
      const current = this.store.get(namespace, name);
      if (again.has(keyOf(namespace, name)) || !current || this.now() - this.lastUse(current) <= this.idleMs) {
        result.idleKept++;
        continue;
      }
      try {
        // Precondition on the version judged idle: a Secret renewed or touched since is kept for this pass.
        await this.store.delete(namespace, name, current.metadata.resourceVersion);
        this.marks?.forget(namespace, name);
        result.deleted.push(keyOf(namespace, name));
        this.logger.info({ namespace, name, idleMs: this.idleMs }, 'deleted idle pull Secret');
      } catch (err) {
        result.idleKept++;
        if (!(err instanceof ConflictError)) {
          this.logger.warn({ namespace, name, err: describeError(err) }, 'deleting idle pull Secret failed');
        }
      }
    }
    return result;
  }
}
