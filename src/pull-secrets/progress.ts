// What an admission (or a shared Secret write) is waiting on right now, so that the one place that owns the
// deadline can say which step ran out of time: AssumeRole of which role, which registry call, or the Secret write.
// Steps describe their own timeout; this only keeps track of which are in flight and how long finished ones took.
import { DenialError } from './types.js';

export interface Wait {
  /** The denial when the deadline passes while this step is in flight. */
  timedOut(): DenialError;
  /** Short name of the step, for "took N s" when nothing is in flight any more. */
  label: string;
}

/** Nesting bound when following other records (a flight followed by callers, never deeper in practice). */
const MAX_DEPTH = 4;
let entered = 0;

export class Progress {
  /** In-flight steps and the order they were entered in (across records, so followed ones compare). */
  private readonly waiting = new Map<Wait, number>();
  private readonly followed = new Set<Progress>();
  private slowest: { label: string; ms: number } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Marks `wait` in flight until the returned function is called. */
  enter(wait: Wait): () => void {
    const started = this.now();
    this.waiting.set(wait, ++entered);
    return () => {
      if (!this.waiting.delete(wait)) return;
      const ms = this.now() - started;
      if (!this.slowest || ms > this.slowest.ms) this.slowest = { label: wait.label, ms };
    };
  }

  /** Runs `work` as `wait`. */
  async step<T>(wait: Wait, work: () => Promise<T>): Promise<T> {
    const leave = this.enter(wait);
    try {
      return await work();
    } finally {
      leave();
    }
  }

  /** Counts another record's steps as ours (a shared write this caller joined) until the returned function is called. */
  follow(other: Progress): () => void {
    if (other === this) return () => {};
    this.followed.add(other);
    return () => this.followed.delete(other);
  }

  /**
   * The denial for a deadline that passed now: the innermost step in flight (the one entered last: steps nest,
   * an outer "obtaining credentials" around the cloud call that hangs); else, when every step finished, which one
   * took the time; else `fallback`.
   */
  timedOut(fallback: string): DenialError {
    const innermost = this.newestWait(0);
    if (innermost) return innermost.wait.timedOut();
    const slowest = this.slowestStep(0);
    if (slowest) {
      return new DenialError(
        `acr-pull-webhook timed out: ${slowest.label} took ${(slowest.ms / 1000).toFixed(1)} s, and no time was left before the admission deadline. ` +
          'Controllers create the Pod again by themselves; if this repeats, check that step\'s latency from the webhook',
        503,
        'Timeout',
      );
    }
    return new DenialError(`acr-pull-webhook timed out ${fallback}`, 503, 'Timeout');
  }

  private newestWait(depth: number): { wait: Wait; seq: number } | undefined {
    let best: { wait: Wait; seq: number } | undefined;
    for (const [wait, seq] of this.waiting) if (!best || seq > best.seq) best = { wait, seq };
    if (depth < MAX_DEPTH) {
      for (const p of this.followed) {
        const w = p.newestWait(depth + 1);
        if (w && (!best || w.seq > best.seq)) best = w;
      }
    }
    return best;
  }

  private slowestStep(depth: number): { label: string; ms: number } | undefined {
    let best = this.slowest;
    if (depth < MAX_DEPTH) {
      for (const p of this.followed) {
        const s = p.slowestStep(depth + 1);
        if (s && (!best || s.ms > best.ms)) best = s;
      }
    }
    return best;
  }
}
