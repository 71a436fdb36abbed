// SecretStore over the Kubernetes API. The cache is a reflector of our own (list, then watch from the list's
// resourceVersion) on client-node's `Watch`, rather than client-node's `ListWatch`: that informer stops for good
// on the first error, has no timeout on a silent connection, cannot say when it has synced, and empties entries
// on a relist. Here every watch is bounded (`timeoutSeconds` plus a client-side watchdog), errors restart it
// with backoff, 410 Gone (HTTP or in-stream) relists, and the cache is swapped whole after each relist.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, Watch, type CoreV1Event, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { isManaged, MANAGED_SELECTOR } from '../pull-secrets/docker-config.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import {
  ConflictError,
  NotFoundError,
  type EventType,
  type SecretMetadata,
  type SecretObject,
  type SecretStore,
} from '../pull-secrets/store.js';
import { backoffDelay, describeError, keyOf, sleep } from '../pull-secrets/util.js';
import { apiFailure, apiServerOf, httpStatus, requestTimeout, timeMs, type ApiCall } from './api-util.js';
import { ownString } from '../util/own-string.js';

export type RestartReason = 'closed' | 'gone' | 'error' | 'stalled';

export interface KubeSecretStoreOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to cache managed Secrets from; all namespaces when absent or empty. */
  namespaces?: readonly string[];
  /** List page size (default 500). */
  pageSize?: number;
  /** Server-side bound of one watch (default 300 s); the client gives up after this plus `watchdogGraceMs`. */
  watchTimeoutSeconds?: number;
  /** Default 30 s. */
  watchdogGraceMs?: number;
  /** Timeout of every non-watch request (default 10 s). */
  requestTimeoutMs?: number;
  /** Backoff between failed list/watch attempts (defaults 500 ms doubling to 30 s, 20 % jitter). */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** Event source (default `acr-pull-webhook`) and reporting instance (default the host name). */
  component?: string;
  instance?: string;
  logger?: Logger;
  /** Metrics hook: a watch ended and is being re-established (`closed` is the normal server-side timeout). */
  onRestart?: (reason: RestartReason) => void;
}

interface ReflectorConfig {
  api: CoreV1Api;
  watch: Watch;
  namespace: string | undefined;
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

type WatchOutcome =
  | { kind: 'closed'; events: number }
  | { kind: 'gone' }
  | { kind: 'stalled' }
  | { kind: 'stopped' }
  | { kind: 'error'; err: unknown };

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strMap(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** A Secret from a list (client-node model, Dates) or a watch event (raw JSON, strings) as a SecretObject. */
export function toSecretObject(raw: unknown): SecretObject | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as { metadata?: Record<string, unknown>; type?: unknown; data?: unknown };
  const m = r.metadata;
  const name = str(m?.name);
  const namespace = str(m?.namespace);
  if (!m || !name || !namespace) return undefined;
  const metadata: SecretMetadata = { name, namespace };
  const labels = strMap(m.labels);
  if (labels) metadata.labels = labels;
  const annotations = strMap(m.annotations);
  if (annotations) metadata.annotations = annotations;
  const rv = str(m.resourceVersion);
  if (rv) metadata.resourceVersion = rv;
  const uid = str(m.uid);
  if (uid) metadata.uid = uid;
  const created = timeMs(m.creationTimestamp);
  if (created !== undefined) metadata.creationTimestamp = new Date(created).toISOString();
  if (Array.isArray(m.ownerReferences)) metadata.ownerReferences = m.ownerReferences as unknown[];
  if (Array.isArray(m.finalizers)) metadata.finalizers = m.finalizers.filter((f): f is string => typeof f === 'string');
  const out: SecretObject = { apiVersion: 'v1', kind: 'Secret', metadata };
  const type = str(r.type);
  if (type) out.type = type;
  const data = strMap(r.data);
  if (data) out.data = data;
  return out;
}

function toBody(s: SecretObject): V1Secret {
  const m = s.metadata;
  const metadata: Record<string, unknown> = { name: m.name, namespace: m.namespace };
  if (m.labels) metadata.labels = m.labels;
  if (m.annotations) metadata.annotations = m.annotations;
  if (m.resourceVersion) metadata.resourceVersion = m.resourceVersion;
  if (m.uid) metadata.uid = m.uid;
  if (m.ownerReferences) metadata.ownerReferences = m.ownerReferences;
  if (m.finalizers) metadata.finalizers = m.finalizers;
  const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'Secret', metadata };
  if (s.type) body.type = s.type;
  if (s.data) body.data = s.data;
  return body as V1Secret;
}

/** Numeric resourceVersions (etcd revisions) compared when both parse; otherwise "not older". */
function olderThan(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/** List + watch of the managed Secrets of one namespace (or all), kept in a Map. */
export class SecretReflector {
  private cache = new Map<string, SecretObject>();
  private resourceVersion = '';
  private hasSynced = false;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private stopCtl = new AbortController();
  private abortWatch: (() => void) | undefined;
  private syncWaiters: Array<() => void> = [];
  readonly stats = { lists: 0, watches: 0, restarts: 0 };

  constructor(private readonly cfg: ReflectorConfig) {}

  get namespace(): string | undefined {
    return this.cfg.namespace;
  }

  synced(): boolean {
    return this.hasSynced;
  }

  get(namespace: string, name: string): SecretObject | undefined {
    return this.cache.get(keyOf(namespace, name));
  }

  values(): IterableIterator<SecretObject> {
    return this.cache.values();
  }

  /** Resolves once the first list has filled the cache (or the reflector is stopped). */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.stopCtl = new AbortController();
      this.loopDone = this.loop();
    }
    return this.whenSynced();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopCtl.abort();
    this.abortWatch?.();
    await this.loopDone;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  whenSynced(): Promise<void> {
    if (this.hasSynced || !this.running) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Puts an object we wrote or read into the cache, unless the cache already holds a newer version. */
  observe(s: SecretObject): void {
    if (!isManaged(s)) return;
    const key = keyOf(s.metadata.namespace, s.metadata.name);
    const cur = this.cache.get(key);
    if (cur && olderThan(s.metadata.resourceVersion, cur.metadata.resourceVersion)) return;
    this.cache.set(cur ? key : ownString(key), s);
  }

  /** Drops an object we deleted (only the version we deleted, when known). */
  forget(namespace: string, name: string, resourceVersion?: string): void {
    const key = keyOf(namespace, name);
    const cur = this.cache.get(key);
    if (cur && (!resourceVersion || !olderThan(resourceVersion, cur.metadata.resourceVersion))) this.cache.delete(key);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let reason: RestartReason | undefined;
      try {
        if (!this.resourceVersion) await this.relist();
        if (!this.running) break;
        const started = Date.now();
        const out = await this.watchOnce();
        if (!this.running || out.kind === 'stopped') break;
        reason = out.kind;
        if (out.kind === 'gone') {
          this.resourceVersion = '';
          failures = 0;
        } else if (out.kind === 'closed') {
          // A normal end (timeoutSeconds) reconnects at once; a server that keeps closing at once gets backoff.
          failures = out.events > 0 || Date.now() - started > 1000 ? 0 : failures + 1;
        } else if (out.kind === 'stalled') {
          failures = Math.max(failures, 1);
          this.cfg.logger.warn({ namespace: this.cfg.namespace ?? '*' }, 'secret watch went silent; reconnecting');
        } else {
          failures++;
          this.cfg.logger.warn({ namespace: this.cfg.namespace ?? '*', ...apiFailure(out.err, this.call('watch'), this.cfg.server), failures }, 'secret watch failed');
        }
      } catch (err) {
        if (!this.running) break;
        if (httpStatus(err) === 410) {
          // An expired continue token or resourceVersion: start over from a fresh list.
          this.resourceVersion = '';
          reason = 'gone';
        } else {
          failures++;
          reason = 'error';
          // One line per attempt: until the first list succeeds the webhook is not ready, and this says why.
          this.cfg.logger.warn({ namespace: this.cfg.namespace ?? '*', ...apiFailure(err, this.call('list'), this.cfg.server), failures }, 'listing secrets failed');
        }
      }
      if (reason) {
        this.stats.restarts++;
        this.cfg.onRestart?.(reason);
      }
      if (failures > 0 && this.running) await sleep(backoffDelay(failures, this.cfg.backoff), this.stopCtl.signal);
    }
  }

  private call(verb: 'list' | 'watch'): ApiCall {
    const ns = this.cfg.namespace;
    return { verb, resource: 'secrets', method: 'GET', path: ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets` : '/api/v1/secrets' };
  }

  private async relist(): Promise<void> {
    const { api, namespace, pageSize, requestTimeoutMs } = this.cfg;
    const items = new Map<string, SecretObject>();
    let cont: string | undefined;
    let rv = '';
    do {
      this.stats.lists++;
      const params = { labelSelector: MANAGED_SELECTOR, limit: pageSize, ...(cont ? { _continue: cont } : {}) };
      const opts = requestTimeout(requestTimeoutMs);
      const list = namespace
        ? await api.listNamespacedSecret({ namespace, ...params }, opts)
        : await api.listSecretForAllNamespaces(params, opts);
      for (const item of list.items) {
        const s = toSecretObject(item);
        if (s && isManaged(s)) items.set(keyOf(s.metadata.namespace, s.metadata.name), s);
      }
      cont = list.metadata?._continue || undefined;
      rv = list.metadata?.resourceVersion ?? '';
    } while (cont && this.running);
    if (!this.running) return;
    this.cache = items;
    this.resourceVersion = rv;
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private watchOnce(): Promise<WatchOutcome> {
    const { namespace, watch, watchTimeoutSeconds, watchdogMs } = this.cfg;
    const path = namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets` : '/api/v1/secrets';
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
        const rv = str((obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion);
        if (type === 'ADDED' || type === 'MODIFIED') {
          const s = toSecretObject(obj);
          if (s) this.observe(s);
        } else if (type === 'DELETED') {
          const s = toSecretObject(obj);
          if (s) this.forget(s.metadata.namespace, s.metadata.name, s.metadata.resourceVersion);
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
            labelSelector: MANAGED_SELECTOR,
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

export class KubeSecretStore implements SecretStore {
  private readonly api: CoreV1Api;
  private readonly reflectors: SecretReflector[];
  private readonly byNamespace = new Map<string, SecretReflector>();
  private readonly all: SecretReflector | undefined;
  private readonly requestTimeoutMs: number;
  private readonly component: string;
  private readonly instance: string;
  private readonly logger: Logger;

  constructor(opts: KubeSecretStoreOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.component = opts.component ?? 'acr-pull-webhook';
    this.instance = opts.instance ?? hostname();
    this.logger = opts.logger ?? silentLogger;
    const watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    const base = {
      api: this.api,
      watch: new Watch(opts.kubeConfig),
      pageSize: opts.pageSize ?? 500,
      watchTimeoutSeconds,
      watchdogMs: watchTimeoutSeconds * 1000 + (opts.watchdogGraceMs ?? 30_000),
      requestTimeoutMs: this.requestTimeoutMs,
      backoff: { initialMs: opts.restartInitialMs ?? 500, maxMs: opts.restartMaxMs ?? 30_000, jitter: 0.2 },
      logger: this.logger,
      onRestart: opts.onRestart,
      server: apiServerOf(opts.kubeConfig),
    };
    const namespaces = [...new Set(opts.namespaces ?? [])];
    if (namespaces.length === 0) {
      this.all = new SecretReflector({ ...base, namespace: undefined });
      this.reflectors = [this.all];
    } else {
      this.reflectors = namespaces.map((ns) => {
        const r = new SecretReflector({ ...base, namespace: ns });
        this.byNamespace.set(ns, r);
        return r;
      });
    }
  }

  /** The reflectors (one for all namespaces, or one per configured namespace), for diagnostics and tests. */
  reflectorList(): readonly SecretReflector[] {
    return this.reflectors;
  }

  private reflectorFor(namespace: string): SecretReflector | undefined {
    return this.all ?? this.byNamespace.get(namespace);
  }

  get(namespace: string, name: string): SecretObject | undefined {
    return this.reflectorFor(namespace)?.get(namespace, name);
  }

  list(): SecretObject[] {
    return this.reflectors.flatMap((r) => [...r.values()]);
  }

  synced(): boolean {
    return this.reflectors.every((r) => r.synced());
  }

  async start(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  async read(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      const s = toSecretObject(await this.api.readNamespacedSecret({ namespace, name }, requestTimeout(this.requestTimeoutMs)));
      if (s) this.reflectorFor(namespace)?.observe(s);
      return s;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async create(secret: SecretObject): Promise<SecretObject> {
    const { namespace, name } = secret.metadata;
    const body = toBody(secret);
    delete body.metadata?.resourceVersion;
    delete body.metadata?.uid;
    try {
      const created = await this.api.createNamespacedSecret({ namespace, body }, requestTimeout(this.requestTimeoutMs));
      return this.written(created, namespace, name);
    } catch (err) {
      if (httpStatus(err) === 409) throw new ConflictError(namespace, name, 'AlreadyExists');
      throw err;
    }
  }

  async replace(secret: SecretObject): Promise<SecretObject> {
    const { namespace, name } = secret.metadata;
    if (!secret.metadata.resourceVersion) throw new Error(`replace of Secret ${namespace}/${name} without resourceVersion`);
    try {
      const replaced = await this.api.replaceNamespacedSecret(
        { namespace, name, body: toBody(secret) },
        requestTimeout(this.requestTimeoutMs),
      );
      return this.written(replaced, namespace, name);
    } catch (err) {
      const status = httpStatus(err);
      if (status === 409) throw new ConflictError(namespace, name, 'Conflict');
      if (status === 404) throw new NotFoundError(namespace, name);
      throw err;
    }
  }

  async delete(namespace: string, name: string, resourceVersion?: string): Promise<boolean> {
    try {
      await this.api.deleteNamespacedSecret(
        { namespace, name, ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}) },
        requestTimeout(this.requestTimeoutMs),
      );
      this.reflectorFor(namespace)?.forget(namespace, name, resourceVersion);
      return true;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 404) {
        this.reflectorFor(namespace)?.forget(namespace, name, resourceVersion);
        return false;
      }
      if (status === 409) throw new ConflictError(namespace, name, 'Conflict');
      throw err;
    }
  }

  async recordEvent(secret: SecretObject, type: EventType, reason: string, message: string): Promise<void> {
    const { namespace, name } = secret.metadata;
    const now = new Date();
    const involved: CoreV1Event['involvedObject'] = { apiVersion: 'v1', kind: 'Secret', namespace, name };
    if (secret.metadata.uid) involved.uid = secret.metadata.uid;
    if (secret.metadata.resourceVersion) involved.resourceVersion = secret.metadata.resourceVersion;
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${name.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`, namespace },
      involvedObject: involved,
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.api.createNamespacedEvent({ namespace, body }, requestTimeout(this.requestTimeoutMs));
    } catch (err) {
      this.logger.debug({ namespace, name, reason, err: describeError(err) }, 'recording event failed');
    }
  }

  private written(raw: V1Secret, namespace: string, name: string): SecretObject {
    const s = toSecretObject(raw);
    if (!s) throw new Error(`API server returned no object for Secret ${namespace}/${name}`);
    this.reflectorFor(namespace)?.observe(s);
    return s;
  }
}
