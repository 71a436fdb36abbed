// Runs the compiled webhook (`npm start`'s entry) as a child process, for smoke tests: standalone mode by default,
// cluster mode when the environment says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface SpawnedWebhook {
  child: ChildProcess;
  cwd: string;
  output(): { stdout: string; stderr: string };
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  exited: Promise<number | string | null>;
  /** The first stdout line containing `text`, parsed as JSON; rejects after `timeoutMs` or when the process exits. */
  waitForLine(text: string, timeoutMs?: number): Promise<Record<string, any>>;
  /** Every stdout JSON line whose `msg` is `msg`. */
  lines(msg: string): Array<Record<string, any>>;
  kill(): void;
}

export interface WebhookProcess extends SpawnedWebhook {
  port: number;
  metricsPort: number;
  ca: Buffer;
}

/** Starts `dist/src/main.js` without waiting for anything (listening on 127.0.0.1, random ports, debug logs). */
export function spawnCompiledWebhook(env: NodeJS.ProcessEnv = {}): SpawnedWebhook {
  const main = resolve('dist/src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build (npm test does it first)`);
  const cwd = mkdtempSync(join(tmpdir(), 'acr-webhook-smoke-'));
  const child = spawn(process.execPath, [main], {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      METRICS_PORT: '0',
      BIND_ADDRESS: '127.0.0.1',
      METRICS_BIND_ADDRESS: '127.0.0.1',
      LOG_LEVEL: 'debug',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | string | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const parsed = (): Array<Record<string, any>> =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, any>;
        } catch {
          return {};
        }
      });
  return {
    child,
    cwd,
    exited,
    output: () => ({ stdout, stderr }),
    lines: (msg) => parsed().filter((l) => l.msg === msg),
    async waitForLine(text, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = stdout.split('\n').find((l) => l.includes(text));
        if (line) return JSON.parse(line) as Record<string, any>;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`webhook exited (${child.exitCode ?? child.signalCode}) before "${text}": ${stdout}\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`no "${text}" from the webhook within ${timeoutMs} ms: ${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

export async function startCompiledWebhook(env: NodeJS.ProcessEnv = {}): Promise<WebhookProcess> {
  const w = spawnCompiledWebhook(env);
  try {
    const fields = await w.waitForLine('"msg":"acr-pull-webhook serving"');
    const certFile = env.TLS_CERT_FILE ?? join(w.cwd, '.local/tls/tls.crt');
    return { ...w, port: fields.port, metricsPort: fields.metricsPort, ca: readFileSync(certFile) };
  } catch (e) {
    w.kill();
    throw e;
  }
}

/** The environment that points the webhook's cloud clients at the emulator and signs with `key`. */
export function emulatorEnv(
  emu: { stsEndpoint: string; crEndpointTemplate: string },
  key: { accessKeyId: string; accessKeySecret: string },
): NodeJS.ProcessEnv {
  return {
    ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
    ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
    ALIBABA_CLOUD_ACCESS_KEY_ID: key.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: key.accessKeySecret,
  };
}
