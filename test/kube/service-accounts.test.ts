// ServiceAccountCache against a small scripted API server of this file: list (paged) and idle watch of
// ServiceAccounts, JSON-patch of one, Events.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ServiceAccountCache, ServiceAccountChangedError } from '../../src/kube/service-accounts.js';
import type { Logger } from '../../src/pull-secrets/logger.js';
import type { ReflectorEvent } from '../../src/kube/reflector.js';
import type { ServiceAccountInfo } from '../../src/pull-secrets/service-account-sync.js';
import { waitFor } from './support/fake-apiserver.js';

type Obj = Record<string, any>;

interface Req {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body?: unknown;
}

class ScriptedServer {
  http: Server | undefined;
  url = '';
  requests: Req[] = [];
  serviceAccounts: Obj[] = [];
  events: Obj[] = [];
  /** The next N lists answer 500. */
  failLists = 0;
  failEvents = false;
  hangPatch = false;
  patchReply: (ns: string, name: string, body: unknown) => { code: number; body: Obj } = () => ({ code: 404, body: { kind: 'Status', code: 404 } });
  readonly watches = new Set<ServerResponse>();

  async start(): Promise<void> {
    this.http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const text = Buffer.concat(chunks).toString('utf8');
        const method = req.method ?? 'GET';
        this.requests.push({ method, path: url.pathname, query: url.searchParams, headers: req.headers, ...(text ? { body: JSON.parse(text) } : {}) });
        const send = (code: number, body: Obj): void => {
          const t = JSON.stringify(body);
          res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(t) });
          res.end(t);
        };
        const p = url.pathname.split('/').filter(Boolean);
        if (url.pathname === '/api/v1/serviceaccounts' && method === 'GET') {
          if (url.searchParams.get('watch') === 'true') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
            this.watches.add(res);
            res.on('close', () => this.watches.delete(res));
            return;
          }
          if (this.failLists > 0) {
            this.failLists--;
            return send(500, { kind: 'Status', code: 500, message: 'injected' });
          }
          const limit = Number(url.searchParams.get('limit') ?? '0');
          const start = Number(url.searchParams.get('continue') ?? '0');
          const page = limit > 0 ? this.serviceAccounts.slice(start, start + limit) : this.serviceAccounts.slice(start);
          const next = limit > 0 && start + limit < this.serviceAccounts.length ? String(start + limit) : undefined;
          return send(200, { kind: 'ServiceAccountList', apiVersion: 'v1', metadata: { resourceVersion: '100', ...(next ? { continue: next } : {}) }, items: page });
        }
        if (p.length === 6 && p[2] === 'namespaces' && p[4] === 'serviceaccounts' && method === 'PATCH') {
          if (this.hangPatch) return;
          const r = this.patchReply(p[3]!, p[5]!, text ? JSON.parse(text) : undefined);
          return send(r.code, r.body);
        }
        if (p.length === 5 && p[2] === 'namespaces' && p[4] === 'events' && method === 'POST') {
          if (this.failEvents) return send(500, { kind: 'Status', code: 500, message: 'no events' });
          this.events.push(JSON.parse(text) as Obj);
          return send(201, JSON.parse(text) as Obj);
        }
        send(404, { kind: 'Status', code: 404, message: 'no route' });
      });
    });
    await new Promise<void>((resolve) => this.http!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.http?.closeAllConnections();
    await new Promise<void>((resolve) => this.http?.close(() => resolve()) ?? resolve());
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return kc;
  }
}

function captureLogger(): { logger: Logger; lines: Array<[string, string | undefined, Record<string, unknown>]> } {
  const lines: Array<[string, string | undefined, Record<string, unknown>]> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push([level, msg, obj as Record<string, unknown>]);
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

const sa = (ns: string, name: string, rv: string, extra: Obj = {}): Obj => ({ metadata: { namespace: ns, name, resourceVersion: rv, uid: `uid-${name}` }, ...extra });

let server: ScriptedServer;
const caches: ServiceAccountCache[] = [];

beforeEach(async () => {
  server = new ScriptedServer();
  await server.start();
});

afterEach(async () => {
  for (const c of caches.splice(0)) await c.stop();
  await server.stop();
});

function cache(opts: Partial<ConstructorParameters<typeof ServiceAccountCache>[0]> = {}): ServiceAccountCache {
  const c = new ServiceAccountCache({ kubeConfig: server.kubeConfig(), restartInitialMs: 10, restartMaxMs: 20, ...opts });
  caches.push(c);
  return c;
}

describe('ServiceAccountCache', () => {
  it('lists page by page with the options given, tells listeners, logs a failed list through the logger given', async () => {
    server.serviceAccounts = [sa('a', 'one', '10'), sa('b', 'two', '11')];
    server.failLists = 1;
    const { logger, lines } = captureLogger();
    const c = cache({ pageSize: 1, logger });
    const events: Array<ReflectorEvent<ServiceAccountInfo>> = [];
    c.onEvent((e) => events.push(e));
    await c.start();
    expect(c.synced()).toBe(true);
    expect(server.requests.filter((r) => r.method === 'GET' && r.query.get('watch') !== 'true').map((r) => r.query.get('limit'))).toEqual(['1', '1', '1']);
    expect(lines.filter(([level]) => level === 'warn').map(([, msg, obj]) => [msg, obj.call])).toEqual([
      ['listing serviceaccounts failed', 'list serviceaccounts (GET /api/v1/serviceaccounts)'],
    ]);
    expect(events).toEqual([{ type: 'RELISTED' }]);
    expect([...c.list()].map((x) => x.name)).toEqual(['one', 'two']);
    expect(c.get('b', 'two')).toEqual({ namespace: 'b', name: 'two', resourceVersion: '11', uid: 'uid-two' });
  });

  it('stop ends the watch', async () => {
    const c = cache();
    await c.start();
    await waitFor(() => server.watches.size === 1, 5000, 'watch');
    await c.stop();
    await waitFor(() => server.watches.size === 0, 2000, 'watch closed');
  });

  it('addPullSecrets with no names sends nothing', async () => {
    const c = cache();
    await c.addPullSecrets({ namespace: 'a', name: 'one', resourceVersion: '10' }, []);
    expect(server.requests).toEqual([]);
  });

  it('addPullSecrets creates the list, tested against the version read, as field manager acr-pull-webhook; caches the answer', async () => {
    let patched: unknown;
    server.patchReply = (ns, name, body) => {
      patched = body;
      return { code: 200, body: sa(ns, name, '12', { imagePullSecrets: [{ name: 'p1' }, { name: 'p2' }] }) };
    };
    const c = cache();
    await c.addPullSecrets({ namespace: 'a', name: 'one', resourceVersion: '10' }, ['p1', 'p2']);
    const req = server.requests.find((r) => r.method === 'PATCH')!;
    expect(req.path).toBe('/api/v1/namespaces/a/serviceaccounts/one');
    expect(req.query.get('fieldManager')).toBe('acr-pull-webhook');
    expect(req.headers['content-type']).toBe('application/json-patch+json');
    expect(patched).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '10' },
      { op: 'add', path: '/imagePullSecrets', value: [{ name: 'p1' }, { name: 'p2' }] },
    ]);
    expect(c.get('a', 'one')).toEqual({ namespace: 'a', name: 'one', resourceVersion: '12', uid: 'uid-one', imagePullSecrets: ['p1', 'p2'] });
  });

  it('addPullSecrets appends to an existing list; without a resourceVersion there is no test', async () => {
    let patched: unknown;
    server.patchReply = (ns, name, body) => {
      patched = body;
      return { code: 200, body: sa(ns, name, '12') };
    };
    const c = cache();
    await c.addPullSecrets({ namespace: 'a', name: 'one', imagePullSecrets: ['x'] }, ['p1', 'p2']);
    expect(patched).toEqual([
      { op: 'add', path: '/imagePullSecrets/-', value: { name: 'p1' } },
      { op: 'add', path: '/imagePullSecrets/-', value: { name: 'p2' } },
    ]);
  });

  it('addPullSecrets: an answer that is no ServiceAccount is not cached; an older answer does not replace a newer cached one', async () => {
    server.serviceAccounts = [sa('a', 'one', '20')];
    const c = cache();
    await c.start();
    server.patchReply = () => ({ code: 200, body: { kind: 'ServiceAccount' } });
    await c.addPullSecrets({ namespace: 'a', name: 'one', resourceVersion: '20' }, ['p1']);
    expect(c.get('a', 'one')?.resourceVersion).toBe('20');
    server.patchReply = (ns, name) => ({ code: 200, body: sa(ns, name, '15', { imagePullSecrets: [{ name: 'p1' }] }) });
    await c.addPullSecrets({ namespace: 'a', name: 'one', resourceVersion: '20' }, ['p1']);
    expect(c.get('a', 'one')).toEqual({ namespace: 'a', name: 'one', resourceVersion: '20', uid: 'uid-one' });
  });

  it('addPullSecrets: 409, 422 and 404 mean the ServiceAccount changed; other failures go up as they are', async () => {
    const c = cache();
    const target = { namespace: 'a', name: 'one', resourceVersion: '10' };
    for (const code of [409, 422, 404]) {
      server.patchReply = () => ({ code, body: { kind: 'Status', code } });
      const err = await c.addPullSecrets(target, ['p1']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceAccountChangedError);
      expect((err as Error).message).toBe('ServiceAccount a/one changed or vanished while being patched');
      expect((err as Error).name).toBe('ServiceAccountChangedError');
    }
    server.patchReply = () => ({ code: 500, body: { kind: 'Status', code: 500 } });
    const err = await c.addPullSecrets(target, ['p1']).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ServiceAccountChangedError);
    expect(err).toMatchObject({ code: 500 });
  });

  it('addPullSecrets gives up after the request timeout given', async () => {
    server.hangPatch = true;
    const c = cache({ requestTimeoutMs: 50 });
    const outcome = await Promise.race([
      c.addPullSecrets({ namespace: 'a', name: 'one' }, ['p1']).then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), 3000)),
    ]);
    expect(outcome).toBe('rejected');
  });

  it('recordEvent names the ServiceAccount; a failed Event is logged at debug through the logger given', async () => {
    const { logger, lines } = captureLogger();
    const c = cache({ logger });
    await c.recordEvent({ namespace: 'a', name: 'one', uid: 'u-1' }, 'Warning', 'PatchFailed', 'could not patch');
    expect(server.events).toHaveLength(1);
    expect(server.events[0]!.involvedObject).toEqual({ apiVersion: 'v1', kind: 'ServiceAccount', namespace: 'a', name: 'one', uid: 'u-1' });
    expect(server.events[0]!.reason).toBe('PatchFailed');
    server.failEvents = true;
    await c.recordEvent({ namespace: 'a', name: 'one' }, 'Warning', 'PatchFailed', 'could not patch');
    expect(lines.filter(([level]) => level === 'debug').map(([, msg, obj]) => [msg, obj.kind, obj.reason])).toEqual([
      ['recording event failed', 'ServiceAccount', 'PatchFailed'],
    ]);
  });
});
