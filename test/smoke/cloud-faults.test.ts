// The compiled webhook against an emulator that hangs or is slow: the denial names the cloud step that was
// waiting (which role, which instance) and arrives within the API server's ?timeout=, never blaming the
// Secret write for a slow cloud call.
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
  w = await startCompiledWebhook({
    ...emulatorEnv(emu, world.demo),
  });
  agent = await warmAgent(`https://localhost:${w.port}`, w.ca);
});
afterAll(async () => {
  agent?.destroy();
  w?.kill();
  await emu?.close();
});

/** The quick-start cross-account review, from `namespace` (each case its own, so no cache answers for it). */
async function review(namespace: string, timeout: string) {
  const doc = fixture('standalone-demo-cross-account');
  doc.request.uid = `00000000-0000-4000-8000-${String(Date.now()).slice(-12)}`;
  doc.request.namespace = namespace;
  doc.request.object.metadata.namespace = namespace;
  const started = Date.now();
  const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=${timeout}`, { body: JSON.stringify(doc), ca: w.ca, agent, timeoutMs: 20_000 });
  return { ms: Date.now() - started, status: res.status, response: res.json.response };
}

describe('cloud calls that do not answer in time', () => {
  it('?timeout=10s with GetAuthorizationToken slower than that: names the instance and the registry API', async () => {
    const slow = emu.injectLatency(15_000, { action: 'GetAuthorizationToken' });
    try {
      const r = await review('team-slow-token', '10s');
      expect(r.status).toBe(200);
      expect(r.ms).toBeLessThan(10_000);
      expect(r.response.allowed).toBe(false);
      expect(r.response.status.code).toBe(503);
      expect(r.response.status.message).toContain(
        `acr-pull-webhook timed out getting a registry token for ACR instance ${world.demo.beijingInstanceId} in cn-beijing as ${world.demo.userRoleArn}`,
      );
      expect(r.response.status.message).toContain(`Container Registry (${emu.crEndpoint('cn-beijing')}) did not answer`);
      expect(r.response.status.message).not.toContain('writing pull Secret');
    } finally {
      slow.remove();
    }
  });

  it('?timeout=2s with AssumeRole hanging: names the role being assumed and STS', async () => {
    emu.injectHang({ action: 'AssumeRole' });
    const r = await review('team-hung-sts', '2s');
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(2000);
    expect(r.response.status.code).toBe(503);
    expect(r.response.status.message).toContain(`acr-pull-webhook timed out assuming service role ${world.demo.serviceRoleArn}`);
    expect(r.response.status.message).toContain(`STS (${emu.stsEndpoint}) did not answer`);
    expect(r.response.status.message).not.toContain('writing pull Secret');
  });
});
