// buildServer in-process (src/server.ts): review log lines at each level, fastify's error answers, the sync wait on
// /validate, the ?timeout= grammar, listener settings, HTTP/2 routing and sessions, certificate reload.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { request } from 'node:http';
import { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { PullSecretSpec } from '../src/acr/model.js';
import { buildRegistryIndex } from '../src/acr/served-registries.js';
import { servingRules } from '../src/admission/plan.js';
import { parseConfig } from '../src/config/config.js';
import { DenialError, type PullSecretProvider } from '../src/pull-secrets/types.js';
import { buildServer, parseTimeoutParam, type ServerOptions } from '../src/server.js';
import { ensureSelfSignedCert } from '../src/standalone/self-signed.js';
import { fixture, fixtureText } from './support/fixtures.js';
import { h2Request, h2Session } from './support/h2.js';

const NS = 'acr-pull-webhook';
let lines: Record<string, any>[] = [];
let app: FastifyInstance | undefined;
let rules!: ReturnType<typeof servingRules>;

beforeEach(() => {
  lines = [];
  const config = parseConfig(
    { registries: [{ instanceId: 'cri-abc123def4567890', domains: ['registry.example.com'] }], discovery: { enabled: true, regions: ['cn-hangzhou'] } },
    { ownNamespace: NS, regionFromEnv: 'cn-hangzhou' },
  );
  const index = buildRegistryIndex({
    configured: config.registries,
    discovered: [{ instanceId: 'cri-own0000000000001', region: 'cn-hangzhou', domains: ['own-registry.cn-hangzhou.cr.aliyuncs.com'] }],
    discovery: { regions: ['cn-hangzhou'], personalEdition: false },
  });
  rules = servingRules(config, NS, undefined, index);
});
afterEach(async () => {
  vi.useRealTimers();
  await app?.close();
  app = undefined;
});

const logStream = () =>
  new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });

const isDiscovered = (s: PullSecretSpec) => s.binding.registries.some((r) => r.kind === 'instance' && r.instanceId === 'cri-own0000000000001');

function secrets(fail: (s: PullSecretSpec) => unknown = () => undefined, delayMs = 0): PullSecretProvider {
  return {
    ensure: async (s) => {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const e = fail(s);
      if (e) throw e;
      return 'cold';
    },
    ready: () => true,
  };
}

async function start(opts: Partial<ServerOptions> = {}): Promise<number> {
  app = buildServer({ rules: () => rules, secrets: secrets(), logLevel: 'debug', logStream: logStream(), ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

function post(port: number, path: string, body: string): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined, headers: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const served = (images: string[], uid = 'uid-served') => {
  const doc = fixture('pod-served-registries-no-annotations');
  doc.request.uid = uid;
  doc.request.object.spec.initContainers = [];
  doc.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
  return JSON.stringify(doc);
};
const byMsg = (msg: string) => lines.filter((l) => l.msg === msg);

describe('review log lines', () => {
  it('an admitted review: one debug line with its fields, and observe gets the seconds it took', async () => {
    const seen: [string, number][] = [];
    const port = await start({ secrets: secrets(() => undefined, 30), observe: (o, s) => seen.push([o.result, s]) });
    const res = await post(port, '/mutate', served(['registry.example.com/a/b:1'], 'uid-ok'));
    expect(res.json.response.allowed).toBe(true);
    const [line] = byMsg('admission');
    expect(line).toMatchObject({ level: 20, reqId: 'uid-ok', kind: 'Pod', namespace: 'team-a', operation: 'CREATE', dryRun: false, result: 'patched', path: 'cold' });
    expect(line!.ms).toBeGreaterThanOrEqual(25);
    expect(line!.ms).toBeLessThan(10_000);
    expect(seen.length).toBe(1);
    expect(seen[0]![0]).toBe('patched');
    expect(seen[0]![1]).toBeGreaterThanOrEqual(0.025);
    expect(seen[0]![1]).toBeLessThan(10);
    expect(lines.filter((l) => l.level >= 30 && String(l.msg).startsWith('admi'))).toEqual([]);
  });

  it('a failed review: "admission failed" at error level with the error', async () => {
    const port = await start({ secrets: secrets(() => new Error('store exploded')) });
    const res = await post(port, '/mutate', served(['registry.example.com/a/b:1'], 'uid-err'));
    expect(res.json.response.allowed).toBe(false);
    const found = lines.filter((l) => String(l.msg).startsWith('admi'));
    expect(found.map((l) => [l.level, l.msg, l.reqId, l.result, l.err?.message])).toEqual([[50, 'admission failed', 'uid-err', 'error', 'store exploded']]);
  });

  it('a denied review: "admission denied" at info level with the message the user sees', async () => {
    const port = await start();
    const body = fixtureText('deny-bad-arn');
    const res = await post(port, '/mutate', body);
    const found = lines.filter((l) => String(l.msg).startsWith('admi'));
    expect(found.map((l) => [l.level, l.msg, l.reqId, l.result, l.message])).toEqual([[30, 'admission denied', JSON.parse(body).request.uid, 'denied', res.json.response.status.message]]);
    expect(typeof res.json.response.status.message).toBe('string');
  });

  it('a review admitted without a discovered registry\'s Secret: a warning with the error', async () => {
    const port = await start({ secrets: secrets((s) => (isDiscovered(s) ? new DenialError('no token for you', 500) : undefined)) });
    const res = await post(port, '/mutate', served(['registry.example.com/a/b:1', 'own-registry.cn-hangzhou.cr.aliyuncs.com/a/b:1'], 'uid-warn'));
    expect(res.json.response.allowed).toBe(true);
    const found = lines.filter((l) => String(l.msg).startsWith('admi'));
    expect(found.map((l) => [l.level, l.msg, l.reqId, l.result, l.err?.message])).toEqual([
      [40, 'admitted without the pull Secret of a registry found by discovery', 'uid-warn', 'patched', 'no token for you'],
    ]);
  });

  it('a denied workload template: "workload denied" with kind, namespace and message', async () => {
    const port = await start();
    const body = readFileSync(new URL('./fixtures/validate/deployment-invalid.json', import.meta.url), 'utf8');
    const res = await post(port, '/validate', body);
    expect(res.json.response.allowed).toBe(false);
    const req = JSON.parse(body).request;
    expect(byMsg('workload denied').map((l) => [l.level, l.reqId, l.kind, l.namespace, l.message])).toEqual([[30, req.uid, 'Deployment', req.namespace, res.json.response.status.message]]);
  });

  it('a valid workload template is allowed with its warnings field absent unless there are some', async () => {
    const port = await start();
    const body = readFileSync(new URL('./fixtures/validate/deployment-valid.json', import.meta.url), 'utf8');
    const res = await post(port, '/validate', body);
    expect(res.json.response.allowed).toBe(true);
    // A kind /validate does not know is skipped: allowed, no warnings.
    const skip = JSON.parse(body);
    skip.request.kind = { group: 'apps', version: 'v1', kind: 'Nothing' };
    const skipped = await post(port, '/validate', JSON.stringify(skip));
    expect(skipped.json.response).toEqual({ uid: skip.request.uid, allowed: true });
  });

  it('/validate answers 400 to a review without a request', async () => {
    const port = await start();
    const res = await post(port, '/validate', fixtureText('transport-missing-request.json'));
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('BadRequest');
  });
});

describe('before the caches have synced', () => {
  const caches = (state: { synced: boolean }, onWait?: () => void) => ({
    synced: () => state.synced,
    whenSynced: () => {
      onWait?.();
      return new Promise<void>(() => undefined);
    },
    pending: () => ['secrets', 'namespaces'],
  });

  it('/validate waits up to its deadline, then answers 503 naming the caches, with a warning', async () => {
    const state = { synced: false };
    const port = await start({ caches: caches(state) });
    const body = readFileSync(new URL('./fixtures/validate/deployment-valid.json', import.meta.url), 'utf8');
    const res = await post(port, '/validate?timeout=100ms', body);
    expect(res.status).toBe(503);
    expect(res.json).toEqual({ error: 'NotReady', message: 'acr-pull-webhook is starting: its secrets and namespaces cache has not synced yet' });
    const uid = JSON.parse(body).request.uid;
    expect(byMsg('review arrived before the caches synced; answering 503').map((l) => [l.level, l.reqId, l.pending])).toEqual([[40, uid, ['secrets', 'namespaces']]]);
  });

  it('/validate decides once the caches are there', async () => {
    const state = { synced: false };
    const port = await start({ caches: caches(state, () => (state.synced = true)) });
    const body = readFileSync(new URL('./fixtures/validate/deployment-invalid.json', import.meta.url), 'utf8');
    const res = await post(port, '/validate?timeout=100ms', body);
    expect(res.status).toBe(200);
    expect(res.json.response.allowed).toBe(false);
  });
});

describe('fastify error answers', () => {
  const failing = (err: Error) => ({ ensure: async () => 'cold' as const, ready: () => { throw err; } });

  it.each([
    [Object.assign(new Error('teapot'), { statusCode: 418, code: 'TEA' }), 418, { error: 'TEA', message: 'teapot' }],
    [Object.assign(new Error('client side'), { statusCode: 400 }), 400, { error: 'Error', message: 'client side' }],
    [Object.assign(new Error('redirect?'), { statusCode: 302, code: 'R' }), 500, { error: 'R', message: 'internal error' }],
    [Object.assign(new Error('upstream'), { statusCode: 503 }), 500, { error: 'Error', message: 'internal error' }],
    [new Error('plain'), 500, { error: 'Error', message: 'internal error' }],
  ])('%s → %i', async (err, status, payload) => {
    const port = await start({ secrets: failing(err) });
    const res = await app!.inject({ method: 'GET', url: '/readyz' });
    void port;
    expect(res.statusCode).toBe(status);
    expect(res.json()).toEqual(payload);
    const logged = byMsg('unexpected error').map((l) => [l.level, l.err?.message]);
    expect(logged).toEqual(status === 500 ? [[50, err.message]] : []);
  });

  it('a review route that throws is logged as an unexpected error', async () => {
    const port = await start({ rules: () => { throw new Error('rules broke'); } });
    const res = await post(port, '/validate', readFileSync(new URL('./fixtures/validate/deployment-valid.json', import.meta.url), 'utf8'));
    expect(res.status).toBe(500);
    expect(byMsg('unexpected error').map((l) => [l.level, l.err?.message])).toEqual([[50, 'rules broke']]);
  });
});

describe('parseTimeoutParam', () => {
  it.each([
    [['5s'], 10_000],
    ['x5s', 10_000],
    ['5sx', 10_000],
    ['1.25s', 1250],
    ['1.5s', 1500],
    ['20', 20_000],
    ['0.25m', 15_000],
  ])('%j → %i', (value, ms) => {
    expect(parseTimeoutParam(value)).toBe(ms);
  });
});

describe('the listener', () => {
  it('plain HTTP: requests time out after 35 s, and answers use the ConnectionCloser\'s response class', async () => {
    const attached: unknown[] = [];
    class Marked extends ServerResponse {
      constructor(req: import('node:http').IncomingMessage) {
        super(req);
        this.setHeader('x-marked', 'yes');
      }
    }
    const port = await start({ connections: { ServerResponse: Marked, closing: false, attach: (s: unknown, secure: boolean) => attached.push([s, secure]) } as never });
    expect((app!.server as unknown as { requestTimeout: number }).requestTimeout).toBe(35_000);
    expect(attached).toEqual([[app!.server, false]]);
    const res = await post(port, '/validate', fixtureText('transport-missing-request.json'));
    expect(res.headers['x-marked']).toBe('yes');
  });

  it('a review body trickled in is cut off 35 s after its request came (the 30 s timeout maximum plus 5 s), not before', async () => {
    // Date and the transport's sweep interval faked before the server exists; the socket itself is real.
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
    const port = await start();
    const arrived = new Promise<void>((r) => app!.server.once('request', () => r()));
    const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100' } });
    let settled: string | undefined;
    const outcome = new Promise<string>((resolve) => {
      req.on('response', (res) => resolve((settled = `answered ${res.statusCode}`)));
      req.on('error', (e: NodeJS.ErrnoException) => resolve((settled = `closed ${e.code}`)));
    });
    req.write('{"apiVersion":');
    await arrived;
    // Let the first chunk reach the transport (real time: only Date and intervals are fake).
    await new Promise((r) => setTimeout(r, 20));
    vi.advanceTimersByTime(34_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(await outcome).toBe('closed ECONNRESET');
  });
});

describe('over TLS', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'acr-server-test-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const pair = (name: string) => ensureSelfSignedCert(join(dir, name));

  const cipherOf = (port: number, ca: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' }, () => {
        const name = s.getCipher().name;
        s.end();
        resolve(name);
      });
      s.on('error', reject);
    });

  async function tlsStart(opts: Partial<ServerOptions> = {}, minVersion?: 'TLSv1.3') {
    const a = pair('a');
    copyFileSync(a.certFile, join(dir, 'tls.crt'));
    copyFileSync(a.keyFile, join(dir, 'tls.key'));
    const port = await start({ tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollMs: 50, ...(minVersion ? { minVersion } : {}) }, ...opts });
    return { port, ca: readFileSync(a.certFile) };
  }

  it('HTTPS: requests time out after 35 s; a client without ALPN counts as http/1.1; the server orders the ciphers', async () => {
    const protocols: string[] = [];
    const { port, ca } = await tlsStart({ onConnection: (p) => protocols.push(p) });
    expect((app!.server as unknown as { requestTimeout: number }).requestTimeout).toBe(35_000);
    const cipher = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' }, () => {
        const name = s.getCipher().name;
        s.end();
        resolve(name);
      });
      s.on('error', reject);
    });
    expect(cipher).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    await vi.waitFor(() => expect(protocols).toEqual(['http/1.1']));
  });

  it('HTTP/2: reviews go to the review routes; a session is closed when idle for 72 s', async () => {
    const { port, ca } = await tlsStart();
    const timeouts: number[] = [];
    let closeIdle: (() => void) | undefined;
    let serverSession: import('node:http2').ServerHttp2Session | undefined;
    app!.server.prependListener('session', (session: import('node:http2').ServerHttp2Session) => {
      serverSession = session;
      session.setTimeout = ((ms: number, cb: () => void) => {
        timeouts.push(ms);
        closeIdle = cb;
      }) as never;
    });
    const session = await h2Session(`https://localhost:${port}`, ca);
    try {
      const res = await h2Request(session, '/validate', { body: fixtureText('transport-missing-request.json') });
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('BadRequest');
      expect(timeouts).toEqual([72_000]);
      closeIdle!();
      expect(serverSession!.closed).toBe(true);
    } finally {
      session.destroy();
    }
  });

  it('reloads rotated files on its poll; keeps the pair when the key cannot be read; stops polling when closed', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const certs: string[] = [];
    const { port } = await tlsStart({ onCertificate: (d) => certs.push(d.toISOString()) });
    expect(certs.length).toBe(1);
    const b = pair('b');
    copyFileSync(b.certFile, join(dir, 'tls.crt'));
    copyFileSync(b.keyFile, join(dir, 'tls.key'));
    utimesSync(join(dir, 'tls.crt'), 2_000_000, 2_000_000);
    vi.advanceTimersByTime(49);
    expect(certs.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(certs.length).toBe(2);
    expect(byMsg('reloaded TLS certificate').length).toBe(1);
    // The reloaded context still orders the ciphers itself.
    expect(await cipherOf(port, readFileSync(b.certFile))).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    // A key "file" that is a directory: read fails with EISDIR, the old pair stays, one warning.
    rmSync(join(dir, 'tls.key'));
    mkdirSync(join(dir, 'tls.key'));
    vi.advanceTimersByTime(100);
    expect(certs.length).toBe(2);
    expect(byMsg('TLS key does not match the certificate (or cannot be read); keeping the previous pair until the files change again').map((l) => [l.level, l.certFile, l.keyFile, l.problem])).toEqual([
      [40, join(dir, 'tls.crt'), join(dir, 'tls.key'), 'EISDIR'],
    ]);
    // The key then gone altogether: nothing to stat, so nothing is tried (no second warning) until a pair is back.
    rmSync(join(dir, 'tls.key'), { recursive: true });
    vi.advanceTimersByTime(100);
    expect(certs.length).toBe(2);
    expect(byMsg('TLS key does not match the certificate (or cannot be read); keeping the previous pair until the files change again').map((l) => l.problem)).toEqual(['EISDIR']);
    copyFileSync(pair('c').keyFile, join(dir, 'tls.key'));
    copyFileSync(join(dir, 'c', 'tls.crt'), join(dir, 'tls.crt'));
    utimesSync(join(dir, 'tls.crt'), 3_000_000, 3_000_000);
    await app!.close();
    app = undefined;
    vi.advanceTimersByTime(200);
    expect(certs.length).toBe(2);
  });

  it('a reload keeps minVersion TLSv1.3', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const certs: string[] = [];
    const { port } = await tlsStart({ onCertificate: (d) => certs.push(d.toISOString()) }, 'TLSv1.3');
    const b = pair('b');
    copyFileSync(b.certFile, join(dir, 'tls.crt'));
    copyFileSync(b.keyFile, join(dir, 'tls.key'));
    utimesSync(join(dir, 'tls.crt'), 2_000_000, 2_000_000);
    vi.advanceTimersByTime(50);
    expect(certs.length).toBe(2);
    const ca = readFileSync(b.certFile);
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, maxVersion: 'TLSv1.2' }, () => {
        s.end();
        resolve('connected');
      });
      s.on('error', () => resolve('refused'));
    });
    expect(outcome).toBe('refused');
  });
});
