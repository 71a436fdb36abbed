// The compiled webhook (standalone, bundled emulator) with served registries: a `registries` entry without domains
// behind a role chain (the helper's assumeRoleARN) is looked up and served; discovery without cr:ListInstance only
// counts errors; a discovered registry whose token is refused never blocks the Pod; the metrics say all of it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

const dir = mkdtempSync(join(tmpdir(), 'acr-webhook-discovery-'));
const configFile = join(dir, 'config.yaml');
// The demo world's service role (emulator/demo.ts) reads every instance of the workload account.
const chained = ['registries:', '  - instanceId: cri-demo0000000001', '    serviceArn: "acs:ram::1234567890123456:role/acr-pull"', ''];

let w: WebhookProcess;
beforeAll(async () => {
  writeFileSync(configFile, chained.join('\n'));
  w = await startCompiledWebhook({ CONFIG_FILE: configFile, ALIBABA_CLOUD_REGION_ID: 'cn-hangzhou' });
});
afterAll(() => w.kill());

const metrics = async () => (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function review(images: string[]) {
  const doc = fixture('pod-served-registries-no-annotations');
  doc.request.object.spec.initContainers = [];
  doc.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
  const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=10s`, { body: JSON.stringify(doc), ca: w.ca });
  expect(res.status).toBe(200);
  return res.json.response;
}

describe('compiled webhook serving registries without annotations', () => {
  it('looks up the domains of a configured instance through its role chain and serves an unannotated Pod on them', async () => {
    await until('the look-up', async () => ((await metrics()).match(/acr_webhook_discovery_last_success_timestamp_seconds [1-9]/) ? true : undefined));
    const response = await review(['demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/app/web:1', 'nginx:1.27']);
    expect(response.allowed).toBe(true);
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) }] }]);
    expect(await review(['nginx:1.27'])).toEqual({ uid: expect.any(String), allowed: true });
    const text = await metrics();
    expect(text).toContain('acr_webhook_discovered_instances 0');
    expect(text).not.toContain('acr_webhook_discovery_errors_total{');
  });

  it('with discovery on but no cr:ListInstance: errors are counted, and a refused discovered registry admits the Pod with a warning', async () => {
    writeFileSync(configFile, [...chained, 'discovery: {enabled: true, regions: [cn-hangzhou], missInterval: 1s}', ''].join('\n'));
    const text = await until('a discovery error', async () => {
      const t = await metrics();
      return t.includes('acr_webhook_discovery_errors_total{step="list",code="NoPermission"}') ? t : undefined;
    });
    expect(text).toContain('acr_webhook_discovered_instances 0');
    // The demo user may not get Personal Edition tokens: the Pod is admitted unchanged, and told why.
    const response = await review(['registry.cn-hangzhou.aliyuncs.com/team/tool:2']);
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
    expect(response.warnings).toEqual(['no pull Secret for registry.cn-hangzhou.aliyuncs.com (found by discovery): no registry token; see the webhook log']);
    // The log line is written with the answer and may reach the pipe just after it.
    await until('the log line', async () => (w.output().stdout.includes('admitted without the pull Secret of a registry found by discovery') ? true : undefined));
  });
});
