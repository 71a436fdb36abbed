// Keeps the pull Secrets in place for admissions. Hot path: a Secret in the local cache with the same binding
// and tokens valid beyond the refresh threshold costs nothing but a Map lookup (no API call, no write).
// Otherwise one write per Secret at a time (single flight), with optimistic concurrency and bounded 409 retries.
import type { Binding, PullSecretSpec } from '../acr/model.js';
import {
  BINDING_ANNOTATION,
  bindingAnnotation,
  buildPullSecret,
  decodePullSecret,
  isManaged,
  LAST_USED_AT_ANNOTATION,
  parseBinding,
  parseTime,
  refreshDue,
  sameBinding,
  withLastUsed,
  type DecodedPullSecret,
} from './docker-config.js';
import { silentLogger, type Logger } from './logger.js';
import { ConflictError, NotFoundError, type SecretObject, type SecretStore } from './store.js';
import { DenialError, type Budget, type EnsurePath, type PullSecretProvider, type TokenSource } from './types.js';
import { UsageMarks } from './usage-marks.js';
import { Progress, type Wait } from './progress.js';
import { describeError, keyOf, withDeadline } from './util.js';

export const DEFAULT_REFRESH_THRESHOLD_MS = 15 * 60_000;

export interface SecretWriteResult {
  namespace: string;
  name: string;
  op: 'create' | 'replace' | 'touch';
  outcome: 'ok' | 'conflict' | 'error';
}

export interface PullSecretManagerOptions {
  store: SecretStore;
  tokens: TokenSource;
  /**
   * Tokens expiring within this are renewed (default 15 minutes). A function when it can change at run time
   * (the credential helper's `expiring-threshold`); it must never exceed the token source's.
   */
  refreshThresholdMs?: number | (() => number);
  /** Clock for token expiry and usage (default Date.now). Budget deadlines are always wall-clock (Date.now). */
  now?: () => number;
  logger?: Logger;
  /** Shared usage record (the collector reads it); a new one by default. */
  usage?: UsageMarks;
  /** Re-reads and retries after a 409 at most this many times (default 5). */
  maxConflictRetries?: number;
  /** How often `start()` persists usage marks into the last-used annotation (default 5 minutes). */
  usageFlushIntervalMs?: number;
  /** The annotation is rewritten only when it lags the latest use by more than this (default 1 hour). */
  usageTouchAfterMs?: number;
  /** Metrics hook, called after every write attempt. */
  onWrite?: (result: SecretWriteResult) => void;
}

/**
 * What the hot path needs of a managed Secret, memoized per object: its expiry and the binding annotation as
 * written (a reference into the Secret, not a copy). The parsed binding is not kept: for 10,000 Secrets it
 * would cost several MiB, and only a renewal needs it.
 */
interface Freshness {
  valid: boolean;
  expiresAt: number;
  refreshedAt: number | undefined;
  bindingText: string;
  /** The annotation's binding, parsed only if its text ever differs from a spec's. */
  parsed?: Binding | undefined;
}

/** The annotation text the webhook writes for a binding (memoized per binding object, which the plan memo shares). */
const bindingTexts = new WeakMap<Binding, string>();
function bindingText(b: Binding): string {
  let text = bindingTexts.get(b);
  if (text === undefined) {
    text = bindingAnnotation(b);
    bindingTexts.set(b, text);
  }
  return text;
}

export class PullSecretManager implements PullSecretProvider {
  readonly store: SecretStore;
  readonly usage: UsageMarks;
  private readonly threshold: () => number;
  private readonly tokens: TokenSource;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly maxConflictRetries: number;
  private readonly usageFlushIntervalMs: number;
  private readonly usageTouchAfterMs: number;
  private readonly onWrite: ((r: SecretWriteResult) => void) | undefined;
  private readonly inflight = new Map<string, { promise: Promise<void>; deadline: number; progress: Progress }>();
  private readonly freshness = new WeakMap<SecretObject, Freshness>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<number> | undefined;

  constructor(opts: PullSecretManagerOptions) {
    this.store = opts.store;
    this.tokens = opts.tokens;
    const t = opts.refreshThresholdMs ?? DEFAULT_REFRESH_THRESHOLD_MS;
    this.threshold = typeof t === 'function' ? t : () => t;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.usage = opts.usage ?? new UsageMarks();
    this.maxConflictRetries = opts.maxConflictRetries ?? 5;
    this.usageFlushIntervalMs = opts.usageFlushIntervalMs ?? 5 * 60_000;
    this.usageTouchAfterMs = opts.usageTouchAfterMs ?? 60 * 60_000;
    this.onWrite = opts.onWrite;
  }

  get refreshThresholdMs(): number {
    return this.threshold();
  }

  ready(): boolean {
    return this.store.synced();
  }

  async ensure(spec: PullSecretSpec, budget: Budget): Promise<EnsurePath> {
    if (this.fresh(spec)) return 'cached';
    await this.renew(spec, budget);
    return 'cold';
  }

  /** Records the use and tells whether the cached Secret already serves the spec: no API call, no write. */
  fresh(spec: PullSecretSpec): boolean {
    const now = this.now();
    this.usage.mark(spec.namespace, spec.name, now);
    const cur = this.store.get(spec.namespace, spec.name);
    return cur !== undefined && this.isFresh(cur, spec, now);
  }

  /**
   * Makes the Secret fresh (creating or replacing it) unless it already is; shares one write with every
   * concurrent caller for the same Secret. Used by admissions on a miss and by the refresher.
   */
  async renew(spec: PullSecretSpec, budget: Budget): Promise<void> {
    const key = keyOf(spec.namespace, spec.name);
    for (;;) {
      let flight = this.inflight.get(key);
      const joined = !!flight;
      if (!flight) {
        // The shared write runs to the first caller's deadline but not its abort signal: a later caller may still
        // want it. It is bounded by that deadline, so a request that never answers cannot hold the slot. Its
        // steps report to a record of its own, which every caller waiting on it follows.
        const progress = new Progress();
        const shared: Budget = { deadline: budget.deadline, progress };
        const promise = withDeadline(this.write(spec, shared), shared, () => progress.timedOut(`writing pull Secret ${spec.namespace}/${spec.name}`)).finally(() =>
          this.inflight.delete(key),
        );
        flight = { promise, deadline: shared.deadline, progress };
        this.inflight.set(key, flight);
      }
      // No race against this caller's own deadline here: its owner (the admission handler) answers in time and
      // names the step this write was waiting on, through the record followed here.
      const unfollow = budget.progress?.follow(flight.progress);
      try {
        await flight.promise;
        return;
      } catch (err) {
        // A joined write that ran out of its first caller's time is no answer for a caller with time left:
        // start a write of our own (bounded: that one runs to our own deadline).
        const flightTimedOut = err instanceof DenialError && err.reason === 'Timeout' && flight.deadline < budget.deadline;
        if (joined && flightTimedOut && Date.now() < budget.deadline && !budget.signal?.aborted) continue;
        throw err;
      } finally {
        unfollow?.();
      }
    }
  }

  /** The decoded view of a managed Secret (parsed on each call: renewals and diagnostics only). */
  decode(secret: SecretObject): DecodedPullSecret | undefined {
    return decodePullSecret(secret);
  }

  private freshnessOf(secret: SecretObject): Freshness {
    let f = this.freshness.get(secret);
    if (!f) {
      const d = decodePullSecret(secret);
      f = d
        ? { valid: true, expiresAt: d.expiresAt, refreshedAt: d.refreshedAt, bindingText: secret.metadata.annotations?.[BINDING_ANNOTATION] ?? '' }
        : { valid: false, expiresAt: Number.NaN, refreshedAt: undefined, bindingText: '' };
      this.freshness.set(secret, f);
    }
    return f;
  }

  /** When the Secret's tokens expire (ms since epoch); undefined when it cannot be read. */
  expiresAt(secret: SecretObject): number | undefined {
    const f = this.freshnessOf(secret);
    return f.valid ? f.expiresAt : undefined;
  }

  /** True when the Secret serves the spec's binding and its tokens are not due for renewal. */
  isFresh(secret: SecretObject, spec: PullSecretSpec, now: number = this.now()): boolean {
    const f = this.freshnessOf(secret);
    if (!f.valid || refreshDue(f, now, this.refreshThresholdMs)) return false;
    // The text the webhook wrote for this very binding, nearly always; otherwise compare canonical forms.
    if (f.bindingText === bindingText(spec.binding)) return true;
    if (!('parsed' in f)) f.parsed = parseBinding(f.bindingText);
    return f.parsed !== undefined && sameBinding(f.parsed, spec.binding);
  }

  /** True when the Secret's tokens are due for renewal (or it cannot be read). */
  needsRenewal(secret: SecretObject, now: number = this.now()): boolean {
    const f = this.freshnessOf(secret);
    return !f.valid || refreshDue(f, now, this.refreshThresholdMs);
  }

  /** Starts persisting usage marks in the background (every replica runs this; off the hot path). */
  start(): void {
    if (this.flushTimer) return;
    this.flushTimer = setInterval(() => {
      if (this.flushing) return;
      this.flushing = this.flushUsage()
        .catch((err: unknown) => {
          this.logger.warn({ err: describeError(err) }, 'persisting pull Secret usage failed');
          return 0;
        })
        .finally(() => {
          this.flushing = undefined;
        });
    }, this.usageFlushIntervalMs);
    this.flushTimer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing;
  }

  /**
   * Writes the last-used annotation of every Secret whose annotation lags its latest recorded use by more than
   * `usageTouchAfterMs`. Conflicts are skipped (the next round retries). Returns the number of writes.
   */
  async flushUsage(): Promise<number> {
    let writes = 0;
    for (const [namespace, name, at] of [...this.usage.entries()]) {
      const cur = this.store.get(namespace, name);
      if (!cur || this.inflight.has(keyOf(namespace, name))) continue;
      const persisted =
        parseTime(cur.metadata.annotations?.[LAST_USED_AT_ANNOTATION]) ?? parseTime(cur.metadata.creationTimestamp) ?? 0;
      if (at - persisted <= this.usageTouchAfterMs) continue;
      try {
        await this.store.replace(withLastUsed(cur, at));
        writes++;
        this.onWrite?.({ namespace, name, op: 'touch', outcome: 'ok' });
      } catch (err) {
        const conflict = err instanceof ConflictError || err instanceof NotFoundError;
        this.onWrite?.({ namespace, name, op: 'touch', outcome: conflict ? 'conflict' : 'error' });
        if (!conflict) this.logger.warn({ namespace, name, err: describeError(err) }, 'recording pull Secret usage failed');
      }
    }
    return writes;
  }

  private async write(spec: PullSecretSpec, budget: Budget): Promise<void> {
    const { namespace, name } = spec;
    const what = `writing pull Secret ${namespace}/${name}`;
    const progress = budget.progress ?? new Progress();
    // Time ran out between steps: the record says which one took it.
    const outOfTime = () => progress.timedOut(what);
    const apiServer = secretWriteWait(namespace, name);
    let cur = this.store.get(namespace, name);
    if (cur && this.isFresh(cur, spec)) return;
    if (Date.now() >= budget.deadline) throw outOfTime();

    const auths = await progress.step(credentialsWait(namespace, name), () => this.tokens.dockerAuths(spec.binding, spec.requester, { ...budget, progress }));
    if (auths.expiresAt <= this.now()) {
      this.logger.warn({ namespace, name }, 'registry tokens arrived already expired');
    }

    for (let attempt = 0; ; attempt++) {
      if (Date.now() >= budget.deadline) throw outOfTime();
      const op = cur ? 'replace' : 'create';
      const desired = buildPullSecret(spec, auths, {
        now: this.now(),
        ...(cur ? { previous: cur } : {}),
        ...(this.usage.get(namespace, name) !== undefined ? { lastUsedAt: this.usage.get(namespace, name) } : {}),
      });
      try {
        const leave = progress.enter(apiServer);
        try {
          if (cur) await this.store.replace(desired);
          else await this.store.create(desired);
        } finally {
          leave();
        }
        this.onWrite?.({ namespace, name, op, outcome: 'ok' });
        this.logger.info(
          { namespace, name, op, attempt, expiresAt: new Date(auths.expiresAt).toISOString() },
          'pull Secret written',
        );
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) {
          this.onWrite?.({ namespace, name, op, outcome: 'error' });
          this.logger.warn({ namespace, name, op, err: describeError(err) }, 'writing pull Secret failed');
          throw err instanceof DenialError
            ? err
            : new DenialError(`could not write pull Secret ${namespace}/${name}: ${describeError(err)}`, 500);
        }
        this.onWrite?.({ namespace, name, op, outcome: 'conflict' });
        if (attempt >= this.maxConflictRetries) {
          throw new DenialError(
            `could not write pull Secret ${namespace}/${name}: it kept changing under concurrent writers`,
            503,
            'Conflict',
          );
        }
        cur = await progress.step(apiServer, () => this.store.read(namespace, name));
        if (cur && !isManaged(cur)) {
          throw new DenialError(
            `Secret ${namespace}/${name} already exists and is not managed by acr-pull-webhook; delete or rename it`,
            403,
            'AlreadyExists',
          );
        }
        // Another writer (a peer replica, the refresher) may have done the work already.
        if (cur && this.isFresh(cur, spec)) return;
      }
    }
  }
}

/** The Secret write's own step: when the deadline passes in it, the API server is what did not answer. */
function secretWriteWait(namespace: string, name: string): Wait {
  const label = `writing pull Secret ${namespace}/${name}`;
  return {
    label,
    timedOut: () =>
      new DenialError(
        `acr-pull-webhook timed out ${label}: the Kubernetes API server did not answer in time. Check the API server's health and load, and the webhook's network path to it`,
        503,
        'Timeout',
      ),
  };
}

/** Waiting on the token source as a whole; the credential chain records its own, more precise steps inside it. */
function credentialsWait(namespace: string, name: string): Wait {
  const label = `obtaining registry credentials for pull Secret ${namespace}/${name}`;
  return {
    label,
    timedOut: () =>
      new DenialError(
        `acr-pull-webhook timed out ${label}: the cloud calls did not finish before the admission deadline. Retry, and check the webhook log for the slow call`,
        503,
        'Timeout',
      ),
  };
}
