// Which pull Secrets are referenced right now, read from the API: Pods' `spec.imagePullSecrets` (same
// namespace) and ECI ImageCaches' `spec.imagePullSecrets` (`"namespace:name"`, cluster-scoped
// eci.alibabacloud.com/v1 imagecaches; a missing CRD counts as no ImageCaches).
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1PodList } from '@kubernetes/client-node';
import type { UsageSource } from '../pull-secrets/collector.js';
import { keyOf } from '../pull-secrets/util.js';
import { httpStatus, requestTimeout } from './api-util.js';

export interface KubeUsageSourceOptions {
  kubeConfig: KubeConfig;
  /** Namespaces the webhook serves; all when absent or empty. */
  namespaces?: readonly string[];
  /** List page size (default 500). */
  pageSize?: number;
  /** Timeout of each list request (default 30 s). */
  requestTimeoutMs?: number;
  /** Look at ImageCaches too (default true). */
  imageCaches?: boolean;
  /** Above this many namespaces, one cluster-wide Pod list replaces per-namespace lists (default 20). */
  perNamespaceLimit?: number;
}

export const IMAGE_CACHE_GROUP = 'eci.alibabacloud.com';
export const IMAGE_CACHE_VERSION = 'v1';
export const IMAGE_CACHE_PLURAL = 'imagecaches';

interface ImageCacheList {
  items?: Array<{ spec?: { imagePullSecrets?: unknown } }>;
  metadata?: { continue?: string };
}

export class KubeUsageSource implements UsageSource {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly namespaces: readonly string[];
  private readonly pageSize: number;
  private readonly requestTimeoutMs: number;
  private readonly imageCaches: boolean;
  private readonly perNamespaceLimit: number;

  constructor(opts: KubeUsageSourceOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.namespaces = [...new Set(opts.namespaces ?? [])];
    this.pageSize = opts.pageSize ?? 500;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.imageCaches = opts.imageCaches ?? true;
    this.perNamespaceLimit = opts.perNamespaceLimit ?? 20;
  }

  async referenced(namespaces?: readonly string[]): Promise<Set<string>> {
    const refs = new Set<string>();
    let scope = namespaces && namespaces.length > 0 ? [...new Set(namespaces)] : [...this.namespaces];
    if (this.namespaces.length > 0) scope = scope.filter((ns) => this.namespaces.includes(ns));
    const wanted = new Set(scope);
    if (scope.length > 0 && scope.length <= this.perNamespaceLimit) {
      for (const ns of scope) await this.pods(refs, ns);
    } else {
      await this.pods(refs, undefined, scope.length > 0 ? wanted : undefined);
    }
    if (this.imageCaches) await this.caches(refs);
    return refs;
  }

  private async pods(refs: Set<string>, namespace: string | undefined, keep?: Set<string>): Promise<void> {
    let cont: string | undefined;
    do {
      const params = { limit: this.pageSize, ...(cont ? { _continue: cont } : {}) };
      const opts = requestTimeout(this.requestTimeoutMs);
      const list: V1PodList = namespace
        ? await this.core.listNamespacedPod({ namespace, ...params }, opts)
        : await this.core.listPodForAllNamespaces(params, opts);
      for (const pod of list.items) {
        const ns = pod.metadata?.namespace;
        if (!ns || (keep && !keep.has(ns))) continue;
        for (const ref of pod.spec?.imagePullSecrets ?? []) if (ref.name) refs.add(keyOf(ns, ref.name));
      }
      cont = list.metadata?._continue || undefined;
    } while (cont);
  }

  private async caches(refs: Set<string>): Promise<void> {
    let cont: string | undefined;
    do {
      let list: ImageCacheList;
      try {
        list = (await this.custom.listClusterCustomObject(
          {
            group: IMAGE_CACHE_GROUP,
            version: IMAGE_CACHE_VERSION,
            plural: IMAGE_CACHE_PLURAL,
            limit: this.pageSize,
            ...(cont ? { _continue: cont } : {}),
          },
          requestTimeout(this.requestTimeoutMs),
        )) as ImageCacheList;
      } catch (err) {
        if (httpStatus(err) === 404) return; // the CRD is not installed: no ImageCaches
        throw err;
      }
      for (const ic of list.items ?? []) {
        const secrets = ic.spec?.imagePullSecrets;
        if (!Array.isArray(secrets)) continue;
        for (const s of secrets) {
          if (typeof s !== 'string') continue;
          const i = s.indexOf(':');
          if (i > 0 && i < s.length - 1) refs.add(keyOf(s.slice(0, i), s.slice(i + 1)));
        }
      }
      cont = list.metadata?.continue || undefined;
    } while (cont);
  }
}

/**
 * Pods' and ImageCaches' references plus those of ServiceAccounts (from their cache): a Secret the credential
 * helper's configuration put on a ServiceAccount is in use while it is listed there, even when no Pod runs.
 */
export function withServiceAccountReferences(usage: UsageSource, accounts: { list(): Iterable<{ namespace: string; imagePullSecrets?: string[] }> }): UsageSource {
  return {
    async referenced(namespaces?: readonly string[]): Promise<Set<string>> {
      const refs = await usage.referenced(namespaces);
      const scope = namespaces && namespaces.length > 0 ? new Set(namespaces) : undefined;
      for (const sa of accounts.list()) {
        if (scope && !scope.has(sa.namespace)) continue;
        for (const name of sa.imagePullSecrets ?? []) if (name) refs.add(keyOf(sa.namespace, name));
      }
      return refs;
    },
  };
}
