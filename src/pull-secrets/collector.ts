// Deletes managed Secrets nothing has used for an idle period. A Secret referenced by a Pod or an ImageCache is
// never deleted, nor one created or used (admitted, seen referenced) within the idle period: a Pod may have
// been admitted but not yet persisted. Runs only on the leader; deletes carry a resourceVersion precondition.
import { LAST_USED_AT_ANNOTATION, parseTime } from './docker-config.js';
import type { Leadership } from './leadership.js';
import { silentLogger, type Logger } from './logger.js';
import { ConflictError, type SecretObject, type SecretStore } from './store.js';
import type { UsageMarks } from './usage-marks.js';
import { describeError, keyOf } from './util.js';

/** Which Secrets are referenced right now, as `namespace/name` keys. */
export interface UsageSource {
  /**
   * Secrets referenced by live objects (Pods' `spec.imagePullSecrets`, ImageCaches' `spec.imagePullSecrets`).
   * With `namespaces`, only Pods in those namespaces need be looked at. Rejects when usage cannot be known:
   * the collector then deletes nothing.
   */
  referenced(namespaces?: readonly string[]): Promise<Set<string>>;
}

/**
 * Standalone mode: there is no API to list Pods, so no Secret counts as referenced, and a Secret lives while
 * admissions use it (the usage marks): it is deleted `idleTimeout` after the last admission that needed it.
 */
export const NO_REFERENCES: UsageSource = { referenced: async () => new Set() };

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
  /** How often `start()` runs a pass (default `collectIntervalMs(idleMs)`). */
  intervalMs?: number;
  /** The first pass after `start()` as leader, or after becoming leader (default 10 s, at most `intervalMs`). */
  firstDelayMs?: number;
  now?: () => number;
  logger?: Logger;
  /** Metrics hook, called once per pass. */
  onCollect?: (result: CollectResult) => void;
}

export const DEFAULT_IDLE_MS = 24 * 60 * 60_000;

/**
 * How often the leader looks for idle Secrets: half the idle timeout, between 30 s and 10 minutes. An unused
 * Secret is then deleted at most `idleMs + interval` after its last use (plus the first delay after a leader
 * change), and a short idle timeout is honoured without listing Pods more than twice a minute.
 */
export function collectIntervalMs(idleMs: number): number {
  return Math.min(10 * 60_000, Math.max(30_000, Math.floor(idleMs / 2)));
}

export class SecretCollector {
  private readonly store: SecretStore;
  private readonly usage: UsageSource;
  private readonly leader: Leadership;
  private readonly marks: UsageMarks | undefined;
  private readonly idleMs: number;
  readonly intervalMs: number;
  readonly firstDelayMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly onCollect: ((r: CollectResult) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private started = false;
  private running: Promise<CollectResult> | undefined;

  constructor(opts: SecretCollectorOptions) {
    this.store = opts.store;
    this.usage = opts.usage;
    this.leader = opts.leader;
    this.marks = opts.marks;
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.intervalMs = opts.intervalMs ?? collectIntervalMs(this.idleMs);
    this.firstDelayMs = Math.min(opts.firstDelayMs ?? 10_000, this.intervalMs);
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.onCollect = opts.onCollect;
  }

  /**
   * Passes every `intervalMs`; the first one `firstDelayMs` after start (when leading) or after this replica
   * becomes leader, so a restarted or new leader collects soon rather than a full interval later.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.leader.subscribe?.((leading) => {
      if (leading && this.started) this.schedule(this.firstDelayMs);
    });
    this.schedule(this.leader.isLeader() ? this.firstDelayMs : this.intervalMs);
  }

  async stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Arms the timer `ms` from now, unless a pass is already due sooner. */
  private schedule(ms: number): void {
    const at = Date.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    let result: CollectResult | undefined;
    try {
      result = await this.runOnce();
    } catch (err) {
      this.logger.error({ err: describeError(err) }, 'pull Secret collection failed');
    }
    if (!this.started) return;
    // Leading but the cache has not synced yet: try again soon instead of a full interval later.
    this.schedule(result?.skipped === 'not-synced' ? this.firstDelayMs : this.intervalMs);
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
