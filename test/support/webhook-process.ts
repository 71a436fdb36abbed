// Runs the compiled webhook (`npm start`'s entry) as a child process in standalone mode, for smoke tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface WebhookProcess {
  child: ChildProcess;
  port: number;
  metricsPort: number;
  cwd: string;
  ca: Buffer;
  output(): { stdout: string; stderr: string };
  kill(): void;
}

export async function startCompiledWebhook(env: NodeJS.ProcessEnv = {}): Promise<WebhookProcess> {
  const main = resolve('dist/src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build (npm test does it first)`);
  const cwd = mkdtempSync(join(tmpdir(), 'acr-webhook-smoke-'));
  const child = spawn(process.execPath, [main], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 15_000;
  let line: string | undefined;
  while (!line) {
    line = stdout.split('\n').find((l) => l.includes('"msg":"acr-pull-webhook serving"'));
    if (line) break;
    if (child.exitCode !== null) throw new Error(`webhook exited early: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`webhook did not start in time: ${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const fields = JSON.parse(line);
  return {
    child,
    port: fields.port,
    metricsPort: fields.metricsPort,
    cwd,
    ca: readFileSync(join(cwd, '.local/tls/tls.crt')),
    output: () => ({ stdout, stderr }),
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
