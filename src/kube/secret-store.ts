// SecretStore over the Kubernetes API. The cache is a Reflector (src/kube/reflector.ts) of the Secrets carrying
// the managed-by label: list, then watch from the list's resourceVersion, bounded and restarted with backoff.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { isManaged, MANAGED_SELECTOR } from '../pull-secrets/docker-config.js';
import { silentLogger } from '../pull-secrets/logger.js';
import {
  ConflictError,
  NotFoundError,
  type EventType,
  type SecretMetadata,
  type SecretObject,
  type SecretStore,
} from '../pull-secrets/store.js';
import { keyOf } from '../pull-secrets/util.js';
import { EventRecorder } from './events.js';
import { httpStatus, requestTimeout, timeMs } from './api-util.js';
import { Reflector, reflectorConfig, type ReflectorConfig, type ReflectorOptions, type ReflectorSource } from './reflector.js';

export type { RestartReason } from './reflector.js';

export interface KubeSecretStoreOptions extends ReflectorOptions {
  kubeConfig: KubeConfig;
  /** Namespaces to cache managed Secrets from; all namespaces when absent or empty. */
  namespaces?: readonly string[];
  /** Event source (default `acr-pull-webhook`) and reporting instance (default the host name). */
  component?: string;
  instance?: string;
}

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

/** The managed Secrets of one namespace (or all), listed and watched by label. */
export function secretSource(api: CoreV1Api, namespace: string | undefined): ReflectorSource<SecretObject> {
  return {
    kind: 'secret',
    path: namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets` : '/api/v1/secrets',
    labelSelector: MANAGED_SELECTOR,
    list: (params, opts) => (namespace ? api.listNamespacedSecret({ namespace, ...params }, opts) : api.listSecretForAllNamespaces(params, opts)),
    convert: toSecretObject,
    key: (s) => keyOf(s.metadata.namespace, s.metadata.name),
    resourceVersion: (s) => s.metadata.resourceVersion,
    accept: isManaged,
  };
}

/** List + watch of the managed Secrets of one namespace (or all), kept in a Map. */
export class SecretReflector extends Reflector<SecretObject> {
  constructor(
    cfg: ReflectorConfig,
    api: CoreV1Api,
    readonly namespace: string | undefined,
  ) {
    super(secretSource(api, namespace), cfg, namespace ?? '*');
  }

  getSecret(namespace: string, name: string): SecretObject | undefined {
    return this.get(keyOf(namespace, name));
  }

  forgetSecret(namespace: string, name: string, resourceVersion?: string): void {
    this.forget(keyOf(namespace, name), resourceVersion);
  }
}

export class KubeSecretStore implements SecretStore {
  private readonly api: CoreV1Api;
  private readonly reflectors: SecretReflector[];
  private readonly byNamespace = new Map<string, SecretReflector>();
  private readonly all: SecretReflector | undefined;
  private readonly requestTimeoutMs: number;
  private readonly events: EventRecorder;

  constructor(opts: KubeSecretStoreOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    const logger = opts.logger ?? silentLogger;
    this.events = new EventRecorder(this.api, { ...opts, requestTimeoutMs: this.requestTimeoutMs, logger });
    const base = reflectorConfig(opts.kubeConfig, { ...opts, requestTimeoutMs: this.requestTimeoutMs, logger });
    const namespaces = [...new Set(opts.namespaces ?? [])];
    if (namespaces.length === 0) {
      this.all = new SecretReflector(base, this.api, undefined);
      this.reflectors = [this.all];
    } else {
      this.reflectors = namespaces.map((ns) => {
        const r = new SecretReflector(base, this.api, ns);
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
    return this.reflectorFor(namespace)?.getSecret(namespace, name);
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
      this.reflectorFor(namespace)?.forgetSecret(namespace, name, resourceVersion);
      return true;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 404) {
        this.reflectorFor(namespace)?.forgetSecret(namespace, name, resourceVersion);
        return false;
      }
      if (status === 409) throw new ConflictError(namespace, name, 'Conflict');
      throw err;
    }
  }

  async recordEvent(secret: SecretObject, type: EventType, reason: string, message: string): Promise<void> {
    const { namespace, name, uid, resourceVersion } = secret.metadata;
    await this.events.record({ kind: 'Secret', namespace, name, ...(uid ? { uid } : {}), ...(resourceVersion ? { resourceVersion } : {}) }, type, reason, message);
  }

  private written(raw: V1Secret, namespace: string, name: string): SecretObject {
    const s = toSecretObject(raw);
    if (!s) throw new Error(`API server returned no object for Secret ${namespace}/${name}`);
    this.reflectorFor(namespace)?.observe(s);
    return s;
  }
}
