// KubeSecretStore's conversions and error mapping, against the fake API server (and, where the API server must
// answer something odd, a one-route HTTP server of this file).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeSecretStore, toSecretObject } from '../../src/kube/secret-store.js';
import { MANAGED_BY_LABEL } from '../../src/pull-secrets/docker-config.js';
import type { Logger } from '../../src/pull-secrets/logger.js';
import { ConflictError, NotFoundError, type SecretObject } from '../../src/pull-secrets/store.js';
import { FakeApiServer, waitFor } from './support/fake-apiserver.js';

const MANAGED = { [MANAGED_BY_LABEL]: 'acr-pull-webhook' };

describe('toSecretObject', () => {
  it('keeps only name and namespace of a bare Secret: no empty optional fields', () => {
    expect(toSecretObject({ metadata: { name: 'a', namespace: 'b' } })).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'a', namespace: 'b' },
    });
  });

  it('copies every field it knows, string values only, finalizers without non-strings', () => {
    const owner = { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'u-1' };
    expect(
      toSecretObject({
        metadata: {
          name: 'a',
          namespace: 'b',
          labels: { l: 'x', n: 5 },
          annotations: { an: 'y', o: { z: 1 } },
          resourceVersion: '17',
          uid: 'uid-9',
          creationTimestamp: '2025-01-01T00:00:00Z',
          ownerReferences: [owner],
          finalizers: ['f1', 3, 'f2'],
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': 'e30=', bad: 1 },
      }),
    ).toStrictEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'a',
        namespace: 'b',
        labels: { l: 'x' },
        annotations: { an: 'y' },
        resourceVersion: '17',
        uid: 'uid-9',
        creationTimestamp: '2025-01-01T00:00:00.000Z',
        ownerReferences: [owner],
        finalizers: ['f1', 'f2'],
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': 'e30=' },
    });
  });

  it('drops fields of the wrong type: non-string scalars, maps that are not objects', () => {
    expect(
      toSecretObject({ metadata: { name: 'a', namespace: 'b', labels: 'abc', annotations: null, resourceVersion: 17, uid: 4 }, type: 9, data: 'xy' }),
    ).toStrictEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a', namespace: 'b' } });
  });

  it('refuses what is not a named, namespaced object', () => {
    expect(toSecretObject(null)).toBeUndefined();
    expect(toSecretObject('secret')).toBeUndefined();
    expect(toSecretObject(Object.assign(() => {}, { metadata: { name: 'a', namespace: 'b' } }))).toBeUndefined();
    expect(toSecretObject({})).toBeUndefined();
    expect(toSecretObject({ metadata: { namespace: 'b' } })).toBeUndefined();
    expect(toSecretObject({ metadata: { name: 'a' } })).toBeUndefined();
    expect(toSecretObject({ metadata: { name: 7, namespace: 'b' } })).toBeUndefined();
  });
});

describe('KubeSecretStore against the fake API server', () => {
  let server: FakeApiServer;
  const stores: KubeSecretStore[] = [];

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.stop();
    await server.stop();
  });

  function store(opts: Partial<ConstructorParameters<typeof KubeSecretStore>[0]> = {}): KubeSecretStore {
    const s = new KubeSecretStore({ kubeConfig: server.kubeConfig(), restartInitialMs: 10, restartMaxMs: 20, ...opts });
    stores.push(s);
    return s;
  }

  const secret = (ns: string, name: string, extra: Partial<SecretObject['metadata']> = {}): SecretObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns, labels: { ...MANAGED }, ...extra },
    type: 'Opaque',
    data: { k: 'dg==' },
  });

  function captureLogger(): { logger: Logger; warns: Array<{ obj: Record<string, unknown>; msg: string | undefined }> } {
    const warns: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
    const noop = (): void => {};
    return { warns, logger: { debug: noop, info: noop, error: noop, warn: (obj, msg) => warns.push({ obj: obj as Record<string, unknown>, msg }) } };
  }

  it('logs a failed list of one namespace with its path, kind and namespace, through the logger given', async () => {
    const { logger, warns } = captureLogger();
    let refused = 0;
    server.forbid = (method, path) => method === 'GET' && path === '/api/v1/namespaces/team-a/secrets' && refused++ === 0;
    const s = store({ namespaces: ['team-a'], logger });
    await s.start();
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toBe('listing secrets failed');
    expect(warns[0]!.obj.namespace).toBe('team-a');
    expect(warns[0]!.obj.call).toBe('list secrets (GET /api/v1/namespaces/team-a/secrets)');
    await waitFor(() => server.count('GET', '/api/v1/namespaces/team-a/secrets', { watch: true }) === 1, 5000, 'watch');
  });

  it('logs a failed list of all namespaces with namespace "*"', async () => {
    const { logger, warns } = captureLogger();
    let refused = 0;
    server.forbid = (method, path) => method === 'GET' && path === '/api/v1/secrets' && refused++ === 0;
    const s = store({ logger });
    await s.start();
    expect(warns.map((w) => [w.msg, w.obj.namespace, w.obj.call])).toEqual([['listing secrets failed', '*', 'list secrets (GET /api/v1/secrets)']]);
  });

  it('is synced only when every namespace is', async () => {
    const s = store({ namespaces: ['a', 'b'] });
    await s.reflectorList()[0]!.start();
    expect(s.reflectorList()[0]!.synced()).toBe(true);
    expect(s.synced()).toBe(false);
  });

  it('answers for a namespace it does not watch without touching any cache', async () => {
    const s = store({ namespaces: ['a'] });
    await s.start();
    expect(s.get('other', 'x')).toBeUndefined();
    server.putSecret(secret('other', 'x'));
    expect((await s.read('other', 'x'))?.metadata.name).toBe('x');
    const created = await s.create(secret('other', 'y'));
    expect(created.metadata.resourceVersion).toBe(server.resourceVersion);
    expect(await s.delete('other', 'y')).toBe(true);
    expect(await s.delete('other', 'y')).toBe(false);
    expect(s.get('other', 'x')).toBeUndefined();
  });

  it('read: puts what it read into the cache; undefined for a 404; other failures go up', async () => {
    const s = store();
    await s.start();
    await waitFor(() => server.openWatches() === 1, 5000, 'watch');
    server.holdWatchEvents = true;
    server.putSecret(secret('apps', 's1'));
    expect(s.get('apps', 's1')).toBeUndefined();
    const got = await s.read('apps', 's1');
    expect(got?.metadata.resourceVersion).toBe('1001');
    expect(s.get('apps', 's1')?.metadata.resourceVersion).toBe('1001');
    expect(await s.read('apps', 'missing')).toBeUndefined();
    server.failNext = { count: 1, code: 500 };
    await expect(s.read('apps', 's1')).rejects.toMatchObject({ code: 500 });
  });

  it('read: an object the API server returns without a namespace is not a Secret (undefined, nothing cached)', async () => {
    const s = store();
    await s.start();
    server.secrets.set('apps/odd', { metadata: { name: 'odd' } });
    expect(await s.read('apps', 'odd')).toBeUndefined();
    expect(s.list()).toEqual([]);
  });

  it('create sends the Secret without resourceVersion and uid; 409 is ConflictError AlreadyExists', async () => {
    const s = store();
    await s.start();
    const created = await s.create(secret('apps', 's1', { resourceVersion: '5', uid: 'old-uid' }));
    const post = server.requests.find((r) => r.method === 'POST')!;
    expect(post.body).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's1', namespace: 'apps', labels: MANAGED },
      type: 'Opaque',
      data: { k: 'dg==' },
    });
    expect(created.metadata.uid).toBe('uid-1');
    const err = await s.create(secret('apps', 's1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).reason).toBe('AlreadyExists');
    expect((err as Error).message).toBe('Secret apps/s1: AlreadyExists');
  });

  it('replace sends uid, owners and finalizers; refuses without resourceVersion; maps 409 and 404; rethrows others', async () => {
    const s = store();
    await s.start();
    const cur = server.putSecret(secret('apps', 's1'));
    const owner = { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'pu' };
    await s.replace(secret('apps', 's1', { resourceVersion: cur.metadata.resourceVersion, uid: cur.metadata.uid, ownerReferences: [owner], finalizers: ['f'] }));
    const put = server.requests.find((r) => r.method === 'PUT')!;
    expect(put.body!.metadata).toEqual({
      name: 's1',
      namespace: 'apps',
      labels: MANAGED,
      resourceVersion: cur.metadata.resourceVersion,
      uid: cur.metadata.uid,
      ownerReferences: [owner],
      finalizers: ['f'],
    });

    await expect(s.replace(secret('apps', 's1'))).rejects.toThrow(new Error('replace of Secret apps/s1 without resourceVersion'));
    expect(server.count('PUT', '/api/v1/namespaces/apps/secrets/s1')).toBe(1);

    const conflict = await s.replace(secret('apps', 's1', { resourceVersion: '1' })).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).reason).toBe('Conflict');
    await expect(s.replace(secret('apps', 'gone', { resourceVersion: '1' }))).rejects.toBeInstanceOf(NotFoundError);
    server.failNext = { count: 1, code: 500 };
    const other = await s.replace(secret('apps', 's1', { resourceVersion: '1' })).catch((e: unknown) => e);
    expect(other).not.toBeInstanceOf(ConflictError);
    expect(other).toMatchObject({ code: 500 });
  });

  it('delete forgets the Secret at once; a 404 for an older version keeps the newer cached one; 409 and others', async () => {
    const s = store();
    await s.start();
    const v1 = server.putSecret(secret('apps', 's1'));
    await waitFor(() => s.get('apps', 's1') !== undefined, 5000, 'cache');
    server.holdWatchEvents = true;
    expect(await s.delete('apps', 's1')).toBe(true);
    expect(s.get('apps', 's1')).toBeUndefined();

    server.holdWatchEvents = false;
    server.putSecret(secret('apps', 's2'));
    const v2 = server.putSecret(secret('apps', 's2', { annotations: { x: 'y' } }));
    await waitFor(() => s.get('apps', 's2')?.metadata.resourceVersion === v2.metadata.resourceVersion, 5000, 'newer');
    server.holdWatchEvents = true;
    server.deleteSecret('apps', 's2');
    expect(await s.delete('apps', 's2', v1.metadata.resourceVersion)).toBe(false);
    expect(s.get('apps', 's2')?.metadata.resourceVersion).toBe(v2.metadata.resourceVersion);
    expect(await s.delete('apps', 's2', v2.metadata.resourceVersion)).toBe(false);
    expect(s.get('apps', 's2')).toBeUndefined();

    const v3 = server.putSecret(secret('apps', 's3'));
    const conflict = await s.delete('apps', 's3', '1').catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).reason).toBe('Conflict');
    server.failNext = { count: 1, code: 500 };
    const other = await s.delete('apps', 's3', v3.metadata.resourceVersion).catch((e: unknown) => e);
    expect(other).not.toBeInstanceOf(ConflictError);
    expect(other).toMatchObject({ code: 500 });
  });

  it('list gives the cached Secrets of every namespace watched; only managed ones are listed and cached', async () => {
    server.putSecret(secret('a', 's1'));
    server.putSecret(secret('b', 's2'));
    server.putSecret(secret('c', 's3'));
    server.putSecret({ ...secret('a', 'plain'), metadata: { name: 'plain', namespace: 'a', labels: { other: 'x' } } });
    const s = store({ namespaces: ['a', 'b'] });
    await s.start();
    expect(s.list().map((x) => `${x.metadata.namespace}/${x.metadata.name}`)).toEqual(['a/s1', 'b/s2']);
    expect(s.get('b', 's2')?.data).toEqual({ k: 'dg==' });
    expect(s.get('a', 'plain')).toBeUndefined();
    const lists = server.requests.filter((r) => r.method === 'GET' && !r.watch);
    expect(lists.map((r) => [r.path, r.query.get('labelSelector')])).toEqual([
      ['/api/v1/namespaces/a/secrets', `${MANAGED_BY_LABEL}=acr-pull-webhook`],
      ['/api/v1/namespaces/b/secrets', `${MANAGED_BY_LABEL}=acr-pull-webhook`],
    ]);
  });

  it('stop ends the watch of every namespace', async () => {
    const s = store({ namespaces: ['a', 'b'] });
    await s.start();
    await waitFor(() => server.openWatches() === 2, 5000, 'watches');
    await s.stop();
    await waitFor(() => server.openWatches() === 0, 2000, 'watches closed');
  });

  it('create: a failure other than 409 goes up as it is', async () => {
    const s = store();
    server.failNext = { count: 1, code: 500 };
    const err = await s.create(secret('apps', 's1')).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 500 });
  });

  it('delete without a resourceVersion sends no preconditions', async () => {
    const s = store();
    server.putSecret(secret('apps', 's1'));
    expect(await s.delete('apps', 's1')).toBe(true);
    const del = server.requests.find((r) => r.method === 'DELETE')!;
    expect(del.body).toBeUndefined();
  });

  it('gives up on a request after the request timeout given', async () => {
    const s = store({ requestTimeoutMs: 50 });
    server.hangNext = 1;
    const outcome = await Promise.race([
      s.read('apps', 's1').then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), 3000)),
    ]);
    expect(outcome).toBe('rejected');
  });

  it('recordEvent names the Secret version and uses the component and instance given', async () => {
    const s = store({ component: 'comp-x', instance: 'inst-y' });
    await s.recordEvent(secret('apps', 's1', { uid: 'u-1', resourceVersion: '42' }), 'Warning', 'RefreshFailed', 'it failed');
    expect(server.events).toHaveLength(1);
    const ev = server.events[0]!;
    expect(ev.involvedObject).toEqual({ apiVersion: 'v1', kind: 'Secret', namespace: 'apps', name: 's1', uid: 'u-1', resourceVersion: '42' });
    expect(ev.source).toEqual({ component: 'comp-x', host: 'inst-y' });
    expect(ev.reportingInstance).toBe('inst-y');
  });
});

describe('KubeSecretStore when the API server answers a write with no object', () => {
  let http: Server;
  let url = '';

  beforeEach(async () => {
    http = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const list = req.method === 'GET' && !req.url?.includes('watch=true');
        const text = JSON.stringify(list ? { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] } : { kind: 'Secret', apiVersion: 'v1' });
        if (req.url?.includes('watch=true')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.flushHeaders();
          return;
        }
        res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  it('create rejects with a message naming the Secret', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const s = new KubeSecretStore({ kubeConfig: kc, namespaces: ['apps'] });
    await expect(
      s.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1', namespace: 'apps', labels: { ...MANAGED } } }),
    ).rejects.toThrow(new Error('API server returned no object for Secret apps/s1'));
  });
});
