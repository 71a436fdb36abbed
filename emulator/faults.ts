// Injectable misbehaviour: latency, throttling, 5xx, raw (non-JSON) answers and hangs, each for the
// next N matching calls or for good. Faults act after the request is read and counted, before any
// gateway check, which is where a real front end throttles or fails.

export type Product = 'sts' | 'cr' | 'cr-personal' | 'ram';

export type FaultEffect =
  /** Delay the answer (adds up with other latency faults; the call then proceeds normally or with another fault). */
  | { kind: 'latency'; ms: number }
  /** `Throttling.User`, HTTP 400 by default. */
  | { kind: 'throttle'; status?: number; code?: string; message?: string }
  /** 500 `InternalError` or 503 `ServiceUnavailable` by default by status; code/message overridable. */
  | { kind: 'error'; status?: number; code?: string; message?: string }
  /** A non-JSON answer, as a load balancer would give (pop-core's RPC client then throws a plain object). */
  | { kind: 'raw'; status: number; body: string; contentType?: string }
  /** Never answer; the connection stays open until the client gives up or the emulator closes. */
  | { kind: 'hang' };

export interface FaultTarget {
  product?: Product;
  /** API action, e.g. 'AssumeRole' ('GetAuthorizationToken' matches both CR editions unless product says). */
  action?: string;
  /** Only requests signed with this AccessKeyId. */
  accessKeyId?: string;
  /** How many matching calls it applies to; default: all (until removed). */
  times?: number;
}

export interface FaultHandle {
  /** Calls left (Infinity when unlimited). */
  readonly remaining: number;
  /** Calls it has applied to. */
  readonly hits: number;
  remove(): void;
}

export interface CallKey {
  product: Product;
  action: string;
  accessKeyId?: string;
}

interface ActiveFault {
  effect: FaultEffect;
  target: FaultTarget;
  remaining: number;
  hits: number;
}

export interface FaultDecision {
  latencyMs: number;
  /** The non-latency effect to apply, if any. */
  effect?: Exclude<FaultEffect, { kind: 'latency' }>;
}

export class FaultInjector {
  private active: ActiveFault[] = [];

  add(effect: FaultEffect, target: FaultTarget = {}): FaultHandle {
    const times = target.times ?? Infinity;
    if (!(times > 0)) throw new Error('fault times must be positive');
    const fault: ActiveFault = { effect, target, remaining: times, hits: 0 };
    this.active.push(fault);
    return {
      get remaining() {
        return fault.remaining;
      },
      get hits() {
        return fault.hits;
      },
      remove: () => {
        this.active = this.active.filter((f) => f !== fault);
      },
    };
  }

  /** Consumes one use of every matching latency fault and of the first matching other fault. */
  take(call: CallKey): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0 };
    for (const fault of this.active) {
      if (!matches(fault.target, call)) continue;
      if (fault.effect.kind === 'latency') {
        decision.latencyMs += fault.effect.ms;
      } else if (decision.effect === undefined) {
        decision.effect = fault.effect;
      } else {
        continue;
      }
      fault.remaining -= 1;
      fault.hits += 1;
    }
    this.active = this.active.filter((f) => f.remaining > 0);
    return decision;
  }

  clear(): void {
    this.active = [];
  }

  get size(): number {
    return this.active.length;
  }
}

function matches(target: FaultTarget, call: CallKey): boolean {
  return (
    (target.product === undefined || target.product === call.product) &&
    (target.action === undefined || target.action === call.action) &&
    (target.accessKeyId === undefined || target.accessKeyId === call.accessKeyId)
  );
}
