// What the cloud clients put on the wire, seen by a recording proxy in front of the emulator: every call is a POST
// (no SecurityToken or Signature in a URL), the configured ExternalId travels with AssumeRole, and only throttling,
// 5xx and network failures are retried (the emulator counts the calls).
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import type { Binding } from '../../src/acr/model.js';
import { parseConfig } from '../../src/config/config.js';
import { staticIdentity } from '../../src/cloud/identity.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { CloudError } from '../../src/cloud/errors.js';
import { DenialError } from '../../src/pull-secrets/types.js';
import { silentLogger } from '../../src/pull-secrets/logger.js';

interface Seen {
  method: string;
  url: string;
  body: string;
}

const EXTERNAL_ID = 'cluster-prod-7f3a';
let world: DemoWorld;
let emu: Emulator;
let proxy: Server;
let proxyUrl = '';
const seen: Seen[] = [];
const callers: CloudCaller[] = [];
const runtimes: Runtime[] = [];

beforeAll(async () => {
  world = demoState();
  // The owner account trusts the service role only with the ExternalId bound to this cluster.
  const owner = world.accounts.find((a) => a.roles?.some((r) => r.name === 'acr-pull-user'))!;
  owner.roles!.find((r) => r.name === 'acr-pull-user')!.trust = [{ role: world.demo.serviceRoleArn, externalId: EXTERNAL_ID }];
  emu = await startEmulator({ world });
  const target = new URL(emu.url);
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: body.toString('utf8') });
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const c of callers.splice(0)) c.close();
  for (const r of runtimes.splice(0)) await r.stop();
  seen.length = 0;
  emu.reset();
});

afterAll(async () => {
  await new Promise((r) => proxy.close(r));
  await emu.close();
});

const endpoints = () => ({ sts: `${proxyUrl}/sts`, cr: (region: string) => `${proxyUrl}/cr/${region}` });
const identity = () => staticIdentity('test', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret });
const crossAccount = (): Binding => ({
  chain: { serviceArn: world.demo.serviceRoleArn, userArn: world.demo.userRoleArn },
  registries: [{ kind: 'instance', instanceId: world.demo.beijingInstanceId, region: 'cn-beijing' }],
});
const budget = () => ({ deadline: Date.now() + 10_000 });
/** The form fields of a POST body. */
const form = (s: Seen) => Object.fromEntries(new URLSearchParams(s.body));

function caller(opts: ConstructorParameters<typeof CloudCaller>[0] = {}): CloudCaller {
  const c = new CloudCaller({ backoffMs: 10, ...opts });
  callers.push(c);
  return c;
}

function tokenSource(externalIdFor?: (arn: string) => string | undefined) {
  return new AcrTokenSource({ identity: identity(), endpoints: endpoints(), caller: caller(), sessionDurationSeconds: 3600, refreshThresholdMs: 15 * 60_000, externalIdFor });
}

describe('on the wire', () => {
  it('every RPC call is a POST to the endpoint root with the parameters in the body, none in the URL', async () => {
    await tokenSource((arn) => (arn === world.demo.userRoleArn ? EXTERNAL_ID : undefined)).dockerAuths(crossAccount(), 'team-a', budget());
    const rpc = seen.filter((s) => !s.url.endsWith('/tokens'));
    const calls = rpc.map((s) => `${s.method} ${s.url} ${form(s).Action}`);
    expect(calls.slice(0, 2)).toEqual(['POST /sts/ AssumeRole', 'POST /sts/ AssumeRole']);
    expect(calls.slice(2).sort()).toEqual([
      'POST /cr/cn-beijing/ GetAuthorizationToken',
      'POST /cr/cn-beijing/ GetInstanceVpcEndpoint',
      'POST /cr/cn-beijing/ ListInstanceEndpoint',
    ]);
    // The second hop carries the first hop's SecurityToken: in the body only.
    expect(form(rpc[1]!).SecurityToken).toBeTruthy();
    for (const s of seen) expect(s.url).not.toMatch(/SecurityToken|Signature|AccessKeyId/);
  });

  it('sends the configured ExternalId with AssumeRole of that role only, and the chain works', async () => {
    const auths = await tokenSource((arn) => (arn === world.demo.userRoleArn ? EXTERNAL_ID : undefined)).dockerAuths(crossAccount(), 'team-a', budget());
    expect(Object.keys(auths.auths)).toContain('demo-owner-registry.cn-beijing.cr.aliyuncs.com');
    const assumes = seen.filter((s) => form(s).Action === 'AssumeRole').map(form);
    expect(assumes.map((p) => [p.RoleArn, p.ExternalId])).toEqual([
      [world.demo.serviceRoleArn, undefined],
      [world.demo.userRoleArn, EXTERNAL_ID],
    ]);
    expect(assumes.map((p) => [p.RoleSessionName, p.DurationSeconds])).toEqual([
      ['acr-pull@team-a', '3600'],
      ['acr-pull@team-a', '3600'],
    ]);
  });

  it('without the ExternalId the user role refuses, and the denial names the hop', async () => {
    const e = await tokenSource().dockerAuths(crossAccount(), 'team-a', budget()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DenialError);
    expect((e as DenialError).message).toContain(`acr-pull-webhook failed assuming user role ${world.demo.userRoleArn} with service role ${world.demo.serviceRoleArn}: NoPermission`);
    expect(seen.filter((s) => form(s).Action === 'AssumeRole').map((s) => form(s).ExternalId)).toEqual([undefined, undefined]);
  });

  it('the configuration file\'s credentials.externalIds reach AssumeRole through the runtime', async () => {
    const config = parseConfig({ defaultRegion: 'cn-hangzhou', credentials: { externalIds: { [world.demo.userRoleArn]: EXTERNAL_ID } } }, { ownNamespace: 'acr-pull-webhook' });
    const runtime = createRuntime({ config, identity: identity(), endpoints: endpoints(), ownNamespace: 'acr-pull-webhook', logger: silentLogger });
    runtimes.push(runtime);
    await runtime.tokens.dockerAuths(crossAccount(), 'team-b', budget());
    expect(seen.filter((s) => form(s).Action === 'AssumeRole').map((s) => form(s).ExternalId)).toEqual([undefined, EXTERNAL_ID]);
  });
});

describe('retries', () => {
  const assume = (c: CloudCaller, roleArn = world.demo.serviceRoleArn) =>
    c.rpc<{ Credentials?: unknown }>(`${proxyUrl}/sts`, '2015-04-01', { accessKeyId: world.demo.accessKeyId, accessKeySecret: world.demo.accessKeySecret }, 'AssumeRole', { RoleArn: roleArn, RoleSessionName: 'acr-pull@t', DurationSeconds: 3600 }, budget());

  it('a refusal (NoPermission, 403) is asked once', async () => {
    const e = await assume(caller(), 'acs:ram::1234567890123456:role/not-trusting-anyone').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CloudError);
    expect((e as CloudError).code).toBe('NoPermission');
    expect((e as CloudError).retryable).toBe(false);
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(1);
  });

  it('an injected non-retryable error is asked once', async () => {
    emu.inject({ kind: 'error', status: 400, code: 'InvalidParameter', message: 'bad' }, { action: 'AssumeRole' });
    const e = await assume(caller()).catch((x: unknown) => x);
    expect((e as CloudError).code).toBe('InvalidParameter');
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(1);
  });

  it('throttling and 5xx are retried until an answer, within maxAttempts', async () => {
    emu.injectThrottle({ action: 'AssumeRole', times: 2 });
    const r = await assume(caller());
    expect(r.Credentials).toBeDefined();
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(3);

    emu.reset();
    emu.injectServerError(503, { action: 'AssumeRole' });
    const e = await assume(caller({ maxAttempts: 3 })).catch((x: unknown) => x);
    expect((e as CloudError).code).toBe('ServiceUnavailable');
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(3);
  });
});
