// A list + watch cache of one kind of object (a reflector of our own on client-node's `Watch`, rather than
// client-node's `ListWatch`: that informer stops for good on the first error, has no timeout on a silent
// connection, cannot say when it has synced, and empties entries on a relist). Every watch is bounded
// (`timeoutSeconds` plus a client-side watchdog), errors restart it with backoff, 410 Gone (HTTP or in-stream)
// relists, and the cache is swapped whole after each relist. Managed Secrets, ServiceAccounts and the credential
// helper's ConfigMap are each held by one.
import { Watch, type ConfigurationOptions, type KubeConfig } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import { backoffDelay, describeError, sleep } from '../pull-secrets/util.js';
import { apiFailure, apiServerOf, httpStatus, requestTimeout, type ApiCall } from './api-util.js';
import { ownString } from '../util/own-string.js';

export type RestartReason = 'closed' | 'gone' | 'error' | 'stalled';

/** One page of a list, as client-node's typed list calls return it. */
export interface ListPage {
  items: unknown[];
  metadata?: { _continue?: string; resourceVersion?: string };
}

export interface ListParams {
  limit: number;
  _continue?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** What differs between the kinds a reflector can hold. */
export interface ReflectorSource<T> {
  /** For log lines: "secret", "serviceaccount", "configmap". */
  kind: string;
  /** The watch path: `/api/v1/secrets`, `/api/v1/namespaces/kube-system/configmaps`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  list(params: ListParams, opts: ConfigurationOptions): Promise<ListPage>;
  /** The cached form of an item from a list (client-node model) or a watch event (raw JSON); undefined to skip it. */
  convert(raw: unknown): T | undefined;
  /** `namespace/name`. */
  key(item: T): string;
  resourceVersion(item: T): string | undefined;
  /** Objects written or read by the process pass through this before `observe` caches them (default: all). */
  accept?(item: T): boolean;
}

export interface ReflectorConfig {
  watch: Watch;
  pageSize: number;
  watchTimeoutSeconds: number;
  watchdogMs: number;
  requestTimeoutMs: number;
  backoff: { initialMs: number; maxMs: number; jitter: number };
  logger: Logger;
  onRestart: ((reason: RestartReason) => void) | undefined;
  /** The API server's address, for failure logs. */
  server: string | undefined;
}

/** The tunables every cache shares (defaults in brackets). */
export interface ReflectorOptions {
  /** List page size [500]. */
  pageSize?: number;
  /** Server-side bound of one watch [300 s]; the client gives up after this plus `watchdogGraceMs` [30 s]. */
  watchTimeoutSeconds?: number;
  watchdogGraceMs?: number;
  /** Timeout of every list request [10 s]. */
  requestTimeoutMs?: number;
  /** Backoff between failed list/watch attempts [500 ms doubling to 30 s, 20 % jitter]. */
  restartInitialMs?: number;
  restartMaxMs?: number;
  logger?: Logger;
  /** Metrics hook: a watch ended and is being re-established (`closed` is the normal server-side timeout). */
  onRestart?: (reason: RestartReason) => void;
}

export function reflectorConfig(kubeConfig: KubeConfig, opts: ReflectorOptions = {}): ReflectorConfig {
  const watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
  return {
    watch: new Watch(kubeConfig),
    pageSize: opts.pageSize ?? 500,
    watchTimeoutSeconds,
    watchdogMs: watchTimeoutSeconds * 1000 + (opts.watchdogGraceMs ?? 30_000),
    requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
    backoff: { initialMs: opts.restartInitialMs ?? 500, maxMs: opts.restartMaxMs ?? 30_000, jitter: 0.2 },
    logger: opts.logger ?? silentLogger,
    onRestart: opts.onRestart,
    server: apiServerOf(kubeConfig),
  };
}

export type ReflectorEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; item: T }
  /** The cache was replaced by a fresh list: any key may have changed. */
  | { type: 'RELISTED' };

type WatchOutcome =
  | { kind: 'closed'; events: number }
  | { kind: 'gone' }
  | { kind: 'stalled' }
  | { kind: 'stopped' }
  | { kind: 'error'; err: unknown };

/** Numeric resourceVersions (etcd revisions) compared when both parse; otherwise "not older". */
export function olderThan(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/** List + watch of one kind, kept in a Map by `namespace/name`. */
export class Reflector<T> {
  private cache = new Map<string, T>();
  private resourceVersion = '';
  private hasSynced = false;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private stopCtl = new AbortController();
  private abortWatch: (() => void) | undefined;
  private syncWaiters: Array<() => void> = [];
  private readonly listeners: Array<(e: ReflectorEvent<T>) => void> = [];
  readonly stats = { lists: 0, watches: 0, restarts: 0 };

  constructor(
    private readonly source: ReflectorSource<T>,
    private readonly cfg: ReflectorConfig,
    /** For log lines: the namespace watched, or "*". */
    private readonly scope = '*',
  ) {}

  synced(): boolean {
    return this.hasSynced;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  values(): IterableIterator<T> {
    return this.cache.values();
  }

  get size(): number {
    return this.cache.size;
  }

  /** Called after every change the watch or a relist brings (not for `observe`/`forget` of our own writes). */
  onEvent(listener: (e: ReflectorEvent<T>) => void): void {
    this.listeners.push(listener);
  }

  /** Resolves once the first list has filled the cache (or the reflector is stopped). */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.stopCtl = new AbortController();
      // Each loop watches its own signal: a start() while an earlier stop() still waits on a list must not
      // bring the old loop back to life beside the new one.
      this.loopDone = this.loop(this.stopCtl.signal);
    }
    return this.whenSynced();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopCtl.abort();
    this.abortWatch?.();
    await this.loopDone;
    // Waiters of a start() made since then belong to the new loop.
    if (!this.running) for (const w of this.syncWaiters.splice(0)) w();
  }

  whenSynced(): Promise<void> {
    if (this.hasSynced || !this.running) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Puts an object we wrote or read into the cache, unless the cache already holds a newer version. */
  observe(item: T): void {
    if (this.source.accept && !this.source.accept(item)) return;
    const key = this.source.key(item);
    const cur = this.cache.get(key);
    if (cur && olderThan(this.source.resourceVersion(item), this.source.resourceVersion(cur))) return;
    this.cache.set(cur ? key : ownString(key), item);
  }

  /** Drops an object we deleted (only the version we deleted, when known). */
  forget(key: string, resourceVersion?: string): void {
    const cur = this.cache.get(key);
    if (cur && (!resourceVersion || !olderThan(resourceVersion, this.source.resourceVersion(cur)))) this.cache.delete(key);
  }

  private emit(e: ReflectorEvent<T>): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.cfg.logger.warn({ kind: this.source.kind, err: describeError(err) }, 'cache listener failed');
      }
    }
  }

  private async loop(stopped: AbortSignal): Promise<void> {
    const { kind } = this.source;
    let failures = 0;
    while (!stopped.aborted) {
      let reason: RestartReason | undefined;
      try {
        if (!this.resourceVersion) await this.relist(stopped);
        if (stopped.aborted) break;
        const started = Date.now();
        const out = await this.watchOnce();
        if (stopped.aborted || out.kind === 'stopped') break;
        reason = out.kind;
        if (out.kind === 'gone') {
          this.resourceVersion = '';
          failures = 0;
        } else if (out.kind === 'closed') {
          // A normal end (timeoutSeconds) reconnects at once; a server that keeps closing at once gets backoff.
          failures = out.events > 0 || Date.now() - started > 1000 ? 0 : failures + 1;
        } else if (out.kind === 'stalled') {
          failures = Math.max(failures, 1);
          this.cfg.logger.warn({ namespace: this.scope }, `${kind} watch went silent; reconnecting`);
        } else {
          failures++;
          this.cfg.logger.warn({ namespace: this.scope, ...apiFailure(out.err, this.call('watch'), this.cfg.server), failures }, `${kind} watch failed`);
        }
      } catch (err) {
        if (stopped.aborted) break;
        if (httpStatus(err) === 410) {
          // An expired continue token or resourceVersion: start over from a fresh list.
          this.resourceVersion = '';
          reason = 'gone';
        } else {
          failures++;
          reason = 'error';
          // One line per attempt: until the first list succeeds the webhook is not ready, and this says why.
          this.cfg.logger.warn({ namespace: this.scope, ...apiFailure(err, this.call('list'), this.cfg.server), failures }, `listing ${kind}s failed`);
        }
      }
      if (reason) {
        this.stats.restarts++;
        this.cfg.onRestart?.(reason);
      }
      if (failures > 0 && !stopped.aborted) await sleep(backoffDelay(failures, this.cfg.backoff), stopped);
    }
  }

  private call(verb: 'list' | 'watch'): ApiCall {
    return { verb, resource: `${this.source.kind}s`, method: 'GET', path: this.source.path };
  }

  private async relist(stopped: AbortSignal): Promise<void> {
    const { pageSize, requestTimeoutMs } = this.cfg;
    const { labelSelector, fieldSelector } = this.source;
    const items = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      this.stats.lists++;
      const page = await this.source.list(
        { limit: pageSize, ...(cont ? { _continue: cont } : {}), ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) },
        requestTimeout(requestTimeoutMs),
      );
      for (const raw of page.items) {
        const item = this.source.convert(raw);
        if (item !== undefined && (!this.source.accept || this.source.accept(item))) items.set(this.source.key(item), item);
      }
      cont = page.metadata?._continue || undefined;
      rv = page.metadata?.resourceVersion ?? '';
    } while (cont && !stopped.aborted);
    if (stopped.aborted) return;
    this.cache = items;
    this.resourceVersion = rv;
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.emit({ type: 'RELISTED' });
  }

  private watchOnce(): Promise<WatchOutcome> {
    const { watch, watchTimeoutSeconds, watchdogMs } = this.cfg;
    const { path, labelSelector, fieldSelector } = this.source;
    this.stats.watches++;
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let events = 0;
      let gone = false;
      let streamError: unknown;
      let controller: AbortController | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (o: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.abortWatch = undefined;
        controller?.abort();
        resolve(o);
      };
      const arm = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish({ kind: 'stalled' }), watchdogMs);
        watchdog.unref?.();
      };
      this.abortWatch = () => finish({ kind: 'stopped' });
      arm();
      const onEvent = (type: string, obj: unknown): void => {
        if (settled) return;
        arm();
        events++;
        if (type === 'ERROR') {
          if (httpStatus(obj) === 410) gone = true;
          else streamError = obj;
          return;
        }
        const meta = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
        const rv = typeof meta?.resourceVersion === 'string' ? meta.resourceVersion : undefined;
        if (type === 'ADDED' || type === 'MODIFIED') {
          const item = this.source.convert(obj);
          if (item !== undefined && (!this.source.accept || this.source.accept(item))) {
            this.observe(item);
            this.emit({ type, item });
          }
        } else if (type === 'DELETED') {
          const item = this.source.convert(obj);
          if (item !== undefined) {
            this.forget(this.source.key(item), this.source.resourceVersion(item));
            this.emit({ type, item });
          }
        }
        if (rv) this.resourceVersion = rv;
      };
      const onDone = (err: unknown): void => {
        if (gone || httpStatus(err) === 410) finish({ kind: 'gone' });
        else if (err) finish({ kind: 'error', err });
        else if (streamError) finish({ kind: 'error', err: streamError });
        else finish({ kind: 'closed', events });
      };
      watch
        .watch(
          path,
          {
            resourceVersion: this.resourceVersion,
            ...(labelSelector ? { labelSelector } : {}),
            ...(fieldSelector ? { fieldSelector } : {}),
            allowWatchBookmarks: true,
            timeoutSeconds: watchTimeoutSeconds,
          },
          onEvent,
          onDone,
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish({ kind: 'error', err }),
        );
    });
  }
}
