// Everything cluster mode needs from @kubernetes/client-node, in one module that main.ts imports only in
// cluster mode (the library's generated models cost ~70 MiB of RSS on their own).
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterParts } from '../runtime.js';
import type { Logger } from '../pull-secrets/logger.js';
import { KubeLeaseApi, LeaseLeaderElector } from './leader.js';
import { NamespaceLabelCache } from './namespaces.js';
import { KubeSecretStore } from './secret-store.js';
import { KubeUsageSource } from './usage.js';

/** KUBECONFIG or in-cluster configuration; refuses client-node's silent fallback to http://localhost:8080. */
export function loadKubeConfig(env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  else kc.loadFromCluster();
  const server = kc.getCurrentCluster()?.server;
  if (!server || server === 'http://localhost:8080') throw new Error('no usable Kubernetes cluster in the configuration (set KUBECONFIG or run in a cluster)');
  return kc;
}

export function clusterParts(env: NodeJS.ProcessEnv, opts: { ownNamespace: string; replica?: string; logger: Logger }): ClusterParts {
  const kubeConfig = loadKubeConfig(env);
  const { logger } = opts;
  return {
    store: new KubeSecretStore({ kubeConfig, logger }),
    leader: new LeaseLeaderElector({
      api: new KubeLeaseApi(kubeConfig),
      namespace: opts.ownNamespace,
      name: 'acr-pull-webhook-leader',
      identity: opts.replica || hostname(),
      logger,
      onChange: (leading) => logger.info({ leading }, leading ? 'leading: refreshing and collecting Secrets' : 'no longer leading'),
    }),
    usage: new KubeUsageSource({ kubeConfig }),
    namespaces: new NamespaceLabelCache(kubeConfig, logger),
  };
}
