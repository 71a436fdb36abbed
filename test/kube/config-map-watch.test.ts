// One ConfigMap listed and watched by name (src/kube/config-map-watch.ts): what is kept of the API's object, a stale
// watch event not overwriting a newer version, and list failures named by kind in the log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigMapWatch, toConfigMapData } from '../../src/kube/config-map-watch.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';
import { loggerInto, type LogRecord } from '../support/log-records.js';

describe('toConfigMapData', () => {
  it('keeps namespace, name, string data, and resourceVersion and uid only when they are strings', () => {
    expect(toConfigMapData({ metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '7', uid: 'u1', labels: { a: 'b' } }, data: { a: 'x', n: 1, o: {} } })).toStrictEqual({
      namespace: 'kube-system',
      name: 'acr-configuration',
      resourceVersion: '7',
      uid: 'u1',
      data: { a: 'x' },
    });
    expect(toConfigMapData({ metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: 7, uid: 1 } })).toStrictEqual({
      namespace: 'kube-system',
      name: 'acr-configuration',
      data: {},
    });
    expect(toConfigMapData({ metadata: { namespace: 'n', name: 'c' }, data: 'ab' })).toStrictEqual({ namespace: 'n', name: 'c', data: {} });
  });

  it('anything without a metadata object holding string name and namespace is not a ConfigMap', () => {
    expect(toConfigMapData(null)).toBeUndefined();
    expect(toConfigMapData(undefined)).toBeUndefined();
    expect(toConfigMapData('kube-system/acr-configuration')).toBeUndefined();
    expect(toConfigMapData(Object.assign(() => {}, { metadata: { namespace: 'n', name: 'c' } }))).toBeUndefined();
    expect(toConfigMapData({})).toBeUndefined();
    expect(toConfigMapData({ metadata: { namespace: 'n' } })).toBeUndefined();
    expect(toConfigMapData({ metadata: { name: 'c' } })).toBeUndefined();
    expect(toConfigMapData({ metadata: { name: 'c', namespace: 5 } })).toBeUndefined();
    expect(toConfigMapData({ metadata: { name: 5, namespace: 'n' } })).toBeUndefined();
  });
});

describe('ConfigMapWatch', () => {
  let api: FakeApiServer;
  let watch: ConfigMapWatch | undefined;
  let logs: LogRecord[];

  beforeEach(async () => {
    logs = [];
    api = new FakeApiServer();
    await api.start();
  });
  afterEach(async () => {
    await watch?.stop();
    watch = undefined;
    await api.stop();
  });

  it('a watch event older than the version held does not replace or remove it', async () => {
    api.configMaps = [{ metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '10', uid: 'u1' }, data: { v: 'ten' } }];
    watch = new ConfigMapWatch({ kubeConfig: api.kubeConfig(), namespace: 'kube-system', name: 'acr-configuration', logger: loggerInto(() => logs) });
    let changes = 0;
    watch.onChange(() => changes++);
    await watch.start();
    expect(watch.synced()).toBe(true);
    expect(watch.current()?.data).toEqual({ v: 'ten' });
    await waitFor(() => api.openConfigMapWatches() === 1, 5000, 'the ConfigMap watch');
    const before = changes;
    api.sendConfigMapEvent('MODIFIED', { metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '5', uid: 'u1' }, data: { v: 'five' } });
    await waitFor(() => changes === before + 1, 5000, 'the stale update');
    expect(watch.current()?.data).toEqual({ v: 'ten' });
    api.sendConfigMapEvent('DELETED', { metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '6', uid: 'u1' }, data: { v: 'six' } });
    await waitFor(() => changes === before + 2, 5000, 'the stale deletion');
    expect(watch.current()?.data).toEqual({ v: 'ten' });
    api.sendConfigMapEvent('MODIFIED', { metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '11', uid: 'u1' }, data: { v: 'eleven' } });
    await waitFor(() => changes === before + 3, 5000, 'the newer update');
    expect(watch.current()).toStrictEqual({ namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '11', uid: 'u1', data: { v: 'eleven' } });
    api.sendConfigMapEvent('DELETED', { metadata: { namespace: 'kube-system', name: 'acr-configuration', resourceVersion: '12', uid: 'u1' }, data: {} });
    await waitFor(() => changes === before + 4, 5000, 'the deletion');
    expect(watch.current()).toBeUndefined();
  });

  it('a refused list is logged as a configmaps list, with the logger given', async () => {
    api.forbid = (method, path) => method === 'GET' && path.endsWith('/configmaps');
    watch = new ConfigMapWatch({ kubeConfig: api.kubeConfig(), namespace: 'kube-system', name: 'acr-configuration', logger: loggerInto(() => logs) });
    void watch.start();
    await waitFor(() => logs.length > 0, 5000, 'a log line');
    expect(logs[0]!.level).toBe('warn');
    expect(logs[0]!.msg).toBe('listing configmaps failed');
    expect(logs[0]!.obj).toMatchObject({ namespace: 'kube-system', failures: 1 });
    expect(JSON.stringify(logs[0]!.obj)).toContain('configmaps');
  });
});
