// Policy changes apply without a restart: the configuration file is re-read when it changes, and a bad new
// version is rejected while the previous one stays in force.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

const dir = mkdtempSync(join(tmpdir(), 'reload-'));
const file = join(dir, 'config.yaml');
const policy = (instances: string) =>
  `policy:\n  rules:\n    - name: team-a\n      namespaces: {names: [team-a]}\n      serviceArns: ["*"]\n      userArns: ["*"]\n      instances: [${instances}]\n`;
let w: WebhookProcess;

beforeAll(async () => {
  writeFileSync(file, policy('"cn-hangzhou:cri-demo0000000001"'));
  w = await startCompiledWebhook({ CONFIG_FILE: file });
});
afterAll(() => {
  w.kill();
  rmSync(dir, { recursive: true, force: true });
});

const review = async () => (await httpsRequest(`https://localhost:${w.port}/mutate`, { body: fixtureText('standalone-demo-cross-account'), ca: w.ca })).json.response;

async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

describe('configuration reload', () => {
  it('applies a policy change without a restart and keeps the old one when the new file is bad', async () => {
    expect(await review()).toMatchObject({ allowed: false, status: { code: 403 } });
    writeFileSync(file, policy('"cn-beijing:cri-demo0000000002"'));
    expect(await eventually(async () => (await review()).allowed === true)).toBe(true);
    writeFileSync(file, 'policy: {rules: [{name: x}]}\n');
    expect(await eventually(async () => w.output().stdout.includes('new configuration rejected'))).toBe(true);
    expect((await review()).allowed).toBe(true);
  });
});
