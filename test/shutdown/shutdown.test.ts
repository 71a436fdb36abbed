// The graceful stop in-process: the HTTP/2 GOAWAY sequence, which connections the closer follows and cuts, the
// drain's timers, and the signal handler's order of logs and exit codes. Sessions, sockets and the Fastify app are
// fakes (their Node counterparts' observable surface); answers and unused-connection cuts use a real loopback
// HTTP/1.1 server. Timers and the clock are faked.
import { EventEmitter } from 'node:events';
import { Agent, createServer, get, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connectionCloser, drainListener, exitOnSignals, type ConnectionCloser } from '../../src/shutdown.js';

class FakeSession extends EventEmitter {
  closed = false;
  destroyed = false;
  pingAnswer: (() => void) | undefined;
  pingReturns = true;
  goaway = vi.fn();
  ping = vi.fn((cb: () => void) => {
    this.pingAnswer = cb;
    return this.pingReturns;
  });
  close = vi.fn(() => {
    this.closed = true;
  });
  destroy = vi.fn(() => {
    this.destroyed = true;
  });
}

class FakeSocket extends EventEmitter {
  constructor(readonly alpnProtocol?: string | false) {
    super();
  }
  destroy = vi.fn();
}

function settled(p: Promise<unknown>): () => boolean {
  let done = false;
  void p.then(() => (done = true));
  return () => done;
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('HTTP/2 sessions on close()', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  function attached(): { closer: ConnectionCloser; server: EventEmitter } {
    const closer = connectionCloser();
    const server = new EventEmitter();
    closer.attach(server as never, true);
    return { closer, server };
  }

  it('sends the notice GOAWAY, then closes the session once the PING comes back, and only then resolves', async () => {
    const { closer, server } = attached();
    const s = new FakeSession();
    server.emit('session', s);
    expect(s.goaway).not.toHaveBeenCalled();
    const done = settled(closer.close());
    expect(s.goaway).toHaveBeenCalledExactlyOnceWith(0, 2147483647);
    expect(s.ping).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(s.close).not.toHaveBeenCalled();
    expect(done()).toBe(false);
    s.pingAnswer!();
    expect(s.close).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(done()).toBe(true);
    expect(closer.closing).toBe(true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.close).toHaveBeenCalledTimes(1);
  });

  it('closes after 1 s when the PING never comes back', async () => {
    const { closer, server } = attached();
    const s = new FakeSession();
    server.emit('session', s);
    const done = settled(closer.close());
    await vi.advanceTimersByTimeAsync(999);
    expect(s.close).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(s.close).toHaveBeenCalledTimes(1);
    expect(done()).toBe(true);
  });

  it('closes at once when the PING cannot be sent, or the GOAWAY throws', async () => {
    const { closer, server } = attached();
    const s = new FakeSession();
    s.pingReturns = false;
    const t = new FakeSession();
    t.goaway.mockImplementation(() => {
      throw new Error('session gone');
    });
    server.emit('session', s);
    server.emit('session', t);
    const done = settled(closer.close());
    expect(s.close).toHaveBeenCalledTimes(1);
    expect(t.close).toHaveBeenCalledTimes(1);
    expect(t.ping).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(0);
    expect(done()).toBe(true);
  });

  it('leaves a session alone that is already closed or destroyed', async () => {
    const { closer, server } = attached();
    const closed = new FakeSession();
    closed.closed = true;
    const destroyed = new FakeSession();
    destroyed.destroyed = true;
    server.emit('session', closed);
    server.emit('session', destroyed);
    const done = settled(closer.close());
    await vi.advanceTimersByTimeAsync(0);
    expect(done()).toBe(true);
    for (const s of [closed, destroyed]) {
      expect(s.goaway).not.toHaveBeenCalled();
      expect(s.ping).not.toHaveBeenCalled();
      expect(s.close).not.toHaveBeenCalled();
    }
  });

  it('does not close a session that got closed or destroyed while its PING was out', async () => {
    const { closer, server } = attached();
    const a = new FakeSession();
    const b = new FakeSession();
    server.emit('session', a);
    server.emit('session', b);
    const done = settled(closer.close());
    a.destroyed = true;
    a.pingAnswer!();
    expect(a.close).not.toHaveBeenCalled();
    b.pingAnswer!();
    expect(b.close).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(done()).toBe(true);
  });

  it('sends a session opened after close() its GOAWAY at once, and forgets sessions that closed', async () => {
    const { closer, server } = attached();
    const gone = new FakeSession();
    server.emit('session', gone);
    gone.emit('close');
    void closer.close();
    expect(gone.goaway).not.toHaveBeenCalled();
    const late = new FakeSession();
    server.emit('session', late);
    expect(late.goaway).toHaveBeenCalledExactlyOnceWith(0, 2147483647);
    closer.closeAll();
    expect(late.destroy).toHaveBeenCalledTimes(1);
    expect(gone.destroy).not.toHaveBeenCalled();
  });
});

describe('connections the closer follows', () => {
  it('follows plain connections, or TLS ones, and cuts unused ones but never an HTTP/2 one', () => {
    const closer = connectionCloser();
    const plain = new EventEmitter();
    closer.attach(plain as never, false);
    const tls = new EventEmitter();
    closer.attach(tls as never, true);
    const p = new FakeSocket();
    plain.emit('connection', p);
    const raw = new FakeSocket();
    tls.emit('connection', raw); // the TCP socket under TLS: not the one HTTP sees
    const h1 = new FakeSocket('http/1.1');
    const h2 = new FakeSocket('h2');
    tls.emit('secureConnection', h1);
    tls.emit('secureConnection', h2);
    closer.closeUnused();
    expect(p.destroy).toHaveBeenCalledTimes(1);
    expect(h1.destroy).toHaveBeenCalledTimes(1);
    expect(h2.destroy).not.toHaveBeenCalled();
    expect(raw.destroy).not.toHaveBeenCalled();
    const s = new FakeSession();
    tls.emit('session', s);
    h1.emit('close');
    closer.closeAll();
    expect(s.destroy).toHaveBeenCalledTimes(1);
    expect(h2.destroy).toHaveBeenCalledTimes(1);
    expect(p.destroy).toHaveBeenCalledTimes(2);
    expect(h1.destroy).toHaveBeenCalledTimes(1);
  });
});

describe('HTTP/1.1 answers (loopback)', () => {
  let server: Server;
  let closer: ConnectionCloser;
  let agent: Agent;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    closer = connectionCloser();
    server = createServer({ ServerResponse: closer.ServerResponse }, (_req, res) => res.end('ok'));
    closer.attach(server, false);
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  afterEach(async () => {
    agent.destroy();
    for (const s of sockets.splice(0)) s.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function ask(): Promise<string | undefined> {
    const { port } = server.address() as AddressInfo;
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers.connection));
      }).on('error', reject);
    });
  }

  it('keeps connections alive until close(), then answers with Connection: close', async () => {
    expect(await ask()).toBe('keep-alive');
    await closer.close();
    expect(await ask()).toBe('close');
  });

  it('cuts a connection that never carried a request, not one that did', async () => {
    expect(await ask()).toBe('keep-alive'); // the agent keeps this one open
    const { port } = server.address() as AddressInfo;
    const accepted = new Promise((r) => server.once('connection', r));
    const idle = connect(port, '127.0.0.1');
    sockets.push(idle);
    await accepted;
    const idleClosed = new Promise((r) => idle.once('close', r));
    closer.closeUnused();
    await idleClosed;
    const [kept] = Object.values(agent.freeSockets).flat();
    expect(kept?.destroyed).toBe(false);
    expect(await ask()).toBe('keep-alive');
  });
});

describe('drainListener', () => {
  const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  let finishClose: () => void;
  let order: string[];

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    log.info.mockReset();
    log.warn.mockReset();
    log.error.mockReset();
    order = [];
  });

  function fakes(withIdleClose = true) {
    const closeIdleConnections = vi.fn();
    const app = {
      server: withIdleClose ? { closeIdleConnections } : {},
      close: vi.fn(() => {
        order.push('app.close');
        return new Promise<void>((r) => (finishClose = r));
      }),
    } as unknown as FastifyInstance;
    const closer = {
      close: vi.fn(async () => {
        order.push('closer.close');
      }),
      closeUnused: vi.fn(),
      closeAll: vi.fn(),
    } as unknown as ConnectionCloser & { closeUnused: ReturnType<typeof vi.fn>; closeAll: ReturnType<typeof vi.fn> };
    return { app, closer, closeIdleConnections };
  }

  it('closes idle connections every 250 ms and unused ones from 2 s on, and stops both once drained', async () => {
    const { app, closer, closeIdleConnections } = fakes();
    const drained = settled(drainListener(app, closer, 20_000, log));
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['closer.close', 'app.close']);
    await vi.advanceTimersByTimeAsync(250);
    expect(closeIdleConnections).toHaveBeenCalledTimes(1);
    expect(closer.closeUnused).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1500);
    expect(closeIdleConnections).toHaveBeenCalledTimes(7);
    expect(closer.closeUnused).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(250); // 2000 ms exactly
    expect(closer.closeUnused).toHaveBeenCalledTimes(1);
    finishClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained()).toBe(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(closeIdleConnections).toHaveBeenCalledTimes(8);
    expect(closer.closeUnused).toHaveBeenCalledTimes(1);
    expect(closer.closeAll).not.toHaveBeenCalled();
    expect(log.warn).not.toHaveBeenCalled();
  });

  it('works on a server without closeIdleConnections', async () => {
    const { app, closer } = fakes(false);
    void drainListener(app, closer, 20_000, log);
    await vi.advanceTimersByTimeAsync(2000);
    expect(closer.closeUnused).toHaveBeenCalledTimes(1);
    finishClose();
  });

  it('cuts every connection at the drain timeout, and says so', async () => {
    const { app, closer } = fakes();
    const drained = settled(drainListener(app, closer, 5000, log));
    await vi.advanceTimersByTimeAsync(4999);
    expect(closer.closeAll).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(closer.closeAll).toHaveBeenCalledTimes(1);
    expect(log.warn).toHaveBeenCalledExactlyOnceWith({ drainTimeoutMs: 5000 }, 'connections still open at the drain timeout; closing them');
    finishClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(drained()).toBe(true);
  });
});

describe('exitOnSignals', () => {
  const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  let added: { event: 'SIGTERM' | 'SIGINT'; fn: () => void }[];
  let finishClose: () => void;
  let exitSpy: ReturnType<typeof vi.fn<(code: number) => void>>;
  let processExit: ReturnType<typeof vi.spyOn>;

  beforeEach(() => {
    // Never the real one, whatever the code under test does.
    processExit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    finishClose = () => {
      throw new Error('app.close() was not called yet');
    };
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    log.info.mockReset();
    log.warn.mockReset();
    log.error.mockReset();
    added = [];
    exitSpy = vi.fn<(code: number) => void>();
  });

  afterEach(() => {
    for (const { event, fn } of added) process.removeListener(event, fn);
  });

  function install(opts: { stopRest?: () => Promise<unknown>; exit?: (code: number) => void; drainTimeoutMs?: number; forceExitMs?: number } = {}) {
    const before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
    const app = {
      server: {},
      close: vi.fn(() => new Promise<void>((r) => (finishClose = r))),
    } as unknown as FastifyInstance & { close: ReturnType<typeof vi.fn> };
    const closer = { close: async () => {}, closeUnused: vi.fn(), closeAll: vi.fn() } as unknown as ConnectionCloser;
    const stopRest = vi.fn(opts.stopRest ?? (async () => {}));
    exitOnSignals({ app, closer, log, stopRest, exit: 'exit' in opts ? opts.exit : exitSpy, drainTimeoutMs: opts.drainTimeoutMs, forceExitMs: opts.forceExitMs });
    for (const event of ['SIGTERM', 'SIGINT'] as const) {
      for (const fn of process.listeners(event)) if (!before[event].includes(fn)) added.push({ event, fn: fn as () => void });
    }
    const handler = (event: 'SIGTERM' | 'SIGINT') => added.find((a) => a.event === event)!.fn;
    return { app, closer, stopRest, handler };
  }

  it('on SIGTERM drains, stops the rest, logs how long each took, and exits 0; a second signal changes nothing', async () => {
    const { app, stopRest, handler } = install();
    expect(added.map((a) => a.event)).toEqual(['SIGTERM', 'SIGINT']);
    handler('SIGTERM')();
    expect(log.info).toHaveBeenCalledExactlyOnceWith({ signal: 'SIGTERM' }, 'shutting down: no new connections, answering reviews in flight and on open connections');
    handler('SIGINT')();
    await vi.advanceTimersByTimeAsync(300);
    expect(app.close).toHaveBeenCalledTimes(1);
    expect(stopRest).not.toHaveBeenCalled();
    finishClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(stopRest).toHaveBeenCalledTimes(1);
    expect(log.info.mock.calls).toEqual([
      [{ signal: 'SIGTERM' }, 'shutting down: no new connections, answering reviews in flight and on open connections'],
      [{ ms: 300 }, 'admission listener drained'],
      [{ ms: 300 }, 'stopped'],
    ]);
    expect(exitSpy).toHaveBeenCalledExactlyOnceWith(0);
    expect(log.error).not.toHaveBeenCalled();
  });

  it('names SIGINT when that was the signal', async () => {
    const { handler } = install();
    handler('SIGINT')();
    expect(log.info).toHaveBeenCalledExactlyOnceWith({ signal: 'SIGINT' }, 'shutting down: no new connections, answering reviews in flight and on open connections');
    await vi.advanceTimersByTimeAsync(0);
    finishClose();
  });

  it('exits 1 when stopping the rest fails', async () => {
    const { handler } = install({ stopRest: async () => Promise.reject(Object.assign(new Error('lease lost'), { code: 409 })) });
    handler('SIGTERM')();
    await vi.advanceTimersByTimeAsync(0);
    finishClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.error).toHaveBeenCalledExactlyOnceWith({ err: 'Error HTTP 409' }, 'stopping failed');
    expect(exitSpy).toHaveBeenCalledExactlyOnceWith(1);
  });

  it('cuts the drain at 20 s and exits 1 at 25 s when stopping hangs (the defaults)', async () => {
    const { handler } = install({ stopRest: () => new Promise(() => {}) });
    handler('SIGTERM')();
    await vi.advanceTimersByTimeAsync(19_999);
    expect(log.warn).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(log.warn).toHaveBeenCalledExactlyOnceWith({ drainTimeoutMs: 20_000 }, 'connections still open at the drain timeout; closing them');
    finishClose();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(exitSpy).not.toHaveBeenCalled();
    expect(log.error).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(log.error).toHaveBeenCalledExactlyOnceWith({ forceExitMs: 25_000 }, 'shutdown did not finish in time; exiting');
    expect(exitSpy).toHaveBeenCalledExactlyOnceWith(1);
  });

  it('takes the drain timeout and the force-exit delay it is given', async () => {
    const { handler } = install({ drainTimeoutMs: 40, forceExitMs: 90 });
    handler('SIGTERM')();
    await vi.advanceTimersByTimeAsync(40);
    expect(log.warn).toHaveBeenCalledExactlyOnceWith({ drainTimeoutMs: 40 }, 'connections still open at the drain timeout; closing them');
    await vi.advanceTimersByTimeAsync(49);
    expect(exitSpy).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(log.error).toHaveBeenCalledExactlyOnceWith({ forceExitMs: 90 }, 'shutdown did not finish in time; exiting');
    expect(exitSpy).toHaveBeenCalledExactlyOnceWith(1);
    finishClose();
  });

  it('without an exit function, exits the process 100 ms after the last log line', async () => {
    const { handler } = install({ exit: undefined });
    handler('SIGTERM')();
    await vi.advanceTimersByTimeAsync(0);
    finishClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.info).toHaveBeenLastCalledWith({ ms: 0 }, 'stopped');
    await vi.advanceTimersByTimeAsync(99);
    expect(processExit).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(processExit).toHaveBeenCalledExactlyOnceWith(0);
  });

  it('with an exit function, never exits the process itself', async () => {
    const { handler } = install();
    handler('SIGTERM')();
    await vi.advanceTimersByTimeAsync(0);
    finishClose();
    await vi.advanceTimersByTimeAsync(1000);
    expect(exitSpy).toHaveBeenCalledExactlyOnceWith(0);
    expect(processExit).not.toHaveBeenCalled();
  });
});
