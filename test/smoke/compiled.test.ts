// Runs the compiled output (`npm start`'s entry) as a user would: catches ESM/CommonJS import mistakes that
// vitest's transform hides, and proves standalone mode starts, answers and shuts down cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

const MAIN = resolve('dist/src/main.js');
let child: ChildProcess;
let port = 0;
let cwd: string;
let stdout = '';
let stderr = '';

function standaloneEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'debug' };
  return env;
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build (npm test does it first)`);
  cwd = mkdtempSync(join(tmpdir(), 'acr-webhook-smoke-'));
  child = spawn(process.execPath, [MAIN], { cwd, env: standaloneEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && port === 0) {
    const m = /"msg":"acr-pull-webhook serving"/.test(stdout) ? /"port":(\d+)/.exec(stdout.split('\n').find((l) => l.includes('acr-pull-webhook serving')) ?? '') : null;
    if (m) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 50));
    if (child.exitCode !== null) throw new Error(`webhook exited early: ${stderr}`);
  }
  if (port === 0) throw new Error(`webhook did not start in time: ${stdout}\n${stderr}`);
});

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

describe('compiled standalone webhook', () => {
  it('says it is standalone and how to try it', () => {
    expect(stderr).toContain('STANDALONE mode');
    expect(stderr).toContain('curl -sk https://127.0.0.1:');
  });

  it('answers a review over HTTPS with its self-signed certificate', async () => {
    const ca = readFileSync(join(cwd, '.local/tls/tls.crt'));
    const body = fixtureText('pod-no-annotations');
    const res = await httpsRequest(`https://localhost:${port}/mutate?timeout=10s`, { body, ca });
    expect(res.status).toBe(200);
    expect(res.json.response).toEqual({ uid: JSON.parse(body).request.uid, allowed: true });
  });

  it('serves the quick-start review end to end: emulator chain, in-memory Secret, patch', async () => {
    const ca = readFileSync(join(cwd, '.local/tls/tls.crt'));
    const body = fixtureText('standalone-demo-cross-account');
    const res = await httpsRequest(`https://localhost:${port}/mutate?timeout=10s`, { body, ca });
    expect(res.status).toBe(200);
    expect(res.json.response.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString());
    expect(patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) }] }]);
  });

  it('exposes Prometheus metrics on the metrics port', async () => {
    const m = /"metricsPort":(\d+)/.exec(stdout);
    expect(m).not.toBeNull();
    const text = await (await fetch(`http://127.0.0.1:${m![1]}/metrics`)).text();
    expect(text).toMatch(/acr_webhook_cloud_call_duration_seconds_count\{api="AssumeRole",code="ok"\} 2/);
    expect(text).toMatch(/acr_webhook_secret_writes_total\{operation="create",outcome="ok"\} 1/);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
