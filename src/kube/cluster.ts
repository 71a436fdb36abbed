// Everything cluster mode needs from @kubernetes/client-node, in one module that server-main.ts imports only in
// cluster mode (the library's generated models cost ~70 MiB of RSS on their own).
import { hostname } from 'node:os';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ClusterParts } from '../runtime.js';
import type { Logger } from '../pull-secrets/logger.js';
import { KubeLeaseApi, LeaseLeaderElector } from './leader.js';
import { NamespaceLabelCache } from './namespaces.js';
import { ConfigMapWatch } from './config-map-watch.js';
import { EventRecorder } from './events.js';
import { KubeSecretStore } from './secret-store.js';
import { ServiceAccountCache } from './service-accounts.js';
import { WebhookConditionsSync } from './webhook-conditions.js';
import { KubeUsageSource, withServiceAccountReferences } from './usage.js';

/** KUBECONFIG or in-cluster configuration; refuses client-node's silent fallback to http://localhost:8080. */
export function loadKubeConfig(env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  // client-node reads the in-cluster variables from the process environment itself; without them it would build
  // https://undefined:undefined, and start-up would fail later on every call instead of here with the reason.
  else if (process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT) kc.loadFromCluster();
  const server = kc.getCurrentCluster()?.server;
  if (!server || server === 'http://localhost:8080') throw new Error('no usable Kubernetes cluster in the configuration (set KUBECONFIG or run in a cluster)');
  return kc;
}

export interface ClusterPartsOptions {
  ownNamespace: string;
  replica?: string;
  logger: Logger;
  /** The credential helper's ConfigMap to watch, if any. */
  helperConfigMap?: { namespace: string; name: string };
  /** The webhook's own MutatingWebhookConfiguration, whose default entry's matchConditions the leader keeps. */
  webhookConfiguration?: string;
}

/** The entry of the configuration that gets the generated condition (the fail-open one for unannotated objects). */
export const DEFAULT_WEBHOOK = 'default.acr-pull-webhook.k8s.aliyun.com';

export function clusterParts(env: NodeJS.ProcessEnv, opts: ClusterPartsOptions): ClusterParts {
  const kubeConfig = loadKubeConfig(env);
  const { logger } = opts;
  const serviceAccounts = new ServiceAccountCache({ kubeConfig, logger });
  const events = new EventRecorder(kubeConfig.makeApiClient(CoreV1Api), { logger, ...(opts.replica ? { instance: opts.replica } : {}) });
  const cm = opts.helperConfigMap;
  const watch = cm ? new ConfigMapWatch({ kubeConfig, namespace: cm.namespace, name: cm.name, logger }) : undefined;
  const leader = new LeaseLeaderElector({
    api: new KubeLeaseApi(kubeConfig),
    namespace: opts.ownNamespace,
    name: 'acr-pull-webhook-leader',
    identity: opts.replica || hostname(),
    logger,
    onChange: (leading) => logger.info({ leading }, leading ? 'leading: refreshing and collecting Secrets' : 'no longer leading'),
  });
  let conditions: WebhookConditionsSync | undefined;
  return {
    ...(opts.webhookConfiguration
      ? {
          webhookConditions: {
            start: (desired) => {
              conditions = new WebhookConditionsSync({ kubeConfig, configuration: opts.webhookConfiguration!, webhook: DEFAULT_WEBHOOK, leader, desired, logger });
              conditions.start();
            },
            stop: () => conditions?.stop(),
          },
        }
      : {}),
    store: new KubeSecretStore({ kubeConfig, logger }),
    leader,
    usage: withServiceAccountReferences(new KubeUsageSource({ kubeConfig }), serviceAccounts),
    namespaces: new NamespaceLabelCache(kubeConfig, logger),
    serviceAccounts,
    ...(cm && watch
      ? {
          helperConfigMap: {
            location: `${cm.namespace}/${cm.name}`,
            current: () => watch.current(),
            onChange: (l: () => void) => watch.onChange(l),
            synced: () => watch.synced(),
            start: () => watch.start(),
            stop: () => watch.stop(),
            recordEvent: (c, type, reason, message) =>
              events.record({ kind: 'ConfigMap', namespace: c.namespace, name: c.name, ...(c.uid ? { uid: c.uid } : {}) }, type, reason, message),
          },
        }
      : {}),
  };
}
