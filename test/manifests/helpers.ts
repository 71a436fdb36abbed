// Shared by the manifest tests: an isolated copy of manifests/ with certs/gen-certs.sh run into it (the
// working tree's generated/ directories and certs/out/ are never touched), and kustomize builds.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
export const OVERLAYS = ['overlays/certs-script', 'overlays/cert-manager', 'overlays/local'] as const;
export const LOCAL_PORT = 18443;

export type K8sObject = any;

export interface Workspace {
  dir: string;
  /** The copy of manifests/. */
  manifests: string;
  /** --out of gen-certs.sh: ca.crt, acr-pull-webhook.acr-pull-webhook/, local/. */
  certs: string;
  cleanup(): void;
}

export function genCerts(ws: Pick<Workspace, 'manifests' | 'certs'>, ...args: string[]): string {
  return execFileSync('bash', [join(ROOT, 'certs/gen-certs.sh'), '--out', ws.certs, '--manifests', ws.manifests, ...args], { encoding: 'utf8' });
}

/** A copy of manifests/ without generated/, with the script run for the certs-script and local overlays. */
export function workspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'acr-pull-webhook-manifests-'));
  const manifests = join(dir, 'manifests');
  cpSync(join(ROOT, 'manifests'), manifests, { recursive: true, filter: (src) => !src.split('/').includes('generated') });
  const ws = { dir, manifests, certs: join(dir, 'certs'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  genCerts(ws);
  genCerts(ws, '--local', '--port', String(LOCAL_PORT));
  return ws;
}

export function kustomize(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(text).map((d) => d.toJS());
}

export const find = (objs: K8sObject[], kind: string, name?: string): K8sObject =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));

/** Every file under dir whose name matches re (generated/ directories excluded). */
export function filesUnder(dir: string, re: RegExp): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'generated' || f === 'node_modules' ? [] : filesUnder(p, re);
    return re.test(f) ? [p] : [];
  });
}

export const read = (p: string) => readFileSync(p, 'utf8');
