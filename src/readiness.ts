// Readiness: the webhook is ready once every local cache a decision reads has been filled at least once. Before
// that a decision could read a missing entry as "absent" (no namespace label: a false "not covered by any rule"
// denial; no Secret: a needless write), so /readyz answers 503 and reviews wait, within their deadline.
// Each cache (Secrets, namespace labels, ...) is filled by a list and kept by a watch, retrying on its own; the
// set only starts them and watches for the moment all have synced. A new cache joins with one line in the list
// src/runtime.ts builds.

export interface SyncedCache {
  /** For logs and the not-ready answer: `secrets`, `namespaces`. */
  readonly name: string;
  /** Starts filling (and retrying); need not resolve before the first list has arrived. */
  start(): unknown;
  stop(): Promise<void>;
  /** True once filled at least once; stays true. */
  synced(): boolean;
}

export class CacheSet {
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly caches: readonly SyncedCache[],
    private readonly opts: { onSynced?: (ms: number) => void; pollMs?: number } = {},
  ) {}

  /** Starts every cache and polls until all have synced (only during start-up: the check stops once true). */
  start(): void {
    const begun = Date.now();
    for (const c of this.caches) {
      // A start that rejects is the cache's own business (it logs and retries); readiness only reads synced().
      Promise.resolve(c.start()).catch(() => undefined);
    }
    const check = (): void => {
      if (!this.caches.every((c) => c.synced())) return;
      clearInterval(this.timer);
      this.timer = undefined;
      this.done = true;
      for (const w of this.waiters.splice(0)) w();
      this.opts.onSynced?.(Date.now() - begun);
    };
    this.timer = setInterval(check, this.opts.pollMs ?? 100);
    this.timer.unref();
    check();
  }

  /** True once every cache has synced (latched: the hot path reads a field). */
  synced(): boolean {
    return this.done;
  }

  /** Resolves once every cache has synced. */
  whenSynced(): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The caches not synced yet, by name. */
  pending(): string[] {
    return this.caches.filter((c) => !c.synced()).map((c) => c.name);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled(this.caches.map((c) => c.stop()));
  }
}
