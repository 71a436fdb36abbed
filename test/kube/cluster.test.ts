// Cluster mode's parts (src/kube/cluster.ts): the kubeconfig it accepts (KUBECONFIG or in-cluster, never
// client-node's http://localhost:8080 fallback) and what clusterParts builds from it, against the fake API server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clusterParts, DEFAULT_WEBHOOK, loadKubeConfig } from '../../src/kube/cluster.js';
import type { ClusterParts } from '../../src/runtime.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';
import { loggerInto, type LogRecord } from '../support/log-records.js';

const REFUSED = 'no usable Kubernetes cluster in the configuration (set KUBECONFIG or run in a cluster)';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kube-cluster-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function kubeconfigFile(server: string | undefined, name = 'kubeconfig'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: server === undefined ? [] : [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'test-token' } }],
      contexts: server === undefined ? [] : [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      ...(server === undefined ? {} : { 'current-context': 'x' }),
    }),
  );
  return file;
}

describe('loadKubeConfig', () => {
  it('KUBECONFIG: that file’s current cluster, whatever the in-cluster variables say', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const kc = loadKubeConfig({ KUBECONFIG: kubeconfigFile('https://127.0.0.1:6443') });
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect(kc.getCurrentUser()?.token).toBe('test-token');
  });

  it('without KUBECONFIG: the in-cluster service address', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const kc = loadKubeConfig({});
    expect(kc.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
    expect(kc.getCurrentCluster()?.name).toBe('inCluster');
  });

  it('an empty KUBECONFIG counts as none: in-cluster', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', 'fd00::1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
    expect(loadKubeConfig({ KUBECONFIG: '' }).getCurrentCluster()?.server).toBe('https://[fd00::1]:6443');
  });

  it('refuses client-node’s fallback http://localhost:8080, from a file or in-cluster', () => {
    expect(() => loadKubeConfig({ KUBECONFIG: kubeconfigFile('http://localhost:8080') })).toThrow(new Error(REFUSED));
    vi.stubEnv('KUBERNETES_SERVICE_HOST', 'localhost');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '8080');
    expect(() => loadKubeConfig({})).toThrow(new Error(REFUSED));
  });

  it('refuses to go on without KUBECONFIG and outside a cluster (client-node would dial https://undefined:undefined)', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', undefined);
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    expect(() => loadKubeConfig({})).toThrow(new Error(REFUSED));
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', undefined);
    expect(() => loadKubeConfig({})).toThrow(new Error(REFUSED));
  });

  it('refuses a file without a current cluster', () => {
    expect(() => loadKubeConfig({ KUBECONFIG: kubeconfigFile(undefined) })).toThrow(new Error(REFUSED));
  });

  it('accepts another address on port 8080 (only the exact fallback is refused)', () => {
    expect(loadKubeConfig({ KUBECONFIG: kubeconfigFile('http://127.0.0.1:8080') }).getCurrentCluster()?.server).toBe('http://127.0.0.1:8080');
  });

  it('a missing KUBECONFIG file: the read error', () => {
    expect(() => loadKubeConfig({ KUBECONFIG: join(dir, 'missing') })).toThrow(/ENOENT/);
  });
});

describe('clusterParts', () => {
  let api: FakeApiServer;
  let parts: ClusterParts | undefined;
  let logs: LogRecord[];
  const logger = loggerInto(() => logs);
  const messages = (msg: string) => logs.filter((l) => l.msg === msg).map((l) => l.obj);

  beforeEach(async () => {
    logs = [];
    api = new FakeApiServer();
    await api.start();
  });
  afterEach(async () => {
    if (parts) {
      parts.webhookConditions?.stop();
      await Promise.all([parts.leader.stop(), parts.namespaces.stop(), parts.serviceAccounts.stop(), parts.helperConfigMap?.stop(), parts.store.stop()]);
    }
    parts = undefined;
    await api.stop();
  });

  const env = () => ({ KUBECONFIG: kubeconfigFile(api.url) });

  it('refuses the configuration as loadKubeConfig does', () => {
    expect(() => clusterParts({ KUBECONFIG: kubeconfigFile('http://localhost:8080') }, { ownNamespace: 'acr-system', logger })).toThrow(new Error(REFUSED));
  });

  it('without a webhook configuration or helper ConfigMap: only the always-present parts', () => {
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: 'webhook-7', logger });
    expect(Object.keys(parts).sort()).toEqual(['leader', 'namespaces', 'serviceAccounts', 'store', 'usage']);
  });

  it('the leader: Lease acr-pull-webhook-leader in its own namespace, held as the replica, logged on change and released on stop', async () => {
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: 'webhook-7', logger });
    parts.leader.start();
    await waitFor(() => parts!.leader.isLeader(), 5000, 'leadership');
    expect([...api.leases.keys()]).toEqual(['acr-system/acr-pull-webhook-leader']);
    expect(api.leases.get('acr-system/acr-pull-webhook-leader')!.spec.holderIdentity).toBe('webhook-7');
    expect(messages('leading: refreshing and collecting Secrets')).toEqual([{ leading: true }]);
    await parts.leader.stop();
    expect(api.leases.get('acr-system/acr-pull-webhook-leader')!.spec.holderIdentity).toBe('');
    expect(messages('no longer leading')).toEqual([{ leading: false }]);
  });

  it('without a replica name: the host name holds the Lease and signs Events', async () => {
    api.configMaps = [{ metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '5' }, data: {} }];
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: '', logger, helperConfigMap: { namespace: 'kube-system', name: 'acr-configuration' } });
    parts.leader.start();
    await waitFor(() => parts!.leader.isLeader(), 5000, 'leadership');
    expect(api.leases.get('acr-system/acr-pull-webhook-leader')!.spec.holderIdentity).toBe(hostname());
    await parts.helperConfigMap!.recordEvent({ namespace: 'kube-system', name: 'acr-configuration', data: {} }, 'Normal', 'Read', 'read');
    expect(api.events).toHaveLength(1);
    expect(api.events[0]).toMatchObject({ reportingInstance: hostname(), source: { component: 'acr-pull-webhook', host: hostname() } });
  });

  it('the helper ConfigMap: its location, listed by name, current, synced, and Events on it from the replica', async () => {
    api.configMaps = [
      { metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '5', uid: 'cm-uid' }, data: { 'watch-namespace': 'apps' } },
      { metadata: { namespace: 'kube-system', name: 'other', resourceVersion: '6' }, data: { x: 'y' } },
    ];
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: 'webhook-7', logger, helperConfigMap: { namespace: 'kube-system', name: 'acr-configuration' } });
    expect(Object.keys(parts).sort()).toEqual(['helperConfigMap', 'leader', 'namespaces', 'serviceAccounts', 'store', 'usage']);
    const cm = parts.helperConfigMap!;
    expect(cm.location).toBe('kube-system/acr-configuration');
    expect(cm.synced()).toBe(false);
    expect(cm.current()).toBeUndefined();
    let changes = 0;
    cm.onChange(() => changes++);
    await cm.start();
    expect(cm.synced()).toBe(true);
    expect(cm.current()).toEqual({ namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '5', uid: 'cm-uid', data: { 'watch-namespace': 'apps' } });
    expect(changes).toBeGreaterThanOrEqual(1);
    const list = api.requests.find((r) => r.path === '/api/v1/namespaces/kube-system/configmaps' && !r.watch)!;
    expect(list.query.get('fieldSelector')).toBe('metadata.name=acr-configuration');
    const watches = () => api.requests.filter((r) => r.path === '/api/v1/namespaces/kube-system/configmaps' && r.watch).length;
    await waitFor(() => watches() === 1, 5000, 'the watch');
    // stop reaches the watch: it ends, and a start after it watches again.
    await cm.stop();
    await cm.start();
    await waitFor(() => watches() === 2, 5000, 'a new watch');

    await cm.recordEvent(cm.current()!, 'Warning', 'InvalidConfiguration', 'watch-namespace: bad');
    await cm.recordEvent({ namespace: 'kube-system', name: 'acr-configuration', data: {} }, 'Normal', 'Applied', 'ok');
    expect(api.events.map((e) => [e.involvedObject, e.type, e.reason, e.message, e.reportingInstance])).toEqual([
      [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-system', name: 'acr-configuration', uid: 'cm-uid' }, 'Warning', 'InvalidConfiguration', 'watch-namespace: bad', 'webhook-7'],
      [{ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-system', name: 'acr-configuration' }, 'Normal', 'Applied', 'ok', 'webhook-7'],
    ]);
  });

  it('the webhook configuration: started by the runtime, it reads the named MutatingWebhookConfiguration while leading; stop ends it', async () => {
    expect(DEFAULT_WEBHOOK).toBe('default.acr-pull-webhook.k8s.aliyun.com');
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: 'webhook-7', logger, webhookConfiguration: 'acr-pull-webhook' });
    expect(Object.keys(parts).sort()).toEqual(['leader', 'namespaces', 'serviceAccounts', 'store', 'usage', 'webhookConditions']);
    const path = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/acr-pull-webhook';
    // Stopping before a start is harmless.
    parts.webhookConditions!.stop();
    parts.leader.start();
    await waitFor(() => parts!.leader.isLeader(), 5000, 'leadership');
    parts.webhookConditions!.start(() => undefined);
    await waitFor(() => api.count('GET', path) >= 1, 5000, 'the configuration read');
    parts.webhookConditions!.stop();
    const reads = api.count('GET', path);
    // The fake has no webhook configurations (404): a running sync would read again within 1.5 s (500 ms ticks,
    // 1 s backoff after the failure).
    await new Promise((r) => setTimeout(r, 3000));
    expect(api.count('GET', path)).toBe(reads);
  });

  it('the caches and the usage source read this API server: namespace labels, ServiceAccounts, Secrets, references', async () => {
    api.namespaces = [{ metadata: { name: 'apps', labels: { team: 'a' } } }];
    api.serviceAccounts = [{ metadata: { namespace: 'apps', name: 'builder', resourceVersion: '3' }, imagePullSecrets: [{ name: 'from-sa' }] }];
    api.pods = [{ metadata: { namespace: 'apps', name: 'p' }, spec: { imagePullSecrets: [{ name: 'from-pod' }] } }];
    parts = clusterParts(env(), { ownNamespace: 'acr-system', replica: 'webhook-7', logger });
    await Promise.all([parts.namespaces.start(), parts.serviceAccounts.start(), parts.store.start()]);
    expect(parts.namespaces.labels('apps')).toEqual({ team: 'a' });
    expect(parts.store.synced()).toBe(true);
    expect([...(await parts.usage.referenced())].sort()).toEqual(['apps/from-pod', 'apps/from-sa']);
  });
});

describe('the default webhook entry', () => {
  let mod: typeof import('../../src/kube/cluster.js');
  beforeEach(async () => {
    // Loaded here, not at the top: the constant is then evaluated under each test (Stryker credits it).
    vi.resetModules();
    mod = await import('../../src/kube/cluster.js');
  });

  it('is the name the manifests give the fail-open entry for unannotated objects', async () => {
    const { readFileSync } = await import('node:fs');
    expect(mod.DEFAULT_WEBHOOK).toBe('default.acr-pull-webhook.k8s.aliyun.com');
    expect(readFileSync(new URL('../../manifests/base/webhooks.yaml', import.meta.url), 'utf8')).toContain('name: default.acr-pull-webhook.k8s.aliyun.com\n');
  });
});
