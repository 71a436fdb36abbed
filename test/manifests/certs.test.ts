// certs/gen-certs.sh: the CA and serving certificates it makes (SANs, signatures, usages), re-runs, arguments.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { genCerts, hasKubectl, kustomize, read, ROOT, workspace, type Workspace } from './helpers.js';

const SCRIPT = join(ROOT, 'certs/gen-certs.sh');
let ws: Workspace;
const cert = (...p: string[]) => new X509Certificate(read(join(ws.certs, ...p)));
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

beforeAll(() => {
  ws = workspace();
});
afterAll(() => ws?.cleanup());

describe('certs/gen-certs.sh', () => {
  it('is bash with set -euo pipefail', () => {
    const text = read(SCRIPT);
    expect(text.split('\n')[0]).toBe('#!/usr/bin/env bash');
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(statSync(SCRIPT).mode & 0o111).not.toBe(0);
  });

  it('the Service certificate names <service>.<namespace>.svc and .svc.cluster.local, for server auth, signed by the CA', () => {
    const file = join(ws.certs, 'acr-pull-webhook.acr-pull-webhook', 'tls.crt');
    expect(openssl('x509', '-in', file, '-noout', '-ext', 'subjectAltName').split('\n')[1]!.trim()).toBe(
      'DNS:acr-pull-webhook.acr-pull-webhook.svc, DNS:acr-pull-webhook.acr-pull-webhook.svc.cluster.local',
    );
    const c = cert('acr-pull-webhook.acr-pull-webhook', 'tls.crt');
    expect(c.subjectAltName).toBe('DNS:acr-pull-webhook.acr-pull-webhook.svc, DNS:acr-pull-webhook.acr-pull-webhook.svc.cluster.local');
    expect(c.ca).toBe(false);
    expect(c.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // extendedKeyUsage serverAuth
    expect(c.checkIssued(cert('ca.crt'))).toBe(true);
    expect(c.verify(cert('ca.crt').publicKey)).toBe(true);
    expect(c.checkPrivateKey(createPrivateKey(read(join(ws.certs, 'acr-pull-webhook.acr-pull-webhook', 'tls.key'))))).toBe(true);
    expect(openssl('verify', '-CAfile', join(ws.certs, 'ca.crt'), '-purpose', 'sslserver', file).trim()).toBe(`${file}: OK`);
  });

  it('the local certificate has the IP SAN the API server needs for https://127.0.0.1', () => {
    const file = join(ws.certs, 'local', 'tls.crt');
    expect(openssl('x509', '-in', file, '-noout', '-ext', 'subjectAltName').split('\n')[1]!.trim()).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(cert('local', 'tls.crt').checkHost('localhost')).toBe('localhost');
    expect(cert('local', 'tls.crt').checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert('local', 'tls.crt').verify(cert('ca.crt').publicKey)).toBe(true);
  });

  it('the CA is a CA (basicConstraints CA:TRUE, keyCertSign), as Go’s verifier in the API server requires', () => {
    expect(cert('ca.crt').ca).toBe(true);
    expect(openssl('x509', '-in', join(ws.certs, 'ca.crt'), '-noout', '-ext', 'keyUsage')).toMatch(/Certificate Sign/);
  });

  it('private keys are readable by their owner only', () => {
    for (const p of ['ca.key', 'local/tls.key', 'acr-pull-webhook.acr-pull-webhook/tls.key']) expect(statSync(join(ws.certs, p)).mode & 0o077, p).toBe(0);
    expect(statSync(join(ws.manifests, 'overlays/certs-script/generated/tls-secret.yaml')).mode & 0o077).toBe(0);
  });

  it('a second run keeps the CA (caBundle stays valid), renews the serving certificate and leaves the overlay building', () => {
    const ca = read(join(ws.certs, 'ca.crt'));
    const before = read(join(ws.certs, 'acr-pull-webhook.acr-pull-webhook', 'tls.crt'));
    genCerts(ws);
    expect(read(join(ws.certs, 'ca.crt'))).toBe(ca);
    const after = read(join(ws.certs, 'acr-pull-webhook.acr-pull-webhook', 'tls.crt'));
    expect(after).not.toBe(before);
    expect(new X509Certificate(after).verify(cert('ca.crt').publicKey)).toBe(true);
    const secret = parseYaml(read(join(ws.manifests, 'overlays/certs-script/generated/tls-secret.yaml')));
    expect(Buffer.from(secret.data['tls.crt'], 'base64').toString()).toBe(after);
    if (hasKubectl) {
      const objs = kustomize(join(ws.manifests, 'overlays/certs-script'));
      const mwc = objs.find((o) => o.kind === 'MutatingWebhookConfiguration');
      expect(Buffer.from(mwc.webhooks[0].clientConfig.caBundle, 'base64').toString()).toBe(ca);
    }
  });

  it('--service and --namespace name another Service; --days sets the lifetime', () => {
    const out = join(ws.dir, 'other');
    mkdirSync(out);
    genCerts({ manifests: ws.manifests, certs: out }, '--service', 'hook', '--namespace', 'ops', '--days', '30');
    const c = new X509Certificate(read(join(out, 'hook.ops', 'tls.crt')));
    expect(c.subjectAltName).toBe('DNS:hook.ops.svc, DNS:hook.ops.svc.cluster.local');
    const days = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(30);
  });

  it.each([
    [['--port', '0']],
    [['--port', 'http']],
    [['--port', '70000']],
    [['--port']],
    [['--days', '-1']],
    [['--service', 'Bad_Name']],
    [['--nope']],
    [['--manifests', '/nonexistent']],
  ])('refuses %j without writing anything', (args) => {
    const out = join(ws.dir, `refused-${Math.random().toString(36).slice(2)}`);
    const r = spawnSync('bash', [SCRIPT, '--out', out, '--manifests', ws.manifests, ...args], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^gen-certs: /);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a CA key that does not belong to the CA certificate', () => {
    const out = join(ws.dir, 'mismatch');
    mkdirSync(out);
    execFileSync('cp', [join(ws.certs, 'ca.crt'), join(out, 'ca.crt')]);
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', join(out, 'ca.key'));
    const r = spawnSync('bash', [SCRIPT, '--out', out, '--manifests', ws.manifests], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/does not match/);
  });

  it('--help prints the usage', () => {
    const r = spawnSync('bash', [SCRIPT, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--local/);
    expect(r.stdout).not.toMatch(/^#/m);
  });
});
