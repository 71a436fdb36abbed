// A small fake Kubernetes API server on 127.0.0.1 (plain HTTP), enough for the Secret store, the Lease elector
// and the usage source: list (paged) and watch of Secrets with chunked streams and history replay, 409 on stale
// resourceVersion, 410 Gone for compacted resourceVersions (as an HTTP status or an in-stream ERROR event),
// dropped/closed/stalled watch connections, Events, Pods, ImageCaches (or their absence) and Leases.
// It keeps the unit tests fast; each behaviour it stands in for is also proven on a real kube-apiserver in
// `npm run e2e`:
// - 409 on a stale resourceVersion, re-read and retry: test/e2e/secret-lifecycle.test.ts "3. another writer updates
//   the Secret between the renewal's read and its write";
// - watch resume, 410 Gone and relist: test/e2e/secret-lifecycle.test.ts "2. a watch whose resourceVersion expired
//   while the API server was down relists" (etcd compacted, API server restarted);
// - a second replica answering the same way: test/e2e/secret-lifecycle.test.ts "1. both replicas answer the same
//   review at once with the same Secret name";
// - idle collection with Pods and ImageCaches listed as references: test/e2e/secret-lifecycle.test.ts "4. a Secret an
//   ImageCache or a Pod references is kept past idleTimeout";
// - RefreshFailed Warning Events on the Secret, without secrets: test/e2e/pull.test.ts "9. a Secret for a revoked
//   role pulls until its token expires";
// - Lease leader election between replicas: test/e2e/webhook.test.ts "6. ... two webhooks, one Lease holder".
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

type Obj = Record<string, any>;

export interface RequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
  watch: boolean;
  body?: Obj;
}

interface Watcher {
  namespace: string | undefined;
  selector: Array<[string, string]>;
  res: ServerResponse;
  stalled: boolean;
  timer?: NodeJS.Timeout;
}

interface HistoryEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function parseSelector(sel: string | null): Array<[string, string]> {
  if (!sel) return [];
  return sel
    .split(',')
    .filter(Boolean)
    .map((term) => {
      const [k, v] = term.split(/==?/);
      return [k ?? '', v ?? ''];
    });
}

function matches(obj: Obj, namespace: string | undefined, selector: Array<[string, string]>): boolean {
  if (namespace && obj.metadata?.namespace !== namespace) return false;
  const labels: Record<string, string> = obj.metadata?.labels ?? {};
  return selector.every(([k, v]) => labels[k] === v);
}

const clone = <T>(v: T): T => structuredClone(v);

export class FakeApiServer {
  private server: Server | undefined;
  url = '';
  readonly requests: RequestRecord[] = [];
  readonly secrets = new Map<string, Obj>();
  readonly leases = new Map<string, Obj>();
  readonly events: Obj[] = [];
  pods: Obj[] = [];
  /** undefined: the ImageCache CRD is not installed (404). */
  imageCaches: Obj[] | undefined;
  /**
   * Namespaces, ServiceAccounts and ConfigMaps: lists and idle watches, as `{metadata: {...}}`; namespace watches
   * also get the events of `putNamespace` and `deleteNamespace`.
   */
  namespaces: Obj[] = [];
  serviceAccounts: Obj[] = [];
  configMaps: Obj[] = [];
  /** Requests this returns true for are refused with 403 Forbidden, as RBAC does. */
  forbid: (method: string, path: string) => boolean = () => false;
  private rev = 1000;
  private uid = 0;
  private history: HistoryEntry[] = [];
  private compactedRv = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly namespaceWatches = new Set<ServerResponse>();
  private readonly configMapWatches = new Set<ServerResponse>();
  /** How a watch from a compacted resourceVersion fails: HTTP 410, or 200 with an ERROR event. */
  goneMode: 'http' | 'event' = 'http';
  /** New watches get headers but never an event nor an end (a silently dead connection). */
  stallWatches = false;
  /** Events are queued instead of delivered to open watches (a slow watch), until `flushWatches()`. */
  holdWatchEvents = false;
  private held: HistoryEntry[] = [];
  /** The next N secret PUTs answer 409 whatever their resourceVersion. */
  forceConflicts = 0;
  /** The next N non-watch requests answer this status (e.g. 500, 429). */
  failNext = { count: 0, code: 500 };
  /** The next N non-watch requests never get an answer. */
  hangNext = 0;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, 500, status(500, 'InternalError', String(err)));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) clearTimeout(w.timer);
    this.watchers.clear();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: 'test-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
      currentContext: 'fake',
    });
    return kc;
  }

  // ---- test controls ----

  count(method: string, pathPrefix: string, opts: { watch?: boolean } = {}): number {
    return this.requests.filter(
      (r) => r.method === method && r.path.startsWith(pathPrefix) && (opts.watch === undefined || r.watch === opts.watch),
    ).length;
  }

  openWatches(): number {
    return this.watchers.size;
  }

  get resourceVersion(): string {
    return String(this.rev);
  }

  /** Stores a Secret as another writer would (user, peer replica): bumps the resourceVersion, notifies watches. */
  putSecret(obj: Obj): Obj {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const cur = this.secrets.get(key);
    const stored = clone(obj);
    stored.apiVersion = 'v1';
    stored.kind = 'Secret';
    stored.metadata.uid = cur?.metadata.uid ?? `uid-${++this.uid}`;
    stored.metadata.creationTimestamp = cur?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    stored.metadata.resourceVersion = String(++this.rev);
    this.secrets.set(key, stored);
    this.emit({ rv: this.rev, type: cur ? 'MODIFIED' : 'ADDED', object: clone(stored) });
    return clone(stored);
  }

  /** Stores a Namespace (new or changed): bumps the resourceVersion, tells open namespace watches. */
  putNamespace(obj: Obj): Obj {
    const i = this.namespaces.findIndex((n) => n.metadata?.name === obj.metadata.name);
    const stored: Obj = { ...clone(obj), apiVersion: 'v1', kind: 'Namespace' };
    stored.metadata.resourceVersion = String(++this.rev);
    if (i >= 0) this.namespaces[i] = stored;
    else this.namespaces.push(stored);
    this.emitNamespace(i >= 0 ? 'MODIFIED' : 'ADDED', stored);
    return clone(stored);
  }

  deleteNamespace(name: string): boolean {
    const i = this.namespaces.findIndex((n) => n.metadata?.name === name);
    if (i < 0) return false;
    const [gone] = this.namespaces.splice(i, 1);
    gone!.metadata.resourceVersion = String(++this.rev);
    this.emitNamespace('DELETED', gone!);
    return true;
  }

  /**
   * Writes one watch event, as given, to every open ConfigMap watch (no check of namespace, name or order: a test
   * can send a stale version). `configMaps` is not changed.
   */
  sendConfigMapEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Obj): void {
    for (const res of this.configMapWatches) res.write(JSON.stringify({ type, object }) + '\n');
  }

  openConfigMapWatches(): number {
    return this.configMapWatches.size;
  }

  openNamespaceWatches(): number {
    return this.namespaceWatches.size;
  }

  deleteSecret(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const cur = this.secrets.get(key);
    if (!cur) return false;
    this.secrets.delete(key);
    const gone = clone(cur);
    gone.metadata.resourceVersion = String(++this.rev);
    this.emit({ rv: this.rev, type: 'DELETED', object: gone });
    return true;
  }

  /** Forgets the watch history: watches from any older resourceVersion now get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rev;
    this.history = [];
  }

  /** Destroys every open watch connection abruptly (network drop). */
  dropWatches(): void {
    for (const w of [...this.watchers]) {
      clearTimeout(w.timer);
      this.watchers.delete(w);
      w.res.socket?.destroy();
    }
    for (const res of [...this.namespaceWatches]) {
      this.namespaceWatches.delete(res);
      res.socket?.destroy();
    }
  }

  /** Ends every open watch cleanly (as the server does at timeoutSeconds). */
  closeWatches(): void {
    for (const w of [...this.watchers]) this.endWatch(w);
  }

  flushWatches(): void {
    this.holdWatchEvents = false;
    const held = this.held;
    this.held = [];
    for (const e of held) this.deliver(e);
  }

  // ---- request handling ----

  private send(res: ServerResponse, code: number, body: Obj): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<Obj | undefined> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (chunks.length === 0) return undefined;
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? (JSON.parse(text) as Obj) : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const body = await this.readBody(req);
    const watch = url.searchParams.get('watch') === 'true';
    this.requests.push({ method, path: url.pathname, query: url.searchParams, watch, ...(body ? { body } : {}) });
    if (req.headers.authorization !== 'Bearer test-token') return this.send(res, 401, status(401, 'Unauthorized', 'no token'));
    if (this.forbid(method, url.pathname)) {
      return this.send(res, 403, status(403, 'Forbidden', `${method} ${url.pathname} is forbidden: User "system:serviceaccount:x:y" cannot do that`));
    }
    if (!watch && this.hangNext > 0) {
      this.hangNext--;
      return; // never answered (the client must time out)
    }
    if (!watch && this.failNext.count > 0) {
      this.failNext.count--;
      return this.send(res, this.failNext.code, status(this.failNext.code, 'InternalError', 'injected failure'));
    }
    const p = url.pathname.split('/').filter(Boolean);
    const q = url.searchParams;

    // /api/v1/secrets
    if (p.length === 3 && p[0] === 'api' && p[2] === 'secrets' && method === 'GET') {
      return watch ? this.watchSecrets(res, undefined, q) : this.listSecrets(res, undefined, q);
    }
    if (p[0] === 'api' && p[1] === 'v1' && p[2] === 'namespaces' && p[3]) {
      const ns = p[3];
      if (p[4] === 'secrets' && p.length === 5) {
        if (method === 'GET') return watch ? this.watchSecrets(res, ns, q) : this.listSecrets(res, ns, q);
        if (method === 'POST') return this.createSecret(res, ns, body ?? {});
      }
      if (p[4] === 'secrets' && p.length === 6 && p[5]) return this.secretItem(res, method, ns, p[5], body);
      if (p[4] === 'events' && p.length === 5 && method === 'POST') {
        const ev = clone(body ?? {});
        ev.metadata = { ...(ev.metadata ?? {}), resourceVersion: String(++this.rev), uid: `uid-${++this.uid}` };
        this.events.push(ev);
        return this.send(res, 201, ev);
      }
      if (p[4] === 'pods' && p.length === 5 && method === 'GET') {
        return this.listPaged(res, this.pods.filter((x) => x.metadata?.namespace === ns), q, 'PodList');
      }
    }
    const plain = (items: Obj[], kind: string): void => {
      if (!watch) return this.listPaged(res, items, q, kind);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
    };
    if (p.join('/') === 'api/v1/namespaces' && method === 'GET') {
      plain(this.namespaces, 'NamespaceList');
      if (watch) {
        this.namespaceWatches.add(res);
        res.on('close', () => this.namespaceWatches.delete(res));
      }
      return;
    }
    if (p.join('/') === 'api/v1/serviceaccounts' && method === 'GET') return plain(this.serviceAccounts, 'ServiceAccountList');
    if (p.length === 5 && p[0] === 'api' && p[2] === 'namespaces' && p[4] === 'configmaps' && method === 'GET') {
      const name = /^metadata\.name=(.+)$/.exec(q.get('fieldSelector') ?? '')?.[1];
      plain(this.configMaps.filter((c) => c.metadata?.namespace === p[3] && (!name || c.metadata?.name === name)), 'ConfigMapList');
      if (watch) {
        this.configMapWatches.add(res);
        res.on('close', () => this.configMapWatches.delete(res));
      }
      return;
    }
    if (p.length === 3 && p[0] === 'api' && p[2] === 'pods' && method === 'GET') return this.listPaged(res, this.pods, q, 'PodList');
    if (p.join('/') === 'apis/eci.alibabacloud.com/v1/imagecaches' && method === 'GET') {
      if (!this.imageCaches) return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
      return this.listPaged(res, this.imageCaches, q, 'ImageCacheList', 'eci.alibabacloud.com/v1');
    }
    if (p[0] === 'apis' && p[1] === 'coordination.k8s.io' && p[2] === 'v1' && p[3] === 'namespaces' && p[4] && p[5] === 'leases') {
      return this.lease(res, method, p[4], p[6], body);
    }
    this.send(res, 404, status(404, 'NotFound', `no route for ${method} ${url.pathname}`));
  }

  private listSecrets(res: ServerResponse, ns: string | undefined, q: URLSearchParams): void {
    const sel = parseSelector(q.get('labelSelector'));
    const items = [...this.secrets.values()].filter((s) => matches(s, ns, sel)).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    this.listPaged(res, items, q, 'SecretList');
  }

  private listPaged(res: ServerResponse, items: Obj[], q: URLSearchParams, kind: string, apiVersion = 'v1'): void {
    const limit = Number(q.get('limit') ?? '0');
    const start = Number(q.get('continue') ?? '0');
    const page = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
    const next = limit > 0 && start + limit < items.length ? String(start + limit) : undefined;
    this.send(res, 200, {
      kind,
      apiVersion,
      metadata: { resourceVersion: String(this.rev), ...(next ? { continue: next } : {}) },
      items: page.map(clone),
    });
  }

  private watchSecrets(res: ServerResponse, ns: string | undefined, q: URLSearchParams): void {
    const fromRv = Number(q.get('resourceVersion') || '0');
    if (fromRv && fromRv < this.compactedRv) {
      const gone = status(410, 'Expired', `too old resource version: ${fromRv} (${this.compactedRv})`);
      if (this.goneMode === 'http') return this.send(res, 410, gone);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const w: Watcher = { namespace: ns, selector: parseSelector(q.get('labelSelector')), res, stalled: this.stallWatches };
    this.watchers.add(w);
    res.on('close', () => {
      clearTimeout(w.timer);
      this.watchers.delete(w);
    });
    if (w.stalled) return;
    for (const e of this.history) if (e.rv > fromRv) this.write(w, e);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
      w.timer.unref();
    }
  }

  private endWatch(w: Watcher): void {
    clearTimeout(w.timer);
    this.watchers.delete(w);
    w.res.end();
  }

  private write(w: Watcher, e: HistoryEntry): void {
    if (w.stalled || !matches(e.object, w.namespace, w.selector)) return;
    w.res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
  }

  private emit(e: HistoryEntry): void {
    this.history.push(e);
    if (this.holdWatchEvents) this.held.push(e);
    else this.deliver(e);
  }

  private emitNamespace(type: HistoryEntry['type'], object: Obj): void {
    for (const res of this.namespaceWatches) res.write(JSON.stringify({ type, object: clone(object) }) + '\n');
  }

  private deliver(e: HistoryEntry): void {
    for (const w of this.watchers) this.write(w, e);
  }

  private createSecret(res: ServerResponse, ns: string, body: Obj): void {
    const name = body.metadata?.name as string | undefined;
    if (!name) return this.send(res, 422, status(422, 'Invalid', 'name required'));
    if (this.secrets.has(`${ns}/${name}`)) return this.send(res, 409, status(409, 'AlreadyExists', `secrets "${name}" already exists`));
    body.metadata.namespace = ns;
    delete body.metadata.resourceVersion;
    this.send(res, 201, this.putSecret(body));
  }

  private secretItem(res: ServerResponse, method: string, ns: string, name: string, body: Obj | undefined): void {
    const key = `${ns}/${name}`;
    const cur = this.secrets.get(key);
    const notFound = (): void => this.send(res, 404, status(404, 'NotFound', `secrets "${name}" not found`));
    const conflict = (): void =>
      this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified`));
    if (method === 'GET') return cur ? this.send(res, 200, clone(cur)) : notFound();
    if (method === 'PUT') {
      if (!cur) return notFound();
      const rv = body?.metadata?.resourceVersion as string | undefined;
      if (this.forceConflicts > 0) {
        this.forceConflicts--;
        return conflict();
      }
      if (rv && rv !== cur.metadata.resourceVersion) return conflict();
      return this.send(res, 200, this.putSecret({ ...body, metadata: { ...body!.metadata, namespace: ns, name } }));
    }
    if (method === 'DELETE') {
      if (!cur) return notFound();
      const pre = body?.preconditions?.resourceVersion as string | undefined;
      if (pre && pre !== cur.metadata.resourceVersion) return conflict();
      this.deleteSecret(ns, name);
      return this.send(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success', metadata: {} });
    }
    this.send(res, 405, status(405, 'MethodNotAllowed', method));
  }

  private lease(res: ServerResponse, method: string, ns: string, name: string | undefined, body: Obj | undefined): void {
    if (!name && method === 'POST') {
      const n = body?.metadata?.name as string;
      if (this.leases.has(`${ns}/${n}`)) return this.send(res, 409, status(409, 'AlreadyExists', `leases "${n}" already exists`));
      const stored = { ...clone(body ?? {}), metadata: { ...body?.metadata, namespace: ns, resourceVersion: String(++this.rev) } };
      this.leases.set(`${ns}/${n}`, stored);
      return this.send(res, 201, stored);
    }
    if (!name) return this.send(res, 405, status(405, 'MethodNotAllowed', method));
    const cur = this.leases.get(`${ns}/${name}`);
    if (method === 'GET') return cur ? this.send(res, 200, clone(cur)) : this.send(res, 404, status(404, 'NotFound', `leases "${name}" not found`));
    if (method === 'PUT') {
      if (!cur) return this.send(res, 404, status(404, 'NotFound', `leases "${name}" not found`));
      if (body?.metadata?.resourceVersion !== cur.metadata.resourceVersion) {
        return this.send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on leases "${name}"`));
      }
      const stored = { ...clone(body ?? {}), metadata: { ...body?.metadata, namespace: ns, resourceVersion: String(++this.rev) } };
      this.leases.set(`${ns}/${name}`, stored);
      return this.send(res, 200, stored);
    }
    this.send(res, 405, status(405, 'MethodNotAllowed', method));
  }
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
