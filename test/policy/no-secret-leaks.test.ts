// A full admission flow with debug logging, successes and failures, and a scan of every log line, denial,
// metric and event for the AccessKey secret, the STS secrets and tokens, and the registry passwords.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servingRules } from '../../src/admission/plan.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { parseConfig } from '../../src/config/config.js';
import { demoState, startEmulator, type Emulator } from '../../emulator/index.js';
import { Metrics } from '../../src/metrics.js';
import { decodeDockerConfig } from '../../src/pull-secrets/docker-config.js';
import type { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { buildServer } from '../../src/server.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';
import { fixture } from '../support/fixtures.js';
import { httpsRequest } from '../support/https.js';

const logLines: string[] = [];
const answers: string[] = [];
const secrets = new Set<string>();
let emulator: Emulator;
let proxy: Server;
let app: FastifyInstance;
let runtime: Runtime;
let metrics: Metrics;
let base: string;
let ca: Buffer;
let dir: string;

/** Sits between the webhook and the emulator and collects every credential the cloud hands out. */
function capturingProxy(target: string): Promise<Server> {
  const server = createServer((req, res) => {
    const up = httpRequest(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const body = Buffer.concat(chunks);
        try {
          const json = JSON.parse(body.toString());
          const c = json.Credentials;
          if (c) [c.AccessKeySecret, c.SecurityToken].forEach((s: string) => s && secrets.add(s));
          if (json.AuthorizationToken) secrets.add(json.AuthorizationToken);
          if (json.data?.authorizationToken) secrets.add(json.data.authorizationToken);
        } catch {
          /* not JSON: nothing to collect */
        }
        res.writeHead(r.statusCode ?? 500, r.headers).end(body);
      });
    });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  const world = demoState();
  secrets.add(world.demo.accessKeySecret);
  emulator = await startEmulator({ world });
  proxy = await capturingProxy(emulator.url);
  const addr = proxy.address();
  const proxyUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  dir = mkdtempSync(join(tmpdir(), 'leaks-'));
  const tls = ensureSelfSignedCert(dir);
  ca = readFileSync(tls.certFile);
  metrics = new Metrics({ defaultMetrics: false });
  const config = parseConfig({}, { ownNamespace: 'acr-pull-webhook' });
  const rules = servingRules(config, 'acr-pull-webhook');
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  app = buildServer({
    rules: () => rules,
    secrets: { ensure: (s, b) => runtime.manager.ensure(s, b), ready: () => runtime.manager.ready() },
    tls,
    logLevel: 'debug',
    logStream,
    observe: (o, s) => metrics.observeAdmission(o.kind, o.result, o.path, s),
  });
  runtime = createRuntime({
    config,
    identity: staticIdentity('test', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret }),
    endpoints: { sts: `${proxyUrl}/sts`, cr: (r) => `${proxyUrl}/cr/${r}` },
    ownNamespace: 'acr-pull-webhook',
    logger: app.log,
    metrics,
  });
  await runtime.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  base = `https://localhost:${typeof a === 'object' && a ? a.port : 0}`;
});

afterAll(async () => {
  await app.close();
  await runtime.stop();
  proxy.close();
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
});

async function review(body: unknown): Promise<any> {
  const res = await httpsRequest(`${base}/mutate?timeout=5s`, { body: JSON.stringify(body), ca });
  answers.push(res.text);
  return res.json;
}

describe('no secret reaches logs, answers, metrics or events', () => {
  it('runs successes and failures, then finds none of the secrets anywhere', async () => {
    const ok = fixture('standalone-demo-cross-account');
    expect((await review(ok)).response.allowed).toBe(true);

    // Failures: a role that does not trust the caller, an injected signature error echoing a string to
    // sign, throttling until the deadline, and a 500.
    const untrusted = fixture('standalone-demo-cross-account');
    untrusted.request.uid = 'u-untrusted';
    untrusted.request.namespace = 'team-b';
    untrusted.request.object.metadata.annotations['k8s.aliyun.com/acr-user-arns'] = 'acs:ram::6543210987654321:role/acr-pull-usr';
    expect((await review(untrusted)).response.allowed).toBe(false);

    for (const [ns, inject] of [
      ['team-c', () => emulator.inject({ kind: 'error', status: 400, code: 'SignatureDoesNotMatch', message: `Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3D${[...secrets].join('')}` }, { action: 'GetAuthorizationToken', times: 1 })],
      ['team-d', () => emulator.injectThrottle({ action: 'AssumeRole', times: 2 })],
      ['team-e', () => emulator.injectServerError(500, { action: 'ListInstanceEndpoint', times: 1 })],
    ] as const) {
      inject();
      const r = fixture('standalone-demo-cross-account');
      r.request.uid = `u-${ns}`;
      r.request.namespace = ns;
      await review(r);
    }

    // The Secret holds the password: it must be there, and only there.
    const store = runtime.manager.store as MemorySecretStore;
    const written = store.list();
    expect(written.length).toBeGreaterThan(0);
    const auths = decodeDockerConfig(written[0]!);
    expect(Object.keys(auths ?? {})).toContain('demo-owner-registry.cn-beijing.cr.aliyuncs.com');
    const password = Object.values(auths!)[0]!.password;
    expect(secrets.has(password)).toBe(true);

    // Make sure the scan has something to find if a leak existed.
    expect(secrets.size).toBeGreaterThanOrEqual(4);
    expect(logLines.length).toBeGreaterThan(5);

    const metricsText = await metrics.registry.metrics();
    const events = store.events.map((e) => `${e.reason} ${e.message}`);
    const haystacks: [string, string[]][] = [
      ['log', logLines],
      ['answer', answers],
      ['metrics', [metricsText]],
      ['event', events],
    ];
    for (const [where, lines] of haystacks) {
      for (const line of lines) {
        for (const secret of secrets) {
          if (line.includes(secret)) throw new Error(`a secret (${secret.slice(0, 4)}...) appeared in a ${where}: ${line.slice(0, 200)}`);
        }
      }
    }
    // The injected SignatureDoesNotMatch message (string to sign) is not passed on either.
    expect(answers.join('\n')).not.toContain('string to sign');
    expect(logLines.join('\n')).not.toContain('string to sign');
  });
});
