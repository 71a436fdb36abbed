// What an end-to-end file needs around a real control plane: kubectl as users run it, polling with a deadline, and
// the webhook run on the host (cluster mode) against the emulator. Every child is asynchronous on purpose: the
// emulator lives in the test process and must keep answering while they wait.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve('.');

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (killed after timeoutMs), feeding `input`; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ status: 127, stdout: out.stdout, stderr: `${out.stderr}${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ status: code ?? 1, ...out });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export class Kubectl {
  constructor(private readonly kubeconfig: string) {}

  run(args: string[], input?: string): Promise<Run> {
    return run('kubectl', ['--kubeconfig', this.kubeconfig, ...args], input === undefined ? {} : { input });
  }

  async ok(args: string[], input?: string): Promise<string> {
    const r = await this.run(args, input);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  async json(args: string[]): Promise<any> {
    return JSON.parse(await this.ok([...args, '-o', 'json']));
  }

  async createNamespace(name: string): Promise<void> {
    await this.ok(['create', 'namespace', name]);
    await until(`default ServiceAccount in ${name}`, async () => ((await this.run(['get', 'sa', 'default', '-n', name])).status === 0 ? true : undefined));
  }
}

export interface WebhookProcess {
  child: ChildProcess;
  log(): string;
  /** SIGTERM and wait: the webhook releases its Lease on the way out. */
  stop(): Promise<void>;
}

/**
 * Starts dist/src/main.js (or E2E_WEBHOOK_MAIN: another build, e.g. an older commit's to see a test fail without its
 * fix) in cluster mode on 127.0.0.1, without waiting.
 */
export function spawnWebhook(opts: { name: string; workDir: string; env: NodeJS.ProcessEnv }): WebhookProcess {
  const lines: string[] = [];
  const child = spawn(process.execPath, [process.env.E2E_WEBHOOK_MAIN ?? join(ROOT, 'dist/src/main.js')], {
    env: { PATH: process.env.PATH, POD_NAMESPACE: 'acr-pull-webhook', POD_NAME: opts.name, LOG_LEVEL: 'info', BIND_ADDRESS: '127.0.0.1', METRICS_BIND_ADDRESS: '127.0.0.1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => lines.push(String(d)));
  child.stderr!.on('data', (d) => lines.push(String(d)));
  child.on('exit', () => writeFileSync(join(opts.workDir, `${opts.name}-${child.pid}.log`), lines.join('')));
  return {
    child,
    log: () => lines.join(''),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Starts the webhook and waits until it is ready: listening, and every cache it decides with filled. */
export async function startWebhook(opts: { name: string; workDir: string; env: NodeJS.ProcessEnv }): Promise<WebhookProcess> {
  const w = spawnWebhook(opts);
  await until(`webhook ${opts.name} to be ready`, () => {
    const log = w.log();
    if (log.includes('acr-pull-webhook serving') && log.includes('ready: every cache has synced')) return true;
    if (w.child.exitCode !== null) throw new Error(log);
    return undefined;
  }, 60_000);
  return w;
}
