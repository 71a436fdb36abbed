// SIGTERM on the compiled server, as a rolling update sends it: reviews in flight are answered (200, with
// `Connection: close` so the API server does not reuse the connection), a review still arriving on an open
// connection is answered normally (not 503), idle keep-alive connections are closed, and the process exits 0
// within seconds of its last answer. `npm start` passes the signal on to node.
import { spawn } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { fixtureText } from '../support/fixtures.js';
import { h2Request, h2Session } from '../support/h2.js';
import { emulatorEnv, spawnCompiledWebhook, startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

let emu: Emulator;
let world: DemoWorld;

beforeAll(async () => {
  world = demoState();
  emu = await startEmulator({ world });
});
afterAll(async () => {
  await emu.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** One keep-alive HTTPS connection, spoken by hand so the test decides exactly when each byte is sent. */
class RawConnection {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closedAt: number | undefined;
  readonly closed: Promise<void>;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.closed = new Promise((r) =>
      socket.once('close', () => {
        this.closedAt = Date.now();
        this.wake();
        r();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(port: number, ca: Buffer, socket?: Socket): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(socket ? { socket } : {}) }, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static request(body: string): string {
    return (
      `POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    );
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** The next complete response (Content-Length framed), or an error when the connection closes first. */
  async response(timeoutMs = 15_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const i = line.indexOf(':');
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (this.buf.length >= end + 4 + length) {
          const body = this.buf.subarray(end + 4, end + 4 + length).toString('utf8');
          this.buf = this.buf.subarray(end + 4 + length);
          return { status: Number(head[0]!.split(' ')[1]), headers, body, at: Date.now() };
        }
      }
      if (this.closedAt !== undefined) throw new Error('connection closed before a complete response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

function review(fixture: string, uid: string): string {
  const r = JSON.parse(fixtureText(fixture));
  r.request.uid = uid;
  return JSON.stringify(r);
}

describe('SIGTERM on the compiled server', () => {
  let w: WebhookProcess;
  afterAll(() => w?.kill());

  it('answers every review in flight or arriving on an open connection with 200 and Connection: close, closes idle connections, exits 0 within 5 s of the last answer', async () => {
    w = await startCompiledWebhook({
      ...emulatorEnv(emu, world.demo),
      LOG_LEVEL: 'info',
    });
    // An idle keep-alive connection: one quick review answered before the signal.
    const idle = await RawConnection.open(w.port, w.ca);
    idle.write(RawConnection.request(review('pod-no-annotations', 'idle-1')));
    expect((await idle.response()).headers.connection).toBe('keep-alive');

    // Slow reviews in flight: the first AssumeRole of the chain takes 2 s.
    emu.injectLatency(2000, { action: 'AssumeRole', times: 1 });
    const slow = await Promise.all([0, 1, 2].map(() => RawConnection.open(w.port, w.ca)));
    slow.forEach((c, i) => c.write(RawConnection.request(review('standalone-demo-cross-account', `slow-${i}`))));
    // A review whose bytes are still arriving when the signal comes.
    const partial = await RawConnection.open(w.port, w.ca);
    const late = RawConnection.request(review('pod-no-annotations', 'late-1'));
    partial.write(late.slice(0, 40));
    // A connection accepted before the signal whose TLS handshake ends after it: idle only from then on.
    const tcp = netConnect({ host: '127.0.0.1', port: w.port });
    await new Promise((r) => tcp.once('connect', r));
    await new Promise((r) => setTimeout(r, 500));

    const signalledAt = Date.now();
    w.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    partial.write(late.slice(40));
    const handshaken = await RawConnection.open(w.port, w.ca, tcp);

    const answers = await Promise.all([...slow, partial].map((c) => c.response()));
    for (const a of answers) {
      expect(a.status, a.body).toBe(200);
      expect(a.headers.connection).toBe('close');
      expect(JSON.parse(a.body).response.allowed).toBe(true);
    }
    expect(answers.slice(0, 3).every((a) => a.at - signalledAt > 1000), 'the slow reviews were really in flight').toBe(true);
    // Every connection is closed by the server: the idle one at once, the others after their answer.
    await Promise.all([idle, handshaken, ...slow, partial].map((c) => c.closed));
    expect(idle.closedAt! - signalledAt).toBeLessThan(1000);
    // It never carried a request: closed after the 2 s grace, not at the 20 s drain timeout.
    expect(handshaken.closedAt! - signalledAt).toBeLessThan(4000);

    const lastAnswer = Math.max(...answers.map((a) => a.at));
    const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('still running 10 s after the last answer'), lastAnswer + 10_000 - Date.now()))]);
    expect(code).toBe(0);
    expect(Date.now() - lastAnswer).toBeLessThan(5000);
  }, 40_000);
});

describe('SIGTERM with HTTP/2 sessions (the API server\'s protocol)', () => {
  let w: WebhookProcess;
  afterAll(() => w?.kill());

  it('GOAWAY: streams in flight and a stream sent as the signal arrives are answered 200; idle and drained sessions close; exit 0', async () => {
    w = await startCompiledWebhook({
      ...emulatorEnv(emu, world.demo),
      LOG_LEVEL: 'info',
    });
    const origin = `https://localhost:${w.port}`;
    const idle = await h2Session(origin, w.ca);
    expect(idle.alpnProtocol).toBe('h2');
    expect((await h2Request(idle, '/mutate?timeout=10s', { body: review('pod-no-annotations', 'h2-idle-1') })).status).toBe(200);
    const busy = await h2Session(origin, w.ca);
    const goaways: { session: string; lastStreamId: number }[] = [];
    const closedAt: Record<string, number> = {};
    for (const [name, s] of [['idle', idle], ['busy', busy]] as const) {
      s.on('goaway', (_code: number, lastStreamId: number) => goaways.push({ session: name, lastStreamId }));
      s.on('close', () => (closedAt[name] = Date.now()));
      s.on('error', () => undefined);
    }

    // Slow reviews in flight on one session: the first AssumeRole of the chain takes 2 s.
    emu.injectLatency(2000, { action: 'AssumeRole', times: 1 });
    const slow = [0, 1, 2].map((i) => h2Request(busy, '/mutate?timeout=10s', { body: review('standalone-demo-cross-account', `h2-slow-${i}`) }));
    // A review whose stream is open before the signal and whose body arrives after it. (A stream opened after the
    // client has read the notice is refused by node's client itself; Go's opens a new connection for it.)
    const late = review('pod-no-annotations', 'h2-late');
    const racing = new Promise<{ status: number; text: string; json: any }>((resolve, reject) => {
      const stream = busy.request({ ':method': 'POST', ':path': '/mutate?timeout=10s', 'content-type': 'application/json' });
      let status = 0;
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d: string) => (text += d));
      stream.on('end', () => resolve({ status, text, json: JSON.parse(text) }));
      stream.on('error', reject);
      stream.write(late.slice(0, 40));
      setTimeout(() => stream.end(late.slice(40)), 800);
    });
    await new Promise((r) => setTimeout(r, 500));
    const signalledAt = Date.now();
    w.child.kill('SIGTERM');

    const answers = await Promise.all([...slow, racing]);
    for (const a of answers) {
      expect(a.status, a.text).toBe(200);
      expect(a.json.response.allowed).toBe(true);
    }
    expect(answers.slice(0, 3).every((a) => a.json.response.patch), 'the slow reviews were patched').toBe(true);
    // Both sessions were told, and both are closed by the server: the idle one at once, the busy one once drained.
    await new Promise((r) => setTimeout(r, 1500));
    expect(goaways.map((g) => g.session).sort()).toContain('idle');
    expect(goaways.map((g) => g.session)).toContain('busy');
    // The first GOAWAY is the notice (last stream ID 2^31-1: nothing refused), as Go servers send it; streams a
    // client opened before reading it are served, and only the final GOAWAY after a PING round trip names the last.
    expect(goaways.find((g) => g.session === 'busy')!.lastStreamId).toBe(2 ** 31 - 1);
    expect(closedAt.idle! - signalledAt).toBeLessThan(1500);
    expect(closedAt.busy).toBeDefined();
    const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('still running 10 s after the signal'), 10_000))]);
    expect(code).toBe(0);
  }, 40_000);
});

describe('SIGTERM with stdout gone (the log reader exited)', () => {
  it('still exits 0 within seconds: the last log lines do not keep the process alive', async () => {
    const w = spawnCompiledWebhook({ LOG_LEVEL: 'info' });
    try {
      await w.waitForLine('"msg":"acr-pull-webhook serving"');
      w.child.stdout!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      w.child.kill('SIGTERM');
      const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('still running 10 s after SIGTERM'), 10_000))]);
      expect(code).toBe(0);
    } finally {
      w.kill();
    }
  }, 30_000);
});

describe('npm start', () => {
  it('passes SIGTERM to node: after kill <npm pid> the webhook exits and frees its ports', async () => {
    const npm = spawn('npm', ['start', '--ignore-scripts', '--silent'], {
      cwd: resolve('.'),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', METRICS_PORT: '0', BIND_ADDRESS: '127.0.0.1', METRICS_BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout!.on('data', (d) => (out += d));
    npm.stderr!.on('data', (d) => (out += d));
    let nodePid: number | undefined;
    try {
      const deadline = Date.now() + 20_000;
      let serving: Record<string, any> | undefined;
      while (!serving) {
        const line = out.split('\n').find((l) => l.includes('"msg":"acr-pull-webhook serving"'));
        if (line) serving = JSON.parse(line);
        else if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not serve: ${out}`);
        else await new Promise((r) => setTimeout(r, 100));
      }
      nodePid = serving!.pid as number;
      expect(nodePid).not.toBe(npm.pid);
      const ports = [serving!.port as number, serving!.metricsPort as number];

      process.kill(npm.pid!, 'SIGTERM');
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const refused = (port: number) =>
        new Promise<boolean>((r) => {
          const s = netConnect({ host: '127.0.0.1', port }, () => {
            s.destroy();
            r(false);
          });
          s.once('error', () => r(true));
        });
      const until = Date.now() + 10_000;
      while (Date.now() < until && (alive(nodePid) || !(await refused(ports[0]!)) || !(await refused(ports[1]!)))) await new Promise((r) => setTimeout(r, 100));
      expect(alive(nodePid), `node ${nodePid} still running 10 s after npm got SIGTERM`).toBe(false);
      for (const p of ports) expect(await refused(p)).toBe(true);
      expect(out).toContain('"signal":"SIGTERM"');
    } finally {
      if (npm.exitCode === null) npm.kill('SIGKILL');
      if (nodePid !== undefined) {
        try {
          process.kill(nodePid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  }, 40_000);
});
