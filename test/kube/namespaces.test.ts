// The namespace label cache (src/kube/namespaces.ts) against the fake API server: unknown until the first list,
// then the labels of the list and of later watch events; list and watch failures logged and retried with backoff.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NamespaceLabelCache } from '../../src/kube/namespaces.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';
import { loggerInto, type LogRecord } from '../support/log-records.js';

const RBAC = "check RBAC: the webhook's ServiceAccount may not list namespaces; apply manifests/base/rbac.yaml (ClusterRole and Role acr-pull-webhook*), see manifests/README.md";

let api: FakeApiServer;
let cache: NamespaceLabelCache | undefined;
let logs: LogRecord[];
const logger = loggerInto(() => logs);
const warnings = () => logs.filter((l) => l.level === 'warn');
const lists = () => api.count('GET', '/api/v1/namespaces', { watch: false });

beforeEach(async () => {
  logs = [];
  api = new FakeApiServer();
  await api.start();
  api.namespaces = [
    { metadata: { name: 'team-a', resourceVersion: '11', labels: { team: 'a', tier: 'prod' } } },
    { metadata: { name: 'plain', resourceVersion: '12' } },
  ];
});
afterEach(async () => {
  await cache?.stop();
  cache = undefined;
  await api.stop();
});

describe('NamespaceLabelCache', () => {
  it('before the first list: not synced, every namespace’s labels unknown', () => {
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    expect(cache.name).toBe('namespaces');
    expect(cache.synced()).toBe(false);
    expect(cache.labels('team-a')).toBeUndefined();
    expect(lists()).toBe(0);
  });

  it('after the list: synced; the listed labels, {} for a namespace without labels or not listed', async () => {
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    expect(cache.synced()).toBe(true);
    expect(cache.labels('team-a')).toEqual({ team: 'a', tier: 'prod' });
    expect(cache.labels('plain')).toEqual({});
    expect(cache.labels('nowhere')).toEqual({});
    expect(lists()).toBe(1);
    expect(api.openNamespaceWatches()).toBe(1);
    expect(logs).toEqual([]);
  });

  it('follows the watch: a new namespace, changed labels, a deleted namespace', async () => {
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    api.putNamespace({ metadata: { name: 'team-b', labels: { team: 'b' } } });
    await waitFor(() => cache!.labels('team-b')?.team === 'b', 5000, 'the added namespace');
    expect(cache.labels('team-b')).toEqual({ team: 'b' });

    api.putNamespace({ metadata: { name: 'team-a', labels: { team: 'a', tier: 'dev' } } });
    await waitFor(() => cache!.labels('team-a')?.tier === 'dev', 5000, 'the changed labels');
    expect(cache.labels('team-a')).toEqual({ team: 'a', tier: 'dev' });

    api.putNamespace({ metadata: { name: 'plain', labels: { 'acr-pull-webhook.k8s.aliyun.com/ignore': 'true' } } });
    api.deleteNamespace('team-a');
    await waitFor(() => cache!.labels('team-a')?.team === undefined, 5000, 'the deletion');
    expect(cache.labels('team-a')).toEqual({});
    expect(cache.labels('plain')).toEqual({ 'acr-pull-webhook.k8s.aliyun.com/ignore': 'true' });
    expect(cache.labels('team-b')).toEqual({ team: 'b' });
    // Watch events only: no relist.
    expect(lists()).toBe(1);
  });

  it('a refused list: logged with the call and RBAC hint, retried after 1 s then 2 s, synced once allowed', async () => {
    let refusals = 2;
    api.forbid = (method, path) => method === 'GET' && path === '/api/v1/namespaces' && refusals-- > 0;
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    const begun = Date.now();
    await cache.start();
    expect(cache.synced()).toBe(false);
    expect(cache.labels('team-a')).toBeUndefined();
    await waitFor(() => cache!.synced(), 8000, 'the third list');
    const took = Date.now() - begun;
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(7500);
    expect(lists()).toBe(3);
    expect(cache.labels('team-a')).toEqual({ team: 'a', tier: 'prod' });
    const failed = { call: 'list namespaces (GET /api/v1/namespaces)', status: 403, error: 'Error HTTP 403 Forbidden', server: api.url, check: RBAC };
    expect(warnings()).toEqual([
      { level: 'warn', obj: { ...failed, retryMs: 1000 }, msg: 'listing namespaces failed' },
      { level: 'warn', obj: { ...failed, retryMs: 2000 }, msg: 'listing namespaces failed' },
    ]);
  });

  it('a dropped watch: logged as a watch failure, labels kept meanwhile, watched again after 1 s; the backoff restarts once connected', async () => {
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    api.dropWatches();
    await waitFor(() => warnings().length === 1, 5000, 'the watch failure');
    expect(warnings()[0]!.msg).toBe('namespace watch failed');
    expect(warnings()[0]!.obj).toMatchObject({ call: 'watch namespaces (GET /api/v1/namespaces)', server: api.url, retryMs: 1000 });
    expect(warnings()[0]!.obj.status).toBeUndefined();
    // The last known labels still answer while the watch is down.
    expect(cache.synced()).toBe(true);
    expect(cache.labels('team-a')).toEqual({ team: 'a', tier: 'prod' });
    const dropped = Date.now();
    await waitFor(() => api.count('GET', '/api/v1/namespaces', { watch: true }) === 2 && api.openNamespaceWatches() === 1, 5000, 'a new watch');
    expect(Date.now() - dropped).toBeGreaterThanOrEqual(800);
    // Resumed from the last resourceVersion: no relist, and events arrive again.
    expect(lists()).toBe(1);
    api.putNamespace({ metadata: { name: 'late', labels: { l: '1' } } });
    await waitFor(() => cache!.labels('late')?.l === '1', 5000, 'the namespace added after the reconnect');
    // Connected again: the next failure waits 1 s again, not 2 s.
    api.dropWatches();
    await waitFor(() => warnings().length === 2, 5000, 'the second watch failure');
    expect(warnings()[1]!.obj).toMatchObject({ call: 'watch namespaces (GET /api/v1/namespaces)', retryMs: 1000 });
  });

  it('a list the client cannot read (a namespace without metadata): logged as a failed list with the call, retried after 1 s', async () => {
    api.namespaces = [{ kind: 'Namespace' }];
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    expect(cache.synced()).toBe(false);
    expect(lists()).toBe(1);
    expect(warnings()).toEqual([
      {
        level: 'warn',
        obj: {
          call: 'list namespaces (GET /api/v1/namespaces)',
          error: 'TypeError',
          server: api.url,
          check: `the API server at ${api.url} answered, but the Kubernetes client could not read the answer (an object it cannot parse, or a version it does not know): not a network problem; retrying`,
        },
        msg: 'listing namespaces failed',
      },
    ]);
    api.namespaces = [{ metadata: { name: 'team-a', labels: { team: 'a' } } }];
    await waitFor(() => cache!.synced(), 8000, 'the retried list');
    expect(lists()).toBe(2);
    expect(cache.labels('team-a')).toEqual({ team: 'a' });
    expect(warnings()).toHaveLength(1);
  });

  it('start again while a retry is pending: one retry timer, so the backoff doubles once per scheduled retry', async () => {
    api.forbid = (method, path) => method === 'GET' && path === '/api/v1/namespaces';
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    await cache.start();
    expect(lists()).toBe(2);
    // The second failure found the first retry pending: no second timer, the next wait is still 2 s.
    await waitFor(() => warnings().length === 3, 8000, 'the retried list');
    expect(warnings().map((w) => w.obj.retryMs)).toEqual([1000, 2000, 2000]);
    expect(lists()).toBe(3);
  });

  it('stop: no more retries or watches, and start does nothing afterwards', async () => {
    api.forbid = () => true;
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    expect(lists()).toBe(1);
    await cache.stop();
    await new Promise((r) => setTimeout(r, 1300));
    expect(lists()).toBe(1);
    await cache.start();
    expect(lists()).toBe(1);
    expect(warnings()).toHaveLength(1);
  });

  it('stop after a sync closes the watch and logs nothing', async () => {
    cache = new NamespaceLabelCache(api.kubeConfig(), logger);
    await cache.start();
    expect(api.openNamespaceWatches()).toBe(1);
    await cache.stop();
    await waitFor(() => api.openNamespaceWatches() === 0, 2000, 'the watch to close');
    expect(logs).toEqual([]);
  });
});
