// The compiled webhook takes its deadline from the API server's ?timeout=: with STS hanging, the review is
// answered (a 503 denial) just before that timeout, whatever it is, never at a fixed time of its own.
import type { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { fixture } from '../support/fixtures.js';
import { httpsRequest, warmAgent } from '../support/https.js';
import { emulatorEnv, startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

let world: DemoWorld;
let emu: Emulator;
let w: WebhookProcess;
let agent: Agent; // kept alive, opened before any clock starts (see warmAgent)

beforeAll(async () => {
  world = demoState();
  emu = await startEmulator({ world });
  emu.injectHang({ action: 'AssumeRole' });
  w = await startCompiledWebhook({
    ...emulatorEnv(emu, world.demo),
    LOG_LEVEL: 'info',
  });
  agent = await warmAgent(`https://localhost:${w.port}`, w.ca);
});
afterAll(async () => {
  agent?.destroy();
  w?.kill();
  await emu?.close();
});

/** The quick-start cross-account review from its own namespace (no cached failure answers for it). */
async function timed(namespace: string, timeout: string) {
  const doc = fixture('standalone-demo-cross-account');
  doc.request.namespace = namespace;
  doc.request.object.metadata.namespace = namespace;
  const t0 = Date.now();
  const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=${timeout}`, { body: JSON.stringify(doc), ca: w.ca, agent, timeoutMs: 40_000 });
  return { ms: Date.now() - t0, status: res.status, response: res.json.response };
}

describe('the compiled webhook answers within the API server\'s ?timeout=', () => {
  it.each([
    ['1s', 850, 1000],
    ['3s', 2700, 3000],
  ])('?timeout=%s: a 503 after %i ms, before %i ms', async (timeout, from, before) => {
    const r = await timed(`team-deadline-${timeout}`, timeout);
    expect(r.status).toBe(200);
    expect(r.response.allowed).toBe(false);
    expect(r.response.status.code).toBe(503);
    // The deadline is the timeout less 10% (at least 150 ms) for the answer to travel back.
    expect(r.ms).toBeGreaterThanOrEqual(from - 10);
    expect(r.ms).toBeLessThan(before);
  });
});
