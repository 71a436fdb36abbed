// The webhook's own identity: the order of sources, and RRSA end to end through @alicloud/credentials against
// the emulator (behind an HTTPS front, since the library only speaks https to STS).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityFromEnv } from '../../src/cloud/identity.js';
import { demoState, makeOidcToken, startEmulator, type DemoWorld, type Emulator } from '../../emulator/index.js';
import { ensureSelfSignedCert } from '../../src/standalone/self-signed.js';

describe('identity sources', () => {
  it('prefers AccessKey env, then RRSA, then the ECS RAM role', () => {
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's', ALIBABA_CLOUD_ROLE_ARN: 'x' }).source).toBe('env (AccessKey)');
    expect(identityFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'STS.x', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's', ALIBABA_CLOUD_SECURITY_TOKEN: 't' }).source).toBe('env (STS token)');
    expect(
      identityFromEnv({ ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1:role/r', ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1:oidc-provider/p', ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/t' }).source,
    ).toBe('rrsa (acs:ram::1:role/r)');
    expect(identityFromEnv({}).source).toBe('ecs-ram-role');
  });
});

describe('RRSA against the emulator', () => {
  let emu: Emulator;
  let world: DemoWorld;
  let front: Server;
  let dir: string;
  let port = 0;

  beforeAll(async () => {
    world = demoState();
    emu = await startEmulator({ world });
    dir = mkdtempSync(join(tmpdir(), 'rrsa-'));
    const tls = ensureSelfSignedCert(dir);
    // The library posts to https://<host>/; the emulator serves STS under /sts.
    front = createServer({ key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) }, (req, res) => {
      const up = httpRequest(`${emu.url}/sts${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const a = front.address();
    port = typeof a === 'object' && a ? a.port : 0;
  });
  afterAll(async () => {
    front.close();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exchanges the OIDC token file for STS credentials of the role', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, makeOidcToken({ iss: world.demo.oidcIssuer, aud: world.demo.oidcAudience, sub: world.demo.oidcSubject, exp: Math.floor(Date.now() / 1000) + 3600 }, world.demo.oidcSigningKey));
    // A child process, so NODE_EXTRA_CA_CERTS can make the self-signed front trusted.
    const script = `
      import { identityFromEnv } from ${JSON.stringify(resolve('dist/src/cloud/identity.js'))};
      const id = identityFromEnv(process.env, 'https://localhost:${port}');
      const c = await id.credentials();
      console.log(JSON.stringify({ source: id.source, ak: c.accessKeyId, hasSecret: !!c.accessKeySecret, hasToken: !!c.securityToken }));`;
    // Asynchronous: the HTTPS front lives in this process and must keep answering.
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        PATH: process.env.PATH,
        NODE_EXTRA_CA_CERTS: join(dir, 'tls.crt'),
        ALIBABA_CLOUD_ROLE_ARN: world.demo.serviceRoleArn,
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN: world.demo.oidcProviderArn,
        ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile,
      },
      timeout: 15_000,
    });
    const r = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (r.stdout += d));
    child.stderr.on('data', (d) => (r.stderr += d));
    await new Promise((done) => child.on('close', done));
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({ source: `rrsa (${world.demo.serviceRoleArn})`, ak: expect.stringMatching(/^STS\./), hasSecret: true, hasToken: true });
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC', code: '' })).toBe(1);
  });
});
