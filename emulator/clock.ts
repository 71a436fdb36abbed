// Two notions of "now". The service clock (credential/token issue and expiry, OIDC exp) can be moved
// by tests to age credentials without waiting. The gateway clock (Timestamp/Date skew check) stays
// on wall time by default, because the real SDK stamps requests with wall time: advancing the service
// clock would otherwise turn every request into InvalidTimeStamp.Expired. Skew it separately.

export interface EmulatorClock {
  /** Service time in epoch ms. */
  now(): number;
  /** Time request timestamps are checked against: wall clock (Date.now) plus the gateway skew. */
  gatewayNow(): number;
  /** Fix the service time (a number), follow a function, or go back to the base clock (undefined). Clears advance(). */
  set(now: number | (() => number) | undefined): void;
  /** Move service time by ms (cumulative). */
  advance(ms: number): void;
  /** Offset the gateway's clock by ms (cumulative); beyond the tolerance requests fail InvalidTimeStamp.Expired. */
  skewGateway(ms: number): void;
  /** Back to the base clock, no offsets. */
  reset(): void;
}

export function createClock(base: () => number = () => Date.now()): EmulatorClock {
  let source: () => number = base;
  let offset = 0;
  let gatewayOffset = 0;
  return {
    now: () => source() + offset,
    gatewayNow: () => Date.now() + gatewayOffset,
    set(now) {
      source = now === undefined ? base : typeof now === 'number' ? () => now : now;
      offset = 0;
    },
    advance(ms) {
      offset += ms;
    },
    skewGateway(ms) {
      gatewayOffset += ms;
    },
    reset() {
      source = base;
      offset = 0;
      gatewayOffset = 0;
    },
  };
}
