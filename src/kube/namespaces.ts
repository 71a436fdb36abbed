// Namespace labels for the policy's label selectors and the opt-out label, from an informer so the hot path
// never calls the API. Until the first list arrives labels are unknown (selectors would fail closed), so the
// cache counts for readiness (src/readiness.ts) and reviews wait for it.
import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../pull-secrets/logger.js';
import { apiFailure, apiServerOf, type ApiCall } from './api-util.js';

const LIST: ApiCall = { verb: 'list', resource: 'namespaces', method: 'GET', path: '/api/v1/namespaces' };
const WATCH: ApiCall = { ...LIST, verb: 'watch' };

export class NamespaceLabelCache {
  readonly name = 'namespaces';
  private readonly informer;
  private readonly server: string | undefined;
  private stopped = false;
  private hasSynced = false;
  private retryMs = 1000;
  private retry: NodeJS.Timeout | undefined;

  constructor(kubeConfig: KubeConfig, private readonly logger: Logger) {
    const api = kubeConfig.makeApiClient(CoreV1Api);
    this.server = apiServerOf(kubeConfig);
    // client-node's informer (makeInformer) is this ListWatch, not started at construction.
    this.informer = new ListWatch<V1Namespace>('/api/v1/namespaces', new Watch(kubeConfig), () => api.listNamespace(), false);
    // client-node informers report list and watch failures here, stop, and do not restart by themselves.
    this.informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      // No resourceVersion yet (or again, after 410 Gone): it was the list that failed.
      const listing = this.informer.latestResourceVersion() === '';
      this.logger.warn({ ...apiFailure(err, listing ? LIST : WATCH, this.server), retryMs: this.retryMs }, listing ? 'listing namespaces failed' : 'namespace watch failed');
      this.scheduleRetry();
    });
    this.informer.on('connect', () => {
      if (this.hasSynced) this.retryMs = 1000;
    });
  }

  start(): Promise<void> {
    return this.begin();
  }

  /** True once a list has filled the cache (it stays true: a later watch failure keeps the last known labels). */
  synced(): boolean {
    return this.hasSynced;
  }

  private scheduleRetry(): void {
    if (this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.begin();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }

  private async begin(): Promise<void> {
    if (this.stopped) return;
    try {
      // Resolves after the list (or its failure, reported through 'error') and once the watch is open.
      await this.informer.start();
    } catch (err) {
      this.logger.warn({ ...apiFailure(err, LIST, this.server) }, 'listing namespaces failed');
      this.scheduleRetry();
      return;
    }
    if (!this.hasSynced && this.informer.latestResourceVersion() !== '') {
      this.hasSynced = true;
      this.retryMs = 1000;
    }
  }

  labels = (namespace: string): Record<string, string> | undefined => {
    if (!this.hasSynced) return undefined;
    return this.informer.get(namespace)?.metadata?.labels ?? {};
  };

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.informer.stop();
  }
}
