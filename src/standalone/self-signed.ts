// A throw-away serving certificate for standalone mode, made once into a git-ignored folder with openssl.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function ensureSelfSignedCert(dir: string): { certFile: string; keyFile: string; created: boolean } {
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '365',
        '-subj', '/CN=acr-pull-webhook standalone', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout', keyFile, '-out', certFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (e) {
    throw new Error(`could not generate a self-signed certificate with openssl into ${dir} (set TLS_CERT_FILE and TLS_KEY_FILE instead): ${(e as Error).message}`);
  }
  return { certFile, keyFile, created: true };
}
