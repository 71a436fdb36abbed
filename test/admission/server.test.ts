// The real HTTPS server: fixtures over TLS, transport errors, body limits, health, certificate reload.
import { mkdtempSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { X509Certificate } from 'node:crypto';
import { connect, createServer as createTlsServer, type ConnectionOptions, type Server, type TlsOptions } from 'node:tls';
import { servingRules } from '../../src/admission/plan.js';
import { parseConfig } from '../../src/config/config.js';
import { buildServer, deadlineFor, parseTimeoutParam } from '../../src/server.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import type { PullSecretProvider } from '../../src/pull-secrets/types.js';
import { decodePatch, fixtureText } from '../support/fixtures.js';
import { h2Request, h2Session } from '../support/h2.js';
import { httpsRequest, warmAgent } from '../support/https.js';
import type { ClientHttp2Session } from 'node:http2';

let app: FastifyInstance;
let base: string;
let ca: Buffer;
let dir: string;
let ready = false;
const ensured: string[] = [];
const certificates: Date[] = [];

const provider: PullSecretProvider = {
  ensure: async (spec) => {
    ensured.push(spec.name);
    return 'cold';
  },
  ready: () => ready,
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'acr-webhook-test-'));
  const tls = ensureSelfSignedCert(join(dir, 'a'));
  // The server reads from files it watches; start from copies so the test can rotate them.
  copyFileSync(tls.certFile, join(dir, 'tls.crt'));
  copyFileSync(tls.keyFile, join(dir, 'tls.key'));
  ca = readFileSync(tls.certFile);
  const rules = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
  app = buildServer({
    rules: () => rules,
    secrets: provider,
    tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollMs: 50 },
    logLevel: 'silent',
    onCertificate: (notAfter) => certificates.push(notAfter),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `https://localhost:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS server', () => {
  it('answers a fixture over TLS with the uid echoed and a decodable patch', async () => {
    const body = fixtureText('pod-default-domain-service-arn');
    const res = await httpsRequest(`${base}/mutate?timeout=10s`, { body, ca });
    expect(res.status).toBe(200);
    expect(res.json.apiVersion).toBe('admission.k8s.io/v1');
    expect(res.json.kind).toBe('AdmissionReview');
    expect(res.json.response.uid).toBe(JSON.parse(body).request.uid);
    expect(res.json.response.allowed).toBe(true);
    expect(decodePatch(res.json)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: ensured.at(-1) }] }]);
  });

  it('denies a malformed annotation with HTTP 200 and a well-formed AdmissionReview', async () => {
    const res = await httpsRequest(`${base}/mutate`, { body: fixtureText('deny-bad-arn'), ca });
    expect(res.status).toBe(200);
    expect(res.json.response).toMatchObject({ allowed: false, status: { code: 400, reason: 'BadRequest' } });
  });

  it.each([
    ['transport-not-json.txt', 'FST_ERR_CTP_INVALID_JSON_BODY'],
    ['transport-missing-request.json', 'BadRequest'],
    ['transport-missing-uid.json', 'BadRequest'],
    ['transport-v1beta1.json', 'BadRequest'],
  ])('%s gets HTTP 400 with a JSON error', async (name, code) => {
    const res = await httpsRequest(`${base}/mutate`, { body: fixtureText(name), ca });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe(code);
    expect(typeof res.json.message).toBe('string');
  });

  it('accepts a review of exactly 8 MiB and refuses one byte more with 413', async () => {
    const MiB8 = 8 * 1024 * 1024;
    const review = JSON.parse(fixtureText('pod-no-annotations'));
    /** The review padded (in oldObject, which the webhook ignores) to exactly `bytes` bytes of JSON. */
    const sized = (bytes: number) => {
      review.request.oldObject = { pad: '' };
      const bare = Buffer.byteLength(JSON.stringify(review));
      review.request.oldObject = { pad: 'x'.repeat(bytes - bare) };
      const text = JSON.stringify(review);
      expect(Buffer.byteLength(text)).toBe(bytes);
      return text;
    };
    const ok = await httpsRequest(`${base}/mutate`, { body: sized(MiB8), ca });
    expect(ok.status).toBe(200);
    expect(ok.json.response.allowed).toBe(true);
    const big = await httpsRequest(`${base}/mutate`, { body: sized(MiB8 + 1), ca });
    expect(big.status).toBe(413);
    expect(big.json.error).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
  });

  it('healthz is always ok; readyz follows the provider', async () => {
    expect((await httpsRequest(`${base}/healthz`, { ca })).status).toBe(200);
    ready = false;
    expect((await httpsRequest(`${base}/readyz`, { ca })).status).toBe(503);
    ready = true;
    expect((await httpsRequest(`${base}/readyz`, { ca })).status).toBe(200);
  });

  it('reloads a rotated certificate without a restart', async () => {
    const before = await peerCertificate(base);
    const next = ensureSelfSignedCert(join(dir, 'b'));
    copyFileSync(next.keyFile, join(dir, 'tls.key'));
    copyFileSync(next.certFile, join(dir, 'tls.crt'));
    const fresh = new X509Certificate(readFileSync(next.certFile)).fingerprint256;
    expect(fresh).not.toBe(before);
    let after = before;
    for (let i = 0; i < 60 && after !== fresh; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await peerCertificate(base);
    }
    expect(after).toBe(fresh);
    // And it still answers reviews, trusting only the new certificate.
    const res = await httpsRequest(`${base}/mutate`, { body: fixtureText('pod-no-annotations'), ca: readFileSync(next.certFile) });
    expect(res.json.response.allowed).toBe(true);
    // The expiry metric follows: reported at start and again for the reloaded certificate.
    expect(certificates.map((d) => d.toISOString())).toEqual([
      new Date(new X509Certificate(ca).validTo).toISOString(),
      new Date(new X509Certificate(readFileSync(next.certFile)).validTo).toISOString(),
    ]);
  });

  // The serving key here is ECDSA P-256 (the standalone certificate), so the suites offered are ECDSA ones.
  // A client allowed to speak TLS 1.1 and 1.0 (OpenSSL security level 0): the control server below proves it can,
  // so the webhook's refusal is the server's doing, not the client's.
  it('refuses TLS 1.1 and TLS 1.0 from a client that offers them', async () => {
    const port = Number(new URL(base).port);
    for (const version of ['TLSv1.1', 'TLSv1'] as const) {
      const old = { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' };
      expect(await handshake(await controlServer({ minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }), old)).toBe(`${version} ok`);
      expect(await handshake(port, old)).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    }
  });

  it('refuses a TLS 1.2 client that offers only non-AEAD (CBC) suites, and agrees on an AEAD suite otherwise', async () => {
    const port = Number(new URL(base).port);
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA']) {
      const cbc = { maxVersion: 'TLSv1.2' as const, ciphers: cipher };
      expect(await handshake(await controlServer({ ciphers: 'DEFAULT@SECLEVEL=0' }), cbc), cipher).toBe('TLSv1.2 ok');
      // The handshake_failure alert; OpenSSL 3.5 (Node 24) names it SSL/TLS where 3.0 (Node 20) says SSLV3.
      expect(await handshake(port, cbc), cipher).toMatch(/^ERR_SSL_SSL(?:V3|\/TLS)_ALERT_HANDSHAKE_FAILURE$/);
    }
    expect(await negotiated(port, { maxVersion: 'TLSv1.2' })).toEqual({ version: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(await negotiated(port, {})).toEqual({ version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
  });

  it('with minVersion TLSv1.3 (TLS_MIN_VERSION=TLSv1.3) refuses TLS 1.2 and serves TLS 1.3', async () => {
    const rules = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
    const strict = buildServer({ rules: () => rules, secrets: provider, tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), minVersion: 'TLSv1.3' }, logLevel: 'silent' });
    await strict.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (strict.server.address() as { port: number }).port;
      expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
      expect(await handshake(port, { minVersion: 'TLSv1.3' })).toBe('TLSv1.3 ok');
    } finally {
      await strict.close();
    }
  });
});

const controls: Server[] = [];
afterAll(() => {
  for (const c of controls) c.close();
});

/** A plain Node TLS server with the same key pair, configured as given: what the client can do when allowed. */
async function controlServer(opts: TlsOptions): Promise<number> {
  const s = createTlsServer({ key: readFileSync(join(dir, 'tls.key')), cert: readFileSync(join(dir, 'tls.crt')), ...opts }, (sock) => sock.end());
  controls.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

/** "<protocol> ok", or the error code of a refused handshake. */
function handshake(port: number, opts: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      resolve(`${s.getProtocol()} ok`);
      s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function negotiated(port: number, opts: ConnectionOptions): Promise<{ version: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      resolve({ version: s.getProtocol(), cipher: s.getCipher().name });
      s.end();
    });
    s.on('error', reject);
  });
}

describe('the ?timeout= budget', () => {
  it('leaves 10% of the timeout (at least 150 ms) for the answer to travel back', () => {
    expect(deadlineFor(0, 1000)).toBe(850);
    expect(deadlineFor(0, 3000)).toBe(2700);
    expect(deadlineFor(5000, 30_000)).toBe(32_000);
  });

  it('a review whose Secret never comes is answered at the deadline the API server\'s ?timeout= sets', async () => {
    const rules = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou' }, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
    const hanging: PullSecretProvider = { ensure: () => new Promise(() => {}), ready: () => true };
    // Listening over TLS, as the API server calls it: /mutate is served from the raw request, not through inject.
    const tdir = mkdtempSync(join(tmpdir(), 'acr-webhook-timeout-'));
    const tls = ensureSelfSignedCert(tdir);
    const app = buildServer({ rules: () => rules, secrets: hanging, tls: { certFile: tls.certFile, keyFile: tls.keyFile }, logLevel: 'silent' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const url = `https://localhost:${typeof addr === 'object' && addr ? addr.port : 0}/mutate`;
    const tca = readFileSync(tls.certFile);
    const agent = await warmAgent(url.replace('/mutate', ''), tca); // no TLS handshake inside the timed part
    try {
      const timed = async (query: string) => {
        const t0 = Date.now();
        const res = await httpsRequest(`${url}${query}`, { body: fixtureText('pod-cross-account-chain'), ca: tca, agent, timeoutMs: 10_000 });
        return { ms: Date.now() - t0, response: res.json.response };
      };
      const one = await timed('?timeout=1s');
      expect(one.ms).toBeGreaterThanOrEqual(850 - 5);
      expect(one.ms).toBeLessThan(1000);
      expect(one.response).toMatchObject({ allowed: false, status: { code: 503 } });
      expect(one.response.status.message).toContain('timed out obtaining registry credentials before the admission deadline');
      const three = await timed('?timeout=3s');
      expect(three.ms).toBeGreaterThanOrEqual(2700 - 5);
      expect(three.ms).toBeLessThan(3000);
    } finally {
      agent.destroy();
      await app.close();
      rmSync(tdir, { recursive: true, force: true });
    }
  });
});

describe('HTTP/2 on the same port (the API server negotiates it over ALPN)', () => {
  let session: ClientHttp2Session;
  let ca: Buffer;
  beforeAll(async () => {
    // The certificate in force (the reload test above rotated it).
    ca = readFileSync(join(dir, 'tls.crt'));
    session = await h2Session(base, ca);
  });
  afterAll(() => session?.close());

  it('negotiates h2 when offered, and HTTP/1.1 for a client that offers only that', async () => {
    expect(session.alpnProtocol).toBe('h2');
    const port = Number(new URL(base).port);
    const alpn = await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => {
        resolve(s.alpnProtocol);
        s.end();
      });
      s.on('error', reject);
    });
    expect(alpn).toBe('http/1.1');
  });

  it('answers reviews as streams of one session: the patch, a denial, /validate', async () => {
    const body = fixtureText('pod-default-domain-service-arn');
    const [patched, denied, validated] = await Promise.all([
      h2Request(session, '/mutate?timeout=10s', { body }),
      h2Request(session, '/mutate', { body: fixtureText('deny-bad-arn') }),
      h2Request(session, '/validate', { body: readFileSync('test/fixtures/validate/deployment-invalid.json') }),
    ]);
    expect(patched.status).toBe(200);
    expect(patched.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(patched.json.response.uid).toBe(JSON.parse(body).request.uid);
    expect(decodePatch(patched.json)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: ensured.at(-1) }] }]);
    expect(denied.json.response).toMatchObject({ allowed: false, status: { code: 400, reason: 'BadRequest' } });
    expect(validated.json.response.allowed).toBe(false);
  });

  it.each([
    ['transport-not-json.txt', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
    ['transport-missing-uid.json', 400, 'BadRequest'],
    ['transport-v1beta1.json', 400, 'BadRequest'],
  ])('%s gets HTTP %i with a JSON error', async (name, status, code) => {
    const res = await h2Request(session, '/mutate', { body: fixtureText(name) });
    expect(res.status).toBe(status);
    expect(res.json.error).toBe(code);
  });

  it('refuses prototype poisoning, an empty body and a body that is not JSON-typed, as fastify did', async () => {
    // Plain, escaped (the fast path must not miss it) and through constructor.prototype.
    for (const key of ['"__proto__"', '"\\u005f_proto__"', '"constructor"']) {
      const poisoned = await h2Request(session, '/mutate', { body: fixtureText('pod-no-annotations').replace('{', `{${key}:{"prototype":{"x":1}},`) });
      expect(poisoned.status, key).toBe(400);
      expect(poisoned.json.error).toBe('FST_ERR_CTP_INVALID_JSON_BODY');
    }
    expect((await h2Request(session, '/mutate', { body: '' })).json.error).toBe('FST_ERR_CTP_EMPTY_JSON_BODY');
    const typed = await h2Request(session, '/mutate', { body: fixtureText('pod-no-annotations'), headers: { 'content-type': 'text/plain' } });
    expect(typed.status).toBe(415);
    // The session survives all of it.
    expect((await h2Request(session, '/mutate', { body: fixtureText('pod-no-annotations') })).json.response.allowed).toBe(true);
  });

  it('413 for a body over the limit, by Content-Length or by what arrives; the session stays usable', async () => {
    const review = JSON.parse(fixtureText('pod-no-annotations'));
    review.request.oldObject = { pad: 'x'.repeat(8 * 1024 * 1024) };
    const big = JSON.stringify(review);
    const declared = await h2Request(session, '/mutate', { body: big });
    expect(declared.status).toBe(413);
    expect(declared.json.error).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
    // Without Content-Length (a chunked-style stream): counted as it arrives.
    const streamed = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
      // The server resets the stream (NO_ERROR) after its answer; node's client keeps its unsent writes until told.
      stream.on('response', (h) => {
        resolve(Number(h[':status']));
        stream.destroy();
      });
      stream.on('error', reject);
      const chunk = Buffer.alloc(1 << 20, 'x');
      for (let i = 0; i < 9; i++) stream.write(chunk);
      stream.end();
    });
    expect(streamed).toBe(413);
    expect((await h2Request(session, '/mutate', { body: fixtureText('pod-no-annotations') })).status).toBe(200);
  });

  it('health routes (fastify) answer over HTTP/2 too; unknown routes 404', async () => {
    expect((await h2Request(session, '/healthz')).json).toEqual({ status: 'ok' });
    expect((await h2Request(session, '/readyz')).status).toBe(ready ? 200 : 503);
    expect((await h2Request(session, '/nope')).status).toBe(404);
    expect((await h2Request(session, '/mutate')).status).toBe(404);
  });
});

describe('timeout parameter', () => {
  it.each([
    ['10s', 10_000],
    ['5s', 5000],
    ['1500ms', 1500],
    ['30s', 30_000],
    ['90s', 30_000],
    [undefined, 10_000],
    ['garbage', 10_000],
  ])('%s -> %i ms', (value, ms) => {
    expect(parseTimeoutParam(value)).toBe(ms);
  });
});

function peerCertificate(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: hostname, port: Number(port), rejectUnauthorized: false, servername: hostname }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

describe('validating endpoint', () => {
  it('denies an invalid Deployment template over HTTPS and allows a valid one', async () => {
    // The certificate in force: the reload test rotated it (a kept-alive connection from before could hide that).
    const ca = readFileSync(join(dir, 'tls.crt'));
    const bad = await httpsRequest(`${base}/validate`, { body: readFileSync('test/fixtures/validate/deployment-invalid.json'), ca });
    expect(bad.status).toBe(200);
    expect(bad.json.response.allowed).toBe(false);
    expect(bad.json.response.status.message).toContain('Deployment team-a/web: spec.template.metadata.annotations:');
    const warn = await httpsRequest(`${base}/validate`, { body: readFileSync('test/fixtures/validate/deployment-annotations-on-workload-metadata.json'), ca });
    expect(warn.json.response).toMatchObject({ allowed: true, warnings: [expect.stringContaining('move them to spec.template.metadata.annotations')] });
    expect(warn.json.response.patch).toBeUndefined();
  });
});
