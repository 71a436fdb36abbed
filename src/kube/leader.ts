// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: create the Lease when absent, take it
// over only when its holder has not renewed it for a full lease duration as observed on the local clock (so clock
// skew between replicas does not matter), renew with a resourceVersion precondition, and release it on stop.
// A leader that could not renew within `renewDeadlineMs` (< lease duration) stops calling itself leader before
// anyone else may take over.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Leadership } from '../pull-secrets/leadership.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import { describeError } from '../pull-secrets/util.js';
import { httpStatus, requestTimeout, timeMs } from './api-util.js';

export interface LeaseRecord {
  /** Empty when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** ms since epoch */
  acquireTime?: number;
  /** ms since epoch */
  renewTime?: number;
  leaseTransitions: number;
}

export interface StoredLease extends LeaseRecord {
  resourceVersion: string;
}

/** The Lease was created or changed by someone else since it was read (HTTP 409), or vanished. */
export class LeaseConflictError extends Error {
  constructor(message = 'lease changed concurrently') {
    super(message);
    this.name = 'LeaseConflictError';
  }
}

/** Storage of one Lease: the API (KubeLeaseApi) or memory (MemoryLeaseApi, for tests). */
export interface LeaseApi {
  get(namespace: string, name: string): Promise<StoredLease | undefined>;
  /** LeaseConflictError when it exists. */
  create(namespace: string, name: string, record: LeaseRecord): Promise<StoredLease>;
  /** LeaseConflictError when `resourceVersion` is not current or the Lease is gone. */
  update(namespace: string, name: string, record: LeaseRecord, resourceVersion: string): Promise<StoredLease>;
}

export class KubeLeaseApi implements LeaseApi {
  private readonly api: CoordinationV1Api;

  constructor(
    kubeConfig: KubeConfig,
    private readonly requestTimeoutMs = 10_000,
  ) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  async get(namespace: string, name: string): Promise<StoredLease | undefined> {
    try {
      return fromLease(await this.api.readNamespacedLease({ namespace, name }, requestTimeout(this.requestTimeoutMs)));
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async create(namespace: string, name: string, record: LeaseRecord): Promise<StoredLease> {
    try {
      return fromLease(
        await this.api.createNamespacedLease({ namespace, body: toLease(namespace, name, record) }, requestTimeout(this.requestTimeoutMs)),
      );
    } catch (err) {
      if (httpStatus(err) === 409) throw new LeaseConflictError('lease already exists');
      throw err;
    }
  }

  async update(namespace: string, name: string, record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    try {
      return fromLease(
        await this.api.replaceNamespacedLease(
          { namespace, name, body: toLease(namespace, name, record, resourceVersion) },
          requestTimeout(this.requestTimeoutMs),
        ),
      );
    } catch (err) {
      const status = httpStatus(err);
      if (status === 409 || status === 404) throw new LeaseConflictError();
      throw err;
    }
  }
}

function toLease(namespace: string, name: string, r: LeaseRecord, resourceVersion?: string): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: {
      holderIdentity: r.holderIdentity,
      leaseDurationSeconds: r.leaseDurationSeconds,
      leaseTransitions: r.leaseTransitions,
      // V1MicroTime serializes with six fractional digits, as the API server's MicroTime requires.
      ...(r.acquireTime !== undefined ? { acquireTime: new V1MicroTime(r.acquireTime) } : {}),
      ...(r.renewTime !== undefined ? { renewTime: new V1MicroTime(r.renewTime) } : {}),
    },
  };
}

function fromLease(l: V1Lease): StoredLease {
  const spec = l.spec ?? {};
  const out: StoredLease = {
    resourceVersion: l.metadata?.resourceVersion ?? '',
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
  // client-node leaves MicroTime fields as strings when reading.
  const acquire = timeMs(spec.acquireTime as unknown);
  if (acquire !== undefined) out.acquireTime = acquire;
  const renew = timeMs(spec.renewTime as unknown);
  if (renew !== undefined) out.renewTime = renew;
  return out;
}

/** Leases in memory with resourceVersion semantics; one instance shared by several electors simulates a cluster. */
export class MemoryLeaseApi implements LeaseApi {
  private readonly leases = new Map<string, StoredLease>();
  private revision = 0;
  /** Makes the next calls fail as if the API server were unreachable, while true. */
  unavailable = false;

  async get(namespace: string, name: string): Promise<StoredLease | undefined> {
    await this.gate();
    const l = this.leases.get(`${namespace}/${name}`);
    return l ? { ...l } : undefined;
  }

  async create(namespace: string, name: string, record: LeaseRecord): Promise<StoredLease> {
    await this.gate();
    const key = `${namespace}/${name}`;
    if (this.leases.has(key)) throw new LeaseConflictError('lease already exists');
    return this.put(key, record);
  }

  async update(namespace: string, name: string, record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    await this.gate();
    const key = `${namespace}/${name}`;
    const cur = this.leases.get(key);
    if (!cur || cur.resourceVersion !== resourceVersion) throw new LeaseConflictError();
    return this.put(key, record);
  }

  /** The stored record, for assertions. */
  peek(namespace: string, name: string): StoredLease | undefined {
    const l = this.leases.get(`${namespace}/${name}`);
    return l ? { ...l } : undefined;
  }

  private put(key: string, record: LeaseRecord): StoredLease {
    const stored: StoredLease = { ...record, resourceVersion: String(++this.revision) };
    this.leases.set(key, stored);
    return { ...stored };
  }

  private async gate(): Promise<void> {
    await Promise.resolve();
    if (this.unavailable) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'FetchError' });
  }
}

export interface LeaseLeaderElectorOptions {
  api: LeaseApi;
  /** The webhook's own namespace. */
  namespace: string;
  /** Lease name (default `acr-pull-webhook`). */
  name?: string;
  /** Unique per replica (the Pod name). */
  identity: string;
  /** How long a non-renewed Lease blocks others (default 15 s). */
  leaseDurationMs?: number;
  /** The leader stops acting as leader when it has not renewed for this long (default 10 s; < leaseDurationMs). */
  renewDeadlineMs?: number;
  /** Interval between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number;
  now?: () => number;
  logger?: Logger;
  /** Called when this replica starts or stops leading. */
  onChange?: (leading: boolean) => void;
}

export class LeaseLeaderElector implements Leadership {
  private readonly api: LeaseApi;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly listeners: Array<(leading: boolean) => void> = [];
  private observed: StoredLease | undefined;
  private observedAt = 0;
  private lastRenewAt: number | undefined;
  private reported = false;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<boolean> | undefined;

  constructor(opts: LeaseLeaderElectorOptions) {
    this.api = opts.api;
    this.namespace = opts.namespace;
    this.name = opts.name ?? 'acr-pull-webhook';
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!this.identity) throw new Error('leader election needs a non-empty identity');
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
    if (this.retryPeriodMs >= this.renewDeadlineMs) throw new Error('retryPeriodMs must be shorter than renewDeadlineMs');
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    if (opts.onChange) this.listeners.push(opts.onChange);
  }

  subscribe(listener: (leading: boolean) => void): void {
    this.listeners.push(listener);
  }

  isLeader(): boolean {
    return this.lastRenewAt !== undefined && this.now() - this.lastRenewAt < this.renewDeadlineMs;
  }

  /** Starts trying to acquire and renew the Lease every retry period. */
  start(): void {
    if (this.timer) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.retryPeriodMs);
    this.timer.unref?.();
  }

  /** Stops, and releases the Lease when held so that another replica takes over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inflight?.catch(() => false);
    if (this.isLeader() && this.observed?.holderIdentity === this.identity) {
      const now = this.now();
      try {
        await this.api.update(
          this.namespace,
          this.name,
          {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            ...(this.observed.acquireTime !== undefined ? { acquireTime: this.observed.acquireTime } : {}),
            renewTime: now,
            leaseTransitions: this.observed.leaseTransitions,
          },
          this.observed.resourceVersion,
        );
        this.logger.info({ lease: this.name, identity: this.identity }, 'released leadership');
      } catch (err) {
        this.logger.warn({ lease: this.name, err: describeError(err) }, 'releasing the lease failed; it will expire');
      }
    }
    this.lastRenewAt = undefined;
    this.report();
  }

  /** One attempt (what the timer does); exposed so that tests can drive it with a fake clock. */
  async tick(): Promise<boolean> {
    if (!this.inflight) {
      this.inflight = this.tryAcquireOrRenew().finally(() => {
        this.inflight = undefined;
      });
    }
    const result = await this.inflight;
    this.report();
    return result;
  }

  private report(): void {
    const leading = this.isLeader();
    if (leading === this.reported) return;
    this.reported = leading;
    this.logger.info({ lease: this.name, identity: this.identity, leading }, leading ? 'became leader' : 'stopped leading');
    for (const listener of this.listeners) {
      try {
        listener(leading);
      } catch (err) {
        this.logger.error({ err: describeError(err) }, 'leadership callback failed');
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const durationSeconds = Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
    let cur: StoredLease | undefined;
    try {
      cur = await this.api.get(this.namespace, this.name);
    } catch (err) {
      this.logger.warn({ lease: this.name, err: describeError(err) }, 'reading the lease failed');
      return this.isLeader();
    }

    if (!cur) {
      try {
        const created = await this.api.create(this.namespace, this.name, {
          holderIdentity: this.identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        });
        this.observe(created, now);
        this.lastRenewAt = now;
        return true;
      } catch (err) {
        if (!(err instanceof LeaseConflictError)) this.logger.warn({ lease: this.name, err: describeError(err) }, 'creating the lease failed');
        return false;
      }
    }

    if (!this.observed || this.observed.resourceVersion !== cur.resourceVersion) this.observe(cur, now);
    const mine = cur.holderIdentity === this.identity;
    const heldByOther = cur.holderIdentity !== '' && !mine;
    const expired = this.observedAt + cur.leaseDurationSeconds * 1000 <= now;
    if (heldByOther && !expired) {
      this.lastRenewAt = undefined;
      return false;
    }

    try {
      const updated = await this.api.update(
        this.namespace,
        this.name,
        {
          holderIdentity: this.identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: mine ? (cur.acquireTime ?? now) : now,
          renewTime: now,
          leaseTransitions: mine ? cur.leaseTransitions : cur.leaseTransitions + 1,
        },
        cur.resourceVersion,
      );
      this.observe(updated, now);
      if (!mine) this.logger.info({ lease: this.name, identity: this.identity, previous: cur.holderIdentity }, 'acquired the lease');
      this.lastRenewAt = now;
      return true;
    } catch (err) {
      if (!(err instanceof LeaseConflictError)) this.logger.warn({ lease: this.name, err: describeError(err) }, 'renewing the lease failed');
      return this.isLeader() && mine;
    }
  }

  private observe(l: StoredLease, at: number): void {
    this.observed = l;
    this.observedAt = at;
  }
}
