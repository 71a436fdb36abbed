// ServiceAccounts, listed and watched cluster-wide into a compact cache: the Pod path reads a ServiceAccount's
// ACR annotations from it (no API call on the hot path), and the leader reads which pull Secrets each one lists
// when it patches them as the ACK credential helper does. Only what those two need is kept per object.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import type { EventType } from '../pull-secrets/store.js';
import { keyOf } from '../pull-secrets/util.js';
import type { ServiceAccountInfo, ServiceAccountWriter } from '../pull-secrets/service-account-sync.js';
import { httpStatus, requestTimeout } from './api-util.js';
import { EventRecorder } from './events.js';
import { Reflector, reflectorConfig, type ReflectorEvent, type ReflectorOptions, type ReflectorSource } from './reflector.js';
import { toServiceAccountInfo } from './service-account-info.js';

export { toServiceAccountInfo } from './service-account-info.js';

export interface ServiceAccountCacheOptions extends ReflectorOptions {
  kubeConfig: KubeConfig;
}

export class ServiceAccountCache implements ServiceAccountWriter {
  private readonly api: CoreV1Api;
  private readonly reflector: Reflector<ServiceAccountInfo>;
  private readonly events: EventRecorder;
  private readonly requestTimeoutMs: number;

  constructor(opts: ServiceAccountCacheOptions) {
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    const logger: Logger = opts.logger ?? silentLogger;
    const api = this.api;
    const source: ReflectorSource<ServiceAccountInfo> = {
      kind: 'serviceaccount',
      path: '/api/v1/serviceaccounts',
      list: (params, o) => api.listServiceAccountForAllNamespaces(params, o),
      convert: toServiceAccountInfo,
      key: (sa) => keyOf(sa.namespace, sa.name),
      resourceVersion: (sa) => sa.resourceVersion,
    };
    this.reflector = new Reflector(source, reflectorConfig(opts.kubeConfig, { ...opts, logger }));
    this.events = new EventRecorder(this.api, { requestTimeoutMs: this.requestTimeoutMs, logger });
  }

  /** The hot path's lookup: synchronous, never an API call. Undefined until synced or when absent. */
  get = (namespace: string, name: string): ServiceAccountInfo | undefined => this.reflector.get(keyOf(namespace, name));

  list(): IterableIterator<ServiceAccountInfo> {
    return this.reflector.values();
  }

  onEvent(listener: (e: ReflectorEvent<ServiceAccountInfo>) => void): void {
    this.reflector.onEvent(listener);
  }

  synced(): boolean {
    return this.reflector.synced();
  }

  /** Resolves once the first list has filled the cache. */
  start(): Promise<void> {
    return this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  /**
   * Appends pull Secret references, only to the version read (a JSON patch that tests the resourceVersion): the
   * rest of the object is never sent back, so fields this process does not know survive. Rejects on a conflict;
   * the watch brings the new version and the next pass tries again.
   */
  async addPullSecrets(sa: ServiceAccountInfo, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const ops: object[] = [];
    if (sa.resourceVersion) ops.push({ op: 'test', path: '/metadata/resourceVersion', value: sa.resourceVersion });
    if (sa.imagePullSecrets === undefined) ops.push({ op: 'add', path: '/imagePullSecrets', value: names.map((name) => ({ name })) });
    else for (const name of names) ops.push({ op: 'add', path: '/imagePullSecrets/-', value: { name } });
    try {
      const updated = await this.api.patchNamespacedServiceAccount(
        // client-node's first preferred media type for PATCH is application/json-patch+json.
        { namespace: sa.namespace, name: sa.name, body: ops, fieldManager: 'acr-pull-webhook' },
        requestTimeout(this.requestTimeoutMs),
      );
      const info = toServiceAccountInfo(updated);
      if (info) this.reflector.observe(info);
    } catch (err) {
      const status = httpStatus(err);
      // A failed `test` is 422 (Invalid) or 409: the object changed since it was read.
      if (status === 409 || status === 422 || status === 404) throw new ServiceAccountChangedError(sa.namespace, sa.name);
      throw err;
    }
  }

  async recordEvent(sa: Pick<ServiceAccountInfo, 'namespace' | 'name' | 'uid'>, type: EventType, reason: string, message: string): Promise<void> {
    await this.events.record({ kind: 'ServiceAccount', namespace: sa.namespace, name: sa.name, ...(sa.uid ? { uid: sa.uid } : {}) }, type, reason, message);
  }
}

export class ServiceAccountChangedError extends Error {
  constructor(namespace: string, name: string) {
    super(`ServiceAccount ${namespace}/${name} changed or vanished while being patched`);
    this.name = 'ServiceAccountChangedError';
  }
}
