// Runs the compiled output (`npm start`'s entry) as a user would: catches ESM/CommonJS import mistakes that
// vitest's transform hides, and proves standalone mode starts, answers and shuts down cleanly.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureText } from '../support/fixtures.js';
import { h2Request, h2Session } from '../support/h2.js';
import { httpsRequest } from '../support/https.js';
import { startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

let w: WebhookProcess;
beforeAll(async () => {
  w = await startCompiledWebhook();
});
afterAll(() => w.kill());

describe('compiled standalone webhook', () => {
  it('says it is standalone and how to try it', () => {
    expect(w.output().stderr).toContain('STANDALONE mode');
    expect(w.output().stderr).toContain('curl -sk https://127.0.0.1:');
  });

  it('answers a review over HTTPS with its self-signed certificate', async () => {
    const body = fixtureText('pod-no-annotations');
    const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=10s`, { body, ca: w.ca });
    expect(res.status).toBe(200);
    expect(res.json.response).toEqual({ uid: JSON.parse(body).request.uid, allowed: true });
  });

  it('answers a review whose body starts with a byte-order mark as it answers the same review without one', async () => {
    const body = fixtureText('pod-no-annotations');
    const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=10s`, { body: `\uFEFF${body}`, ca: w.ca });
    expect(res.status).toBe(200);
    expect(res.json.response).toEqual({ uid: JSON.parse(body).request.uid, allowed: true });
  });

  it('serves the quick-start review end to end: emulator chain, in-memory Secret, patch', async () => {
    const body = fixtureText('standalone-demo-cross-account');
    const res = await httpsRequest(`https://localhost:${w.port}/mutate?timeout=10s`, { body, ca: w.ca });
    expect(res.status).toBe(200);
    expect(res.json.response.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString());
    expect(patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: expect.stringMatching(/^acr-pull-[0-9a-f]{20}$/) }] }]);
  });

  it('answers reviews over HTTP/2 on the same port, and counts connections by protocol', async () => {
    const session = await h2Session(`https://localhost:${w.port}`, w.ca);
    try {
      expect(session.alpnProtocol).toBe('h2');
      const body = fixtureText('pod-no-annotations');
      const answers = await Promise.all([0, 1, 2].map(() => h2Request(session, '/mutate?timeout=10s', { body })));
      for (const a of answers) expect(a.json.response).toEqual({ uid: JSON.parse(body).request.uid, allowed: true });
    } finally {
      session.close();
    }
    const text = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
    expect(text).toMatch(/^acr_webhook_connections_total\{protocol="h2"\} 1$/m);
    // The HTTP/1.1 clients of the tests above (and the start-up wait's): one connection or more.
    expect(Number(/^acr_webhook_connections_total\{protocol="http\/1.1"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('exposes Prometheus metrics on the metrics port', async () => {
    const text = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
    expect(text).toMatch(/acr_webhook_cloud_call_duration_seconds_count\{api="AssumeRole",code="ok"\} 2/);
    expect(text).toMatch(/acr_webhook_secret_writes_total\{operation="create",outcome="ok"\} 1/);
    expect(text).toMatch(/acr_webhook_oldest_token_expiry_seconds \d+/);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(text).toContain(`acr_webhook_build_info{version="${pkg.version}",nodejs="${process.versions.node}"} 1`);
    // The default credentials.refreshThreshold (15m), and the self-signed certificate's expiry.
    expect(text).toMatch(/^acr_webhook_refresh_threshold_seconds 900$/m);
    const notAfter = Date.parse(new X509Certificate(w.ca).validTo) / 1000;
    expect(text).toMatch(new RegExp(`^acr_webhook_tls_certificate_expiry_timestamp_seconds ${notAfter}$`, 'm'));
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
    w.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
