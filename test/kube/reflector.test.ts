// The reflector's list + watch loop in-process: a scripted Watch and list source, fake timers for the backoff
// and the watchdog (the client-node Watch against a real API server is exercised by kube-store.test.ts and e2e).
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { olderThan, Reflector, reflectorConfig, type ListPage, type ListParams, type ReflectorConfig, type ReflectorEvent, type ReflectorSource, type RestartReason } from '../../src/kube/reflector.js';
import type { Logger } from '../../src/pull-secrets/logger.js';

interface Obj {
  metadata: { namespace: string; name: string; resourceVersion?: string };
  skip?: boolean;
  reject?: boolean;
}

const obj = (name: string, rv?: string, extra: Partial<Obj> = {}): Obj => ({ metadata: { namespace: 'ns', name, ...(rv !== undefined ? { resourceVersion: rv } : {}) }, ...extra });

interface WatchCall {
  path: string;
  query: Record<string, unknown>;
  onEvent: (type: string, o: unknown) => void;
  onDone: (err: unknown) => void;
  controller: AbortController;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type ListStep = ListPage | { fail: unknown } | { wait: Promise<ListPage> };

interface Harness {
  r: Reflector<Obj>;
  calls: WatchCall[];
  lists: ListParams[];
  listQueue: ListStep[];
  warns: Array<{ obj: object; msg: string | undefined }>;
  restarts: RestartReason[];
  events: Array<ReflectorEvent<Obj>>;
  /** Watch calls return an unresolved promise until `resolve()` when false. */
  autoResolve: { on: boolean };
}

let harnesses: Harness[] = [];

function make(opts: { accept?: boolean; scope?: string; selectors?: boolean } = {}): Harness {
  const calls: WatchCall[] = [];
  const lists: ListParams[] = [];
  const listQueue: ListStep[] = [];
  const warns: Harness['warns'] = [];
  const restarts: RestartReason[] = [];
  const events: Array<ReflectorEvent<Obj>> = [];
  const autoResolve = { on: true };
  const watch = {
    watch(path: string, query: Record<string, unknown>, onEvent: WatchCall['onEvent'], onDone: WatchCall['onDone']): Promise<AbortController> {
      const controller = new AbortController();
      return new Promise<AbortController>((res, rej) => {
        calls.push({ path, query, onEvent, onDone, controller, resolve: () => res(controller), reject: rej });
        if (autoResolve.on) res(controller);
      });
    },
  } as unknown as Watch;
  const logger: Logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (o, msg) => warns.push({ obj: o, msg }) };
  const source: ReflectorSource<Obj> = {
    kind: 'secret',
    path: '/api/v1/secrets',
    ...(opts.selectors ? { labelSelector: 'a=b', fieldSelector: 'type=x' } : {}),
    list: async (params) => {
      lists.push(params);
      const step = listQueue.shift() ?? { items: [], metadata: { resourceVersion: '100' } };
      if ('fail' in step) throw step.fail;
      if ('wait' in step) return step.wait;
      return step;
    },
    convert: (raw) => {
      const o = raw as Obj | null;
      return o && typeof o === 'object' && typeof o.metadata?.name === 'string' && !o.skip ? o : undefined;
    },
    key: (i) => `${i.metadata.namespace}/${i.metadata.name}`,
    resourceVersion: (i) => i.metadata.resourceVersion,
    ...(opts.accept === false ? {} : { accept: (i: Obj) => !i.reject }),
  };
  const cfg: ReflectorConfig = {
    watch,
    pageSize: 2,
    watchTimeoutSeconds: 60,
    watchdogMs: 5000,
    requestTimeoutMs: 1000,
    backoff: { initialMs: 100, maxMs: 1000, jitter: 0 },
    logger,
    onRestart: (reason) => restarts.push(reason),
    server: 'https://127.0.0.1:6443',
  };
  const r = opts.scope === undefined ? new Reflector(source, cfg) : new Reflector(source, cfg, opts.scope);
  r.onEvent((e) => events.push(e));
  const h = { r, calls, lists, listQueue, warns, restarts, events, autoResolve };
  harnesses.push(h);
  return h;
}

/** Lets promise chains run without moving the fake clock (no timer fires, not even a 0 ms one). */
async function flush(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

const keys = (r: Reflector<Obj>): string[] => [...r.values()].map((o) => `${o.metadata.name}@${o.metadata.resourceVersion ?? '-'}`).sort();

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    const p = h.r.stop();
    await vi.runOnlyPendingTimersAsync();
    await p;
  }
  vi.useRealTimers();
});

describe('olderThan', () => {
  it('compares numeric resourceVersions and says "not older" for anything else', () => {
    expect(olderThan('1', '2')).toBe(true);
    expect(olderThan('12', '13')).toBe(true);
    expect(olderThan('9', '10')).toBe(true);
    expect(olderThan('2', '2')).toBe(false);
    expect(olderThan('3', '2')).toBe(false);
    expect(olderThan('', '2')).toBe(false);
    expect(olderThan(undefined, '2')).toBe(false);
    expect(olderThan('2', '')).toBe(false);
    expect(olderThan('2', undefined)).toBe(false);
    expect(olderThan('x1', '2')).toBe(false);
    expect(olderThan('1x', '2')).toBe(false);
    expect(olderThan('1', 'x2')).toBe(false);
    expect(olderThan('1', '2x')).toBe(false);
    expect(olderThan('18446744073709551616', '18446744073709551617')).toBe(true);
  });
});

describe('reflectorConfig', () => {
  let kc: KubeConfig;
  beforeEach(() => {
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443/' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });

  it('fills the defaults', () => {
    const cfg = reflectorConfig(kc);
    expect(cfg.watch).toBeInstanceOf(Watch);
    expect({ ...cfg, watch: undefined, logger: undefined }).toEqual({
      watch: undefined,
      pageSize: 500,
      watchTimeoutSeconds: 300,
      watchdogMs: 330_000,
      requestTimeoutMs: 10_000,
      backoff: { initialMs: 500, maxMs: 30_000, jitter: 0.2 },
      logger: undefined,
      onRestart: undefined,
      server: 'https://127.0.0.1:6443',
    });
    cfg.logger.warn({}, 'goes nowhere');
  });

  it('takes every option given', () => {
    const logger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
    const onRestart = (): void => {};
    const cfg = reflectorConfig(kc, { pageSize: 7, watchTimeoutSeconds: 2, watchdogGraceMs: 500, requestTimeoutMs: 30, restartInitialMs: 50, restartMaxMs: 800, logger, onRestart });
    expect(cfg.logger).toBe(logger);
    expect(cfg.onRestart).toBe(onRestart);
    expect({ pageSize: cfg.pageSize, watchTimeoutSeconds: cfg.watchTimeoutSeconds, watchdogMs: cfg.watchdogMs, requestTimeoutMs: cfg.requestTimeoutMs, backoff: cfg.backoff }).toEqual({
      pageSize: 7,
      watchTimeoutSeconds: 2,
      watchdogMs: 2500,
      requestTimeoutMs: 30,
      backoff: { initialMs: 50, maxMs: 800, jitter: 0.2 },
    });
  });
});

describe('Reflector: list', () => {
  it('fills the cache from every page, skipping what convert or accept refuse, then watches from the list version', async () => {
    const h = make({ selectors: true, scope: 'team-a' });
    h.listQueue.push(
      { items: [obj('a', '5'), obj('skipped', '6', { skip: true })], metadata: { _continue: 'page2', resourceVersion: '7' } },
      { items: [obj('b', '8'), obj('refused', '9', { reject: true })], metadata: { resourceVersion: '42' } },
    );
    const synced = h.r.start();
    expect(h.r.synced()).toBe(false);
    await synced;
    expect(h.r.synced()).toBe(true);
    expect(h.lists).toEqual([
      { limit: 2, labelSelector: 'a=b', fieldSelector: 'type=x' },
      { limit: 2, _continue: 'page2', labelSelector: 'a=b', fieldSelector: 'type=x' },
    ]);
    expect(keys(h.r)).toEqual(['a@5', 'b@8']);
    expect(h.r.size).toBe(2);
    expect(h.r.get('ns/b')?.metadata.resourceVersion).toBe('8');
    expect(h.events).toEqual([{ type: 'RELISTED' }]);
    await flush();
    expect(h.calls.map((c) => [c.path, c.query])).toEqual([
      ['/api/v1/secrets', { resourceVersion: '42', labelSelector: 'a=b', fieldSelector: 'type=x', allowWatchBookmarks: true, timeoutSeconds: 60 }],
    ]);
    expect(h.r.stats).toEqual({ lists: 2, watches: 1, restarts: 0 });
    expect(h.warns).toEqual([]);
    expect(h.restarts).toEqual([]);
  });

  it('takes a page without metadata as the last one, and then watches from no version', async () => {
    const h = make({ accept: false });
    h.listQueue.push({ items: [obj('a', '5'), obj('skipped', '6', { skip: true })] });
    await h.r.start();
    await flush();
    expect(keys(h.r)).toEqual(['a@5']);
    expect(h.lists).toEqual([{ limit: 2 }]);
    expect(h.calls.map((c) => c.query)).toEqual([{ resourceVersion: '', allowWatchBookmarks: true, timeoutSeconds: 60 }]);
    expect(h.warns).toEqual([]);
  });

  it('a second start while running starts nothing more', async () => {
    const h = make();
    await h.r.start();
    await h.r.start();
    await flush();
    expect(h.lists).toHaveLength(1);
    expect(h.calls).toHaveLength(1);
  });

  it('a list failure is logged with the call, counted, and retried after the backoff', async () => {
    const h = make();
    h.listQueue.push({ fail: Object.assign(new Error('HTTP-Code: 500'), { code: 500 }) }, { fail: Object.assign(new Error('HTTP-Code: 500'), { code: 500 }) });
    const synced = h.r.start();
    await flush();
    expect(h.warns).toHaveLength(1);
    expect(h.warns[0]?.msg).toBe('listing secrets failed');
    expect(h.warns[0]?.obj).toMatchObject({ namespace: '*', call: 'list secrets (GET /api/v1/secrets)', status: 500, server: 'https://127.0.0.1:6443', failures: 1 });
    expect(h.restarts).toEqual(['error']);
    expect(h.r.stats.restarts).toBe(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(h.lists).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.lists).toHaveLength(2);
    expect(h.warns[1]?.obj).toMatchObject({ failures: 2 });
    await vi.advanceTimersByTimeAsync(199);
    expect(h.lists).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await synced;
    expect(h.lists).toHaveLength(3);
    expect(h.r.synced()).toBe(true);
    expect(h.restarts).toEqual(['error', 'error']);
  });

  it('410 Gone from a list starts over at once from a fresh list, without a warning', async () => {
    const h = make();
    h.listQueue.push({ fail: Object.assign(new Error('HTTP-Code: 410'), { code: 410 }) }, { items: [obj('a', '5')], metadata: { resourceVersion: '50' } });
    await h.r.start();
    await flush();
    expect(h.restarts).toEqual(['gone']);
    expect(h.lists).toHaveLength(2);
    expect(h.warns).toEqual([]);
    expect(h.calls.map((c) => c.query.resourceVersion)).toEqual(['50']);
  });

  it('a list that ends after stop changes nothing and logs nothing', async () => {
    const h = make();
    let finishList!: (p: ListPage) => void;
    h.listQueue.push({ wait: new Promise<ListPage>((res) => (finishList = res)) });
    void h.r.start();
    await flush();
    const stopped = h.r.stop();
    finishList({ items: [obj('a', '5')], metadata: { resourceVersion: '50' } });
    await stopped;
    expect(h.r.size).toBe(0);
    expect(h.r.synced()).toBe(false);
    expect(h.events).toEqual([]);
    expect(h.calls).toHaveLength(0);
  });

  it('a list that fails after stop logs nothing', async () => {
    const h = make();
    let failList!: (e: unknown) => void;
    h.listQueue.push({ wait: new Promise<ListPage>((_res, rej) => (failList = rej)) });
    void h.r.start();
    await flush();
    const stopped = h.r.stop();
    failList(Object.assign(new Error('HTTP-Code: 500'), { code: 500 }));
    await stopped;
    expect(h.warns).toEqual([]);
    expect(h.restarts).toEqual([]);
  });

  it('stop releases whoever waits for the first list, synced or not', async () => {
    const h = make();
    let finish!: (p: ListPage) => void;
    h.listQueue.push({ wait: new Promise<ListPage>((res) => (finish = res)) });
    let released = 0;
    void h.r.start().then(() => released++);
    void h.r.whenSynced().then(() => released++);
    await flush();
    expect(released).toBe(0);
    const stopped = h.r.stop();
    finish({ items: [], metadata: { resourceVersion: '1' } });
    await stopped;
    await flush();
    expect(released).toBe(2);
    expect(h.r.synced()).toBe(false);
  });

  it('a start while an earlier stop waits on a list runs one loop: the old list is dropped, one watch follows the new list', async () => {
    const h = make();
    let finishOld!: (p: ListPage) => void;
    h.listQueue.push({ wait: new Promise<ListPage>((res) => (finishOld = res)) });
    h.listQueue.push({ items: [obj('new', '7')], metadata: { resourceVersion: '70' } });
    void h.r.start();
    await flush();
    const stopped = h.r.stop();
    void h.r.start();
    await flush();
    finishOld({ items: [obj('old', '5')], metadata: { resourceVersion: '50' } });
    await flush();
    // Asserted before awaiting the stop: with two loops that stop would never end.
    expect(h.r.synced()).toBe(true);
    expect(keys(h.r)).toEqual(['new@7']);
    expect(h.lists).toHaveLength(2);
    expect(h.calls.map((c) => c.query.resourceVersion)).toEqual(['70']);
    await stopped;
  });

  it('a start made while an earlier stop is pending waits for its own list, not for that stop', async () => {
    const h = make();
    let finishOld!: (p: ListPage) => void;
    let finishNew!: (p: ListPage) => void;
    h.listQueue.push({ wait: new Promise<ListPage>((res) => (finishOld = res)) });
    h.listQueue.push({ wait: new Promise<ListPage>((res) => (finishNew = res)) });
    void h.r.start();
    await flush();
    const stopped = h.r.stop();
    let synced = false;
    void h.r.start().then(() => (synced = true));
    finishOld({ items: [], metadata: { resourceVersion: '50' } });
    await flush();
    expect(synced).toBe(false);
    finishNew({ items: [obj('b', '8')], metadata: { resourceVersion: '80' } });
    await flush();
    expect(synced).toBe(true);
    expect(keys(h.r)).toEqual(['b@8']);
    await stopped;
  });

  it('a listener that throws is logged and the others still run', async () => {
    const h = make();
    const seen: string[] = [];
    h.r.onEvent(() => {
      throw new Error('listener broke');
    });
    h.r.onEvent((e) => seen.push(e.type));
    await h.r.start();
    expect(seen).toEqual(['RELISTED']);
    expect(h.warns).toEqual([{ obj: { kind: 'secret', err: 'Error' }, msg: 'cache listener failed' }]);
  });
});

describe('Reflector: observe and forget', () => {
  it('observe keeps the newer version and refuses what accept refuses; forget drops only the version deleted or newer', async () => {
    const h = make();
    h.listQueue.push({ items: [obj('a', '10')], metadata: { resourceVersion: '10' } });
    await h.r.start();
    h.r.observe(obj('a', '9'));
    expect(keys(h.r)).toEqual(['a@10']);
    h.r.observe(obj('a', '11'));
    expect(keys(h.r)).toEqual(['a@11']);
    h.r.observe(obj('n', '3', { reject: true }));
    expect(keys(h.r)).toEqual(['a@11']);
    h.r.forget('ns/a', '5');
    expect(keys(h.r)).toEqual(['a@11']);
    h.r.forget('ns/a', '11');
    expect(keys(h.r)).toEqual([]);
    h.r.observe(obj('b', '4'));
    h.r.forget('ns/b');
    expect(keys(h.r)).toEqual([]);
  });
});

describe('Reflector: watch', () => {
  async function started(opts: Parameters<typeof make>[0] = {}): Promise<Harness> {
    const h = make(opts);
    h.listQueue.push({ items: [obj('a', '10'), obj('b', '10')], metadata: { resourceVersion: '10' } });
    await h.r.start();
    await flush();
    expect(h.calls).toHaveLength(1);
    return h;
  }

  it('applies ADDED, MODIFIED and DELETED events and watches on from the last version seen', async () => {
    const h = await started();
    const w = h.calls[0]!;
    w.onEvent('ADDED', obj('c', '11'));
    w.onEvent('MODIFIED', obj('a', '12'));
    w.onEvent('ADDED', obj('skipped', '13', { skip: true }));
    w.onEvent('ADDED', obj('refused', '14', { reject: true }));
    w.onEvent('DELETED', obj('b', '15'));
    w.onEvent('DELETED', { metadata: { resourceVersion: '16' } });
    w.onEvent('BOOKMARK', obj('c', '17'));
    expect(keys(h.r)).toEqual(['a@12', 'c@11']);
    expect(h.events).toEqual([{ type: 'RELISTED' }, { type: 'ADDED', item: obj('c', '11') }, { type: 'MODIFIED', item: obj('a', '12') }, { type: 'DELETED', item: obj('b', '15') }]);
    w.onDone(null);
    await flush();
    expect(h.calls).toHaveLength(2);
    expect(h.calls[1]!.query.resourceVersion).toBe('17');
    expect(h.restarts).toEqual(['closed']);
    expect(h.r.stats).toEqual({ lists: 1, watches: 2, restarts: 1 });
    expect(h.warns).toEqual([]);
  });

  it('an event without a usable resourceVersion keeps the last one', async () => {
    const h = await started();
    const w = h.calls[0]!;
    expect(() => w.onEvent('BOOKMARK', null)).not.toThrow();
    expect(() => w.onEvent('BOOKMARK', {})).not.toThrow();
    w.onEvent('BOOKMARK', { metadata: { resourceVersion: 20 } });
    w.onEvent('ADDED', obj('c'));
    w.onDone(null);
    await flush();
    expect(h.lists).toHaveLength(1);
    expect(h.calls.map((c) => c.query.resourceVersion)).toEqual(['10', '10']);
    expect(keys(h.r)).toEqual(['a@10', 'b@10', 'c@-']);
  });

  it('without an accept hook every converted event is taken', async () => {
    const h = await started({ accept: false });
    h.calls[0]!.onEvent('ADDED', obj('c', '11', { reject: true }));
    expect(keys(h.r)).toEqual(['a@10', 'b@10', 'c@11']);
  });

  it('a watch that closes after events reconnects at once; one closed at once without events backs off', async () => {
    const h = await started();
    h.calls[0]!.onEvent('ADDED', obj('c', '11'));
    h.calls[0]!.onDone(null);
    await flush();
    expect(h.calls).toHaveLength(2);
    h.calls[1]!.onDone(null);
    await flush();
    expect(h.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(h.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toHaveLength(3);
    h.calls[2]!.onDone(null);
    await vi.advanceTimersByTimeAsync(199);
    expect(h.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toHaveLength(4);
    expect(h.restarts).toEqual(['closed', 'closed', 'closed']);
    expect(h.warns).toEqual([]);
  });

  it('a watch closed without events after more than a second reconnects at once; at exactly a second it backs off', async () => {
    const h = await started();
    await vi.advanceTimersByTimeAsync(1001);
    h.calls[0]!.onDone(null);
    await flush();
    expect(h.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    h.calls[1]!.onDone(null);
    await flush();
    expect(h.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.calls).toHaveLength(3);
  });

  it('a silent watch is given up after the watchdog, logged, and retried after the backoff', async () => {
    const h = await started({ scope: 'team-a' });
    h.calls[0]!.onEvent('ADDED', obj('c', '11'));
    await vi.advanceTimersByTimeAsync(4999);
    expect(h.restarts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.restarts).toEqual(['stalled']);
    expect(h.calls[0]!.controller.signal.aborted).toBe(true);
    expect(h.warns).toEqual([{ obj: { namespace: 'team-a' }, msg: 'secret watch went silent; reconnecting' }]);
    await vi.advanceTimersByTimeAsync(99);
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toHaveLength(2);
    expect(h.calls[1]!.query.resourceVersion).toBe('11');
    // An event the old watch still delivers is ignored.
    h.calls[0]!.onEvent('ADDED', obj('late', '12'));
    expect(h.r.get('ns/late')).toBeUndefined();
  });

  it('410 Gone in the stream relists at once', async () => {
    const h = await started();
    h.calls[0]!.onEvent('ERROR', { code: 410, reason: 'Expired' });
    h.calls[0]!.onDone(null);
    await flush();
    expect(h.restarts).toEqual(['gone']);
    expect(h.lists).toHaveLength(2);
    expect(h.calls).toHaveLength(2);
    expect(h.warns).toEqual([]);
  });

  it('another error in the stream is logged as a failed watch and backs off', async () => {
    const h = await started();
    h.calls[0]!.onEvent('ERROR', { code: 500, message: 'etcd down' });
    h.calls[0]!.onDone(null);
    await flush();
    expect(h.restarts).toEqual(['error']);
    expect(h.lists).toHaveLength(1);
    expect(h.warns).toHaveLength(1);
    expect(h.warns[0]?.msg).toBe('secret watch failed');
    expect(h.warns[0]?.obj).toMatchObject({ namespace: '*', call: 'watch secrets (GET /api/v1/secrets)', status: 500, failures: 1 });
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(h.calls).toHaveLength(2);
  });

  it('a watch request that fails is logged and retried after the backoff', async () => {
    const h = make();
    h.autoResolve.on = false;
    await h.r.start();
    await flush();
    h.calls[0]!.reject(Object.assign(new Error('HTTP-Code: 403'), { code: 403 }));
    await flush();
    expect(h.restarts).toEqual(['error']);
    expect(h.warns[0]?.msg).toBe('secret watch failed');
    expect(h.warns[0]?.obj).toMatchObject({ call: 'watch secrets (GET /api/v1/secrets)', status: 403, failures: 1 });
    await vi.advanceTimersByTimeAsync(100);
    expect(h.calls).toHaveLength(2);
  });

  it('a watch stopped before its request is answered is aborted when the answer comes', async () => {
    const h = make();
    h.autoResolve.on = false;
    await h.r.start();
    await flush();
    await h.r.stop();
    h.calls[0]!.resolve();
    await flush();
    expect(h.calls[0]!.controller.signal.aborted).toBe(true);
    expect(h.restarts).toEqual([]);
  });

  it('stop ends the watch quietly, also when the watch had just closed', async () => {
    const h = await started();
    h.calls[0]!.onDone(null);
    await h.r.stop();
    expect(h.restarts).toEqual([]);
    expect(h.warns).toEqual([]);
    expect(h.calls).toHaveLength(1);
  });

  it('stop then start at once leaves one loop, and the stopped watch is not taken for a failure', async () => {
    const h = await started();
    const stopped = h.r.stop();
    void h.r.start();
    await stopped;
    await flush();
    expect(h.calls[0]!.controller.signal.aborted).toBe(true);
    expect(h.restarts).toEqual([]);
    expect(h.warns).toEqual([]);
    expect(h.calls).toHaveLength(2);
  });
});
