// Namespace labels for the policy's label selectors and the opt-out label, from an informer so the hot path
// never calls the API. Until the first list arrives labels are unknown, and selectors fail closed.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../pull-secrets/logger.js';

export class NamespaceLabelCache {
  private readonly informer;
  private stopped = false;
  private synced = false;
  private retryMs = 1000;

  constructor(kubeConfig: KubeConfig, private readonly logger: Logger) {
    const api = kubeConfig.makeApiClient(CoreV1Api);
    this.informer = makeInformer<V1Namespace>(kubeConfig, '/api/v1/namespaces', () => api.listNamespace());
    // client-node informers stop on error and do not restart by themselves.
    this.informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'namespace watch failed; restarting');
      setTimeout(() => void this.begin(), this.retryMs).unref();
      this.retryMs = Math.min(this.retryMs * 2, 30_000);
    });
    this.informer.on('connect', () => {
      this.retryMs = 1000;
    });
  }

  start(): Promise<void> {
    return this.begin();
  }

  private async begin(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.informer.start();
      this.synced = true;
    } catch (err) {
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'namespace list failed; retrying');
      setTimeout(() => void this.begin(), this.retryMs).unref();
      this.retryMs = Math.min(this.retryMs * 2, 30_000);
    }
  }

  labels = (namespace: string): Record<string, string> | undefined => {
    if (!this.synced) return undefined;
    return this.informer.get(namespace)?.metadata?.labels ?? {};
  };

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }
}
