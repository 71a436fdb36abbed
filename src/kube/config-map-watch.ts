// One ConfigMap, listed and watched by name (the ACK credential helper's `kube-system/acr-configuration`): its
// data as strings, or undefined while it does not exist. The RBAC Role may name the ConfigMap (resourceNames):
// list and watch carry `fieldSelector=metadata.name=<name>`, which the API server authorizes per name.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../pull-secrets/logger.js';
import { Reflector, reflectorConfig, type ReflectorOptions, type ReflectorSource } from './reflector.js';

export interface ConfigMapData {
  namespace: string;
  name: string;
  resourceVersion?: string;
  uid?: string;
  data: Record<string, string>;
}

export function toConfigMapData(raw: unknown): ConfigMapData | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as { metadata?: Record<string, unknown>; data?: unknown };
  const m = r.metadata;
  if (!m || typeof m.name !== 'string' || typeof m.namespace !== 'string') return undefined;
  const data: Record<string, string> = {};
  if (r.data && typeof r.data === 'object') for (const [k, v] of Object.entries(r.data as Record<string, unknown>)) if (typeof v === 'string') data[k] = v;
  return {
    namespace: m.namespace,
    name: m.name,
    data,
    ...(typeof m.resourceVersion === 'string' ? { resourceVersion: m.resourceVersion } : {}),
    ...(typeof m.uid === 'string' ? { uid: m.uid } : {}),
  };
}

export interface ConfigMapWatchOptions extends ReflectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
}

export class ConfigMapWatch {
  private readonly reflector: Reflector<ConfigMapData>;
  private readonly key: string;

  constructor(opts: ConfigMapWatchOptions) {
    const api = opts.kubeConfig.makeApiClient(CoreV1Api);
    const { namespace, name } = opts;
    this.key = `${namespace}/${name}`;
    const source: ReflectorSource<ConfigMapData> = {
      kind: 'configmap',
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      fieldSelector: `metadata.name=${name}`,
      list: (params, o) => api.listNamespacedConfigMap({ namespace, ...params }, o),
      convert: toConfigMapData,
      key: (c) => `${c.namespace}/${c.name}`,
      resourceVersion: (c) => c.resourceVersion,
    };
    this.reflector = new Reflector(source, reflectorConfig(opts.kubeConfig, { ...opts, logger: opts.logger ?? silentLogger }), namespace);
  }

  /** The ConfigMap now; undefined when it does not exist (or before the first list). */
  current(): ConfigMapData | undefined {
    return this.reflector.get(this.key);
  }

  /** Called after every change (and after a relist). */
  onChange(listener: () => void): void {
    this.reflector.onEvent(() => listener());
  }

  synced(): boolean {
    return this.reflector.synced();
  }

  start(): Promise<void> {
    return this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }
}
