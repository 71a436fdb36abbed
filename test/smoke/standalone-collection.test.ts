// Idle collection in standalone mode on the compiled server: no Pods to list, so a Secret lives while admissions
// use it and is deleted `idleTimeout` after the last one, on the schedule derived from `secrets.idleTimeout`
// (every idleTimeout/2, at least 30 s; first sweep 10 s after start).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureText } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';
import { startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

const dir = mkdtempSync(join(tmpdir(), 'collection-'));
let w: WebhookProcess | undefined;
afterAll(() => {
  w?.kill();
  rmSync(dir, { recursive: true, force: true });
});

function review(namespace: string, uid: string): string {
  const r = JSON.parse(fixtureText('standalone-demo-cross-account'));
  r.request.uid = uid;
  r.request.namespace = namespace;
  r.request.object.metadata.namespace = namespace;
  return JSON.stringify(r);
}

describe('standalone idle collection', () => {
  it('deletes a Secret no admission used for idleTimeout (30 s) within one interval, keeps the one in use', async () => {
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'secrets: {idleTimeout: 30s}\n');
    w = await startCompiledWebhook({ CONFIG_FILE: config, LOG_LEVEL: 'info' });
    const send = async (ns: string, uid: string) => {
      const res = await httpsRequest(`https://127.0.0.1:${w!.port}/mutate?timeout=10s`, { body: review(ns, uid), ca: w!.ca });
      expect(res.json.response.allowed).toBe(true);
      return JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString())[0].value[0].name as string;
    };
    const used = await send('team-used', 'u-0');
    const idle = await send('team-idle', 'i-0');
    const created = Date.now();

    // team-used keeps being admitted every 5 s; team-idle never again. Bounded: idleTimeout + one interval + slack.
    let deletedAt: number | undefined;
    for (let i = 1; Date.now() - created < 75_000 && deletedAt === undefined; i++) {
      await new Promise((r) => setTimeout(r, 5000));
      expect(await send('team-used', `u-${i}`)).toBe(used);
      if (w.lines('deleted idle pull Secret').some((l) => l.namespace === 'team-idle' && l.name === idle)) deletedAt = Date.now();
    }
    expect(deletedAt, `no deletion of team-idle/${idle} within 75 s: ${w.output().stdout.slice(-2000)}`).toBeDefined();
    expect(deletedAt! - created).toBeGreaterThanOrEqual(30_000);
    expect(w.lines('deleted idle pull Secret').filter((l) => l.namespace === 'team-used')).toEqual([]);
    // Asked for again, it is made again.
    expect(await send('team-idle', 'i-1')).toBe(idle);
  }, 100_000);
});
