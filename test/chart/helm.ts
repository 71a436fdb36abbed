// helm template of charts/acr-pull-webhook with a set of values, parsed; shared by the chart, monitoring and
// release tests. The binary is the pinned one test/tools/build.sh builds (test/support/go-tools.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { goTool } from '../support/go-tools.js';

export const HELM = goTool('helm');
export const CHART = 'charts/acr-pull-webhook';
export const RELEASE_NS = 'acr-pull-webhook';

export type K8sObject = any;

export interface Rendered {
  status: number | null;
  stdout: string;
  stderr: string;
  objects: K8sObject[];
}

export function helm(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELM.path, args, { encoding: 'utf8', input, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template acr-pull-webhook <chart> -n acr-pull-webhook -f <values>`. */
export function template(values: object = {}, extra: string[] = []): Rendered {
  const dir = mkdtempSync(join(tmpdir(), 'acr-chart-'));
  try {
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(values));
    const r = helm(['template', 'acr-pull-webhook', CHART, '--namespace', RELEASE_NS, '-f', file, ...extra]);
    const objects = r.status === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((o) => o !== null) : [];
    return { ...r, objects };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function rendered(values: object = {}, extra: string[] = []): K8sObject[] {
  const r = template(values, extra);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.objects;
}

export const find = (objs: K8sObject[], kind: string, name?: string): K8sObject =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
