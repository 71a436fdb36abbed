// Certificate reload against a running server when a tool rewrites the files one after the other: an EC
// certificate and key replaced by an RSA pair, certificate first. Node accepts an RSA certificate with an EC
// key without complaint (it only checks pairs of one key type), so the server must check the pair itself.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servingRules } from '../../src/admission/plan.js';
import { parseConfig } from '../../src/config/config.js';
import { buildServer } from '../../src/server.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { certificatePairProblem } from '../../src/certificate-pair.js';
import { fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

const POLL_MS = 50;
let dir: string;
let app: FastifyInstance;
let port: number;
let logs = '';

function rsaPair(into: string): { certFile: string; keyFile: string } {
  mkdirSync(into, { recursive: true });
  const certFile = join(into, 'tls.crt');
  const keyFile = join(into, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { certFile, keyFile };
}

/** The certificate a handshake gets, or the handshake's error. */
function handshake(): Promise<{ fingerprint: string } | { error: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const fingerprint = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.end();
      resolve({ fingerprint });
    });
    s.on('error', (e) => resolve({ error: e.message }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'acr-webhook-rotation-'));
  const ec = ensureSelfSignedCert(join(dir, 'ec'));
  copyFileSync(ec.certFile, join(dir, 'tls.crt'));
  copyFileSync(ec.keyFile, join(dir, 'tls.key'));
  const logStream = new PassThrough();
  logStream.on('data', (d: Buffer) => (logs += d.toString()));
  const rules = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
  app = buildServer({
    rules: () => rules,
    secrets: { ensure: async () => 'cold', ready: () => true },
    tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollMs: POLL_MS },
    logStream,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
});

afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('certificate rotation written in two steps', () => {
  it('keeps serving the old pair while certificate and key disagree, logs it once, then switches', async () => {
    const ecFingerprint = fingerprint(join(dir, 'ec/tls.crt'));
    expect(await handshake()).toEqual({ fingerprint: ecFingerprint });

    const rsa = rsaPair(join(dir, 'rsa'));
    copyFileSync(rsa.certFile, join(dir, 'tls.crt')); // step 1: the RSA certificate beside the old EC key
    // Several polls see the mismatched pair; every handshake meanwhile still completes, with the old certificate.
    for (let i = 0; i < 8; i++) {
      await sleep(POLL_MS);
      expect(await handshake()).toEqual({ fingerprint: ecFingerprint });
    }
    const reviewed = await httpsRequest(`https://localhost:${port}/mutate`, { body: fixtureText('pod-no-annotations'), ca: readFileSync(join(dir, 'ec/tls.crt')) });
    expect(reviewed.json.response.allowed).toBe(true);
    const warnings = logs.split('\n').filter((l) => l.includes('TLS key does not match the certificate'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('keeping the previous pair');

    copyFileSync(rsa.keyFile, join(dir, 'tls.key')); // step 2: the matching key
    const rsaFingerprint = fingerprint(rsa.certFile);
    let seen = await handshake();
    for (let i = 0; i < 60 && !('fingerprint' in seen && seen.fingerprint === rsaFingerprint); i++) {
      await sleep(POLL_MS);
      seen = await handshake();
    }
    expect(seen).toEqual({ fingerprint: rsaFingerprint });
    const after = await httpsRequest(`https://localhost:${port}/mutate`, { body: fixtureText('pod-no-annotations'), ca: readFileSync(rsa.certFile) });
    expect(after.json.response.allowed).toBe(true);
    expect(logs).toContain('reloaded TLS certificate');
  });
});

describe('certificatePairProblem', () => {
  it('accepts matching pairs of any key type and names a mismatch or an unreadable file', () => {
    const ec = { cert: readFileSync(join(dir, 'ec/tls.crt')), key: readFileSync(join(dir, 'ec/tls.key')) };
    const rsa = { cert: readFileSync(join(dir, 'rsa/tls.crt')), key: readFileSync(join(dir, 'rsa/tls.key')) };
    expect(certificatePairProblem(ec.key, ec.cert)).toBeUndefined();
    expect(certificatePairProblem(rsa.key, rsa.cert)).toBeUndefined();
    expect(certificatePairProblem(ec.key, rsa.cert)).toBe('the private key does not belong to the certificate');
    expect(certificatePairProblem(rsa.key, ec.cert)).toBe('the private key does not belong to the certificate');
    expect(certificatePairProblem(Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA'), ec.cert)).toMatch(/^the private key cannot be read/);
    expect(certificatePairProblem(ec.key, Buffer.from('not a certificate'))).toMatch(/^the certificate cannot be read/);
  });
});

describe('start-up with a broken pair', () => {
  it('refuses to build the server, naming both files', () => {
    const rules = servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
    const tls = { certFile: join(dir, 'rsa/tls.crt'), keyFile: join(dir, 'ec/tls.key') };
    expect(() => buildServer({ rules: () => rules, secrets: { ensure: async () => 'cold', ready: () => true }, tls, logLevel: 'silent' })).toThrow(
      `TLS key ${tls.keyFile} and certificate ${tls.certFile} do not form a pair: the private key does not belong to the certificate`,
    );
  });
});
