// The registry token service: Basic cr_temp_user + a live temporary password of THE instance behind `service`,
// scopes granted by RAM now, JWTs a registry can verify with the published key.
import { createPublicKey, verify } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../../emulator/server.js';
import type { WorldSpec } from '../../emulator/model.js';
import { ACCT_A, INSTANCE_A1, INSTANCE_B1, KEYS, SERVICE_ROLE, USER_ROLE, assumeRole, crClient, fromSts, post, testWorld, type Creds } from './fixture.js';

const PUBLISHER = { accessKeyId: 'LTAI5tPublisherK00000001', accessKeySecret: 'publisher-secret-00000000000' };

function world(): WorldSpec {
  const w = testWorld();
  const a = w.accounts.find((x) => x.id === ACCT_A)!;
  a.roles!.find((r) => r.name === 'ServiceRole')!.permissions!.crPullRepository = [INSTANCE_A1];
  a.users!.push({
    name: 'publisher',
    accessKeys: [{ id: PUBLISHER.accessKeyId, secret: PUBLISHER.accessKeySecret }],
    permissions: { crGetAuthorizationToken: [INSTANCE_A1], crPullRepository: [INSTANCE_A1], crPushRepository: [INSTANCE_A1] },
  });
  const b = w.accounts.find((x) => x.id !== ACCT_A)!;
  b.roles!.find((r) => r.name === 'user-role')!.permissions!.crPullRepository = '*';
  return w;
}

const w = world();
const emu = await startEmulator({ world: w, tokenTtlSeconds: 600 });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

async function loginPassword(creds: Creds, region: string, instanceId: string): Promise<{ password: string; expires: number }> {
  const r = await post<{ AuthorizationToken: string; ExpireTime: number }>(crClient(emu, region, creds), 'GetAuthorizationToken', { InstanceId: instanceId });
  return { password: r.AuthorizationToken, expires: r.ExpireTime };
}

async function token(service: string, scopes: string[], basic?: { user: string; password: string } | string) {
  const q = new URLSearchParams({ service });
  for (const s of scopes) q.append('scope', s);
  const headers: Record<string, string> = {};
  if (typeof basic === 'string') headers.authorization = basic;
  else if (basic) headers.authorization = `Basic ${Buffer.from(`${basic.user}:${basic.password}`).toString('base64')}`;
  const res = await fetch(`${emu.url}${emu.registryAuth.path}?${q}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Verifies the JWT with the published key and returns its header and claims. */
function verified(jwt: string): { header: Record<string, any>; claims: Record<string, any> } {
  const [h, c, s] = jwt.split('.') as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const jwk = emu.registryAuth.jwks().keys.find((k) => k.kid === header.kid);
  expect(jwk, 'the kid names a published key').toBeDefined();
  expect(header.alg).toBe('RS256');
  expect(verify('sha256', Buffer.from(`${h}.${c}`), createPublicKey({ key: jwk as any, format: 'jwk' }), Buffer.from(s, 'base64url'))).toBe(true);
  return { header, claims: JSON.parse(Buffer.from(c, 'base64url').toString()) };
}

const serviceA = () => emu.registryAuth.service(INSTANCE_A1);
const serviceB = () => emu.registryAuth.service(INSTANCE_B1);

describe('registry token service', () => {
  it('grants pull to a live password of the instance, in a JWT for that service signed with the published key', async () => {
    const session = fromSts(await assumeRole(emu, KEYS.ci, SERVICE_ROLE));
    const { password, expires } = await loginPassword(session, 'cn-hangzhou', INSTANCE_A1);
    const r = await token(serviceA(), ['repository:app/web:pull,push'], { user: 'cr_temp_user', password });
    expect(r.status).toBe(200);
    expect(r.body.access_token).toBe(r.body.token);
    const { claims } = verified(r.body.token);
    expect(claims).toMatchObject({ iss: emu.registryAuth.issuer, aud: 'registry.aliyuncs.com:cn-hangzhou:' + INSTANCE_A1, sub: 'cr_temp_user' });
    // The role may pull, not push: push is dropped, not an error (the registry then refuses the push).
    expect(claims.access).toEqual([{ type: 'repository', name: 'app/web', actions: ['pull'] }]);
    expect(claims.exp * 1000).toBeLessThanOrEqual(expires + 1000);
    expect(claims.exp - claims.iat).toBe(r.body.expires_in);
    expect(emu.calls.list({ product: 'registry-auth' })).toMatchObject([{ action: 'Token', status: 200, principal: expect.stringContaining('role/servicerole/') }]);
  });

  it('grants push to an identity with cr:PushRepository', async () => {
    const { password } = await loginPassword(PUBLISHER, 'cn-hangzhou', INSTANCE_A1);
    const r = await token(serviceA(), ['repository:app/web:push,pull'], { user: 'cr_temp_user', password });
    expect(verified(r.body.token).claims.access).toEqual([{ type: 'repository', name: 'app/web', actions: ['push', 'pull'] }]);
  });

  it("refuses instance A's password on instance B's service", async () => {
    const { password } = await loginPassword(PUBLISHER, 'cn-hangzhou', INSTANCE_A1);
    const r = await token(serviceB(), ['repository:app/web:pull'], { user: 'cr_temp_user', password });
    expect(r).toEqual({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password', detail: null }] } });
  });

  it('refuses a password past its expiry on the service clock, an unknown one and another user name', async () => {
    const { password, expires } = await loginPassword(PUBLISHER, 'cn-hangzhou', INSTANCE_A1);
    expect((await token(serviceA(), ['repository:app/web:pull'], { user: 'admin', password })).status).toBe(401);
    expect((await token(serviceA(), ['repository:app/web:pull'], { user: 'cr_temp_user', password: 'x'.repeat(64) })).status).toBe(401);
    emu.clock.set(expires - 30_000);
    const late = await token(serviceA(), ['repository:app/web:pull'], { user: 'cr_temp_user', password });
    expect(late.status).toBe(200);
    // The bearer token never outlives the password it came from.
    expect(late.body.expires_in).toBeLessThanOrEqual(30);
    emu.clock.set(expires);
    expect((await token(serviceA(), ['repository:app/web:pull'], { user: 'cr_temp_user', password })).status).toBe(401);
  });

  it('asks RAM at every exchange: a role that loses cr:PullRepository gets no access with a still-live password', async () => {
    const service = fromSts(await assumeRole(emu, KEYS.ci, SERVICE_ROLE));
    const user = fromSts(await assumeRole(emu, service, USER_ROLE));
    const { password } = await loginPassword(user, 'cn-beijing', INSTANCE_B1);
    const ok = await token(serviceB(), ['repository:app/web:pull'], { user: 'cr_temp_user', password });
    expect(verified(ok.body.token).claims.access).toEqual([{ type: 'repository', name: 'app/web', actions: ['pull'] }]);
    const perms = w.accounts.find((a) => a.id !== ACCT_A)!.roles!.find((r) => r.name === 'user-role')!.permissions!;
    const saved = perms.crPullRepository;
    delete perms.crPullRepository;
    try {
      const denied = await token(serviceB(), ['repository:app/web:pull'], { user: 'cr_temp_user', password });
      expect(denied.status).toBe(200);
      expect(verified(denied.body.token).claims.access).toEqual([]);
    } finally {
      perms.crPullRepository = saved!;
    }
  });

  it('gives an anonymous client a token that grants nothing (every repository is private)', async () => {
    const r = await token(serviceA(), ['repository:app/web:pull']);
    expect(r.status).toBe(200);
    expect(verified(r.body.token).claims).toMatchObject({ sub: '', access: [] });
  });

  it('rejects unknown services, malformed scopes and Authorization headers, and methods other than GET', async () => {
    expect((await token('registry.aliyuncs.com:cn-beijing:' + INSTANCE_A1, [])).status).toBe(400); // wrong region
    expect((await token('registry.example.com', [])).status).toBe(400);
    expect((await token(serviceA(), ['repository:app/web'])).status).toBe(400);
    expect((await token(serviceA(), ['repository:app/web:pull'], 'Basic !!')).status).toBe(400);
    expect((await token(serviceA(), ['repository:app/web:pull'], `Basic ${Buffer.from('no-colon').toString('base64')}`)).status).toBe(400);
    expect((await fetch(`${emu.url}/auth?service=${serviceA()}`, { method: 'POST' })).status).toBe(405);
  });

  it('reads a repository name with a registry port and several scopes in one parameter', async () => {
    const { password } = await loginPassword(PUBLISHER, 'cn-hangzhou', INSTANCE_A1);
    const r = await token(serviceA(), ['repository:host:5000/app/web:pull repository:app/api:pull', 'registry:catalog:*'], { user: 'cr_temp_user', password });
    expect(verified(r.body.token).claims.access).toEqual([
      { type: 'repository', name: 'host:5000/app/web', actions: ['pull'] },
      { type: 'repository', name: 'app/api', actions: ['pull'] },
    ]);
  });
});
