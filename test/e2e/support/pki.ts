// A throw-away CA and server certificates for loopback services that must look like real hosts (registries under
// their ACR domain names, the token realm): clients verify them against this CA with the real host name.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  /** Issues a certificate for these DNS names; returns the PEM file paths. */
  issue(name: string, dnsNames: string[]): { cert: string; key: string };
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=acr-e2e-ca', '-keyout', p('ca.key'), '-out', p('ca.crt')]);
  return {
    dir,
    caCert: p('ca.crt'),
    issue(name, dnsNames) {
      openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${dnsNames[0]}`, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`)]);
      writeFileSync(p(`${name}.ext`), `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
      openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`)]);
      return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
    },
  };
}
