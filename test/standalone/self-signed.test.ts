// The standalone serving certificate: made once with openssl, reused while both files exist, and a failing openssl
// is reported with its own message (and nothing of openssl's leaks onto the webhook's stderr).
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'self-signed-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

/** Puts an `openssl` shell script (the body given) first and alone on PATH. */
function fakeOpenssl(body: string): void {
  const script = join(dir, 'openssl');
  writeFileSync(script, `#!/bin/sh\n${body}\n`);
  chmodSync(script, 0o755);
  vi.stubEnv('PATH', dir);
}

describe('ensureSelfSignedCert', () => {
  it('reuses a certificate and key that are both there, untouched', () => {
    writeFileSync(join(dir, 'tls.crt'), 'old cert');
    writeFileSync(join(dir, 'tls.key'), 'old key');
    vi.stubEnv('PATH', join(dir, 'no-such-bin'));
    expect(ensureSelfSignedCert(dir)).toEqual({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), created: false });
    expect(readFileSync(join(dir, 'tls.crt'), 'utf8')).toBe('old cert');
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toBe('old key');
  });

  it('makes a new pair when only the certificate is left (the key was lost)', () => {
    const tls = join(dir, 'tls');
    const certFile = join(tls, 'tls.crt');
    ensureSelfSignedCert(tls); // a first pair, to leave a certificate behind
    rmSync(join(tls, 'tls.key'));
    writeFileSync(certFile, 'stale');
    expect(ensureSelfSignedCert(tls)).toEqual({ certFile, keyFile: join(tls, 'tls.key'), created: true });
    const cert = new X509Certificate(readFileSync(certFile));
    expect(cert.subject).toBe('CN=acr-pull-webhook standalone');
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(existsSync(join(tls, 'tls.key'))).toBe(true);
  });

  it('runs openssl with nothing on stdin and stdout, and nothing of its stderr reaching ours', () => {
    // The fake refuses anything but /dev/null (spawn's pipes are sockets): openssl has nothing to wait for or buffer.
    fakeOpenssl([
      'if [ ! -c /dev/stdin ] || [ ! -c /dev/stdout ]; then echo "stdin or stdout is not /dev/null" >&2; exit 3; fi',
      'echo "fake openssl wrote its progress here" >&2',
      'while [ $# -gt 0 ]; do case "$1" in -keyout) printf key > "$2"; shift;; -out) printf cert > "$2"; shift;; esac; shift; done',
    ].join('\n'));
    const stderr = vi.spyOn(process.stderr, 'write');
    const out = join(dir, 'out');
    expect(ensureSelfSignedCert(out)).toEqual({ certFile: join(out, 'tls.crt'), keyFile: join(out, 'tls.key'), created: true });
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).toBe('cert');
    expect(readFileSync(join(out, 'tls.key'), 'utf8')).toBe('key');
    expect(stderr).not.toHaveBeenCalled();
  });

  it("says what to set instead when openssl fails, with openssl's own complaint", () => {
    fakeOpenssl('echo "unknown option -addext" >&2; exit 1');
    const stderr = vi.spyOn(process.stderr, 'write');
    const out = join(dir, 'out');
    const keyFile = join(out, 'tls.key');
    const certFile = join(out, 'tls.crt');
    let message = '';
    try {
      ensureSelfSignedCert(out);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(
      `could not generate a self-signed certificate with openssl into ${out} (set TLS_CERT_FILE and TLS_KEY_FILE instead): ` +
        'Command failed: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 ' +
        `-subj /CN=acr-pull-webhook standalone -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ${keyFile} -out ${certFile}\n` +
        'unknown option -addext\n',
    );
    expect(stderr).not.toHaveBeenCalled();
  });
});
