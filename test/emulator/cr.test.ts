import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../../emulator/server.js';
import {
  ACCT_A,
  INSTANCE_A1,
  INSTANCE_A2,
  INSTANCE_B1,
  KEYS,
  SERVICE_ROLE,
  USER_ROLE,
  assumeRole,
  crClient,
  fromSts,
  personalClient,
  post,
  rpcError,
  testWorld,
  type Creds,
} from './fixture.js';

const emu = await startEmulator({ world: testWorld(), tokenTtlSeconds: 3600 });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

let service: Creds;
beforeEach(async () => {
  service = fromSts(await assumeRole(emu, KEYS.ci, SERVICE_ROLE, { DurationSeconds: 7200 }));
});

const hz = () => crClient(emu, 'cn-hangzhou', service);

interface RoaError {
  code: string;
  statusCode: number;
  result: Record<string, unknown>;
}
async function roaError(promise: Promise<unknown>, code: string, status: number): Promise<RoaError> {
  const err = (await promise.then(() => {
    throw new Error(`expected ${code}`);
  }, (e: unknown) => e)) as RoaError;
  expect({ code: err.code, status: err.statusCode }).toEqual({ code, status });
  return err;
}

describe('CR Enterprise 2018-12-01', () => {
  it('issues a one-hour token for a permitted instance', async () => {
    const before = Date.now();
    const res = await post<Record<string, any>>(hz(), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 });
    expect(res).toMatchObject({ Code: 'success', IsSuccess: true, TempUsername: 'cr_temp_user' });
    expect(res.AuthorizationToken).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(res.ExpireTime).toBeGreaterThanOrEqual(before + 3600_000);
    expect(res.ExpireTime).toBeLessThanOrEqual(Date.now() + 3600_000);
  });

  it('caps the token at the remaining STS session and honours a shorter TTL', async () => {
    emu.clock.advance(7200_000 - 600_000); // 10 minutes of the 2 h session left
    const capped = await post<Record<string, any>>(hz(), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 });
    expect(capped.ExpireTime - emu.clock.now()).toBeLessThanOrEqual(600_000);
    expect(capped.ExpireTime - emu.clock.now()).toBeGreaterThan(595_000);
    emu.clock.reset();
    emu.state.settings.tokenTtlSeconds = 120;
    try {
      const short = await post<Record<string, any>>(hz(), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 });
      expect(short.ExpireTime - Date.now()).toBeLessThanOrEqual(120_000);
    } finally {
      emu.state.settings.tokenTtlSeconds = 3600;
    }
    // tokenOutlivesSession: a service that does not cap (for testing the webhook's own cap).
    emu.clock.advance(7200_000 - 600_000);
    emu.state.settings.tokenOutlivesSession = true;
    try {
      const uncapped = await post<Record<string, any>>(hz(), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 });
      expect(uncapped.ExpireTime - emu.clock.now()).toBeGreaterThan(3590_000);
    } finally {
      emu.state.settings.tokenOutlivesSession = false;
      emu.clock.reset();
    }
  });

  it('denies instances the identity has no cr:GetAuthorizationToken on', async () => {
    const err = await rpcError(post(hz(), 'GetAuthorizationToken', { InstanceId: INSTANCE_A2 }), 'NoPermission', 403);
    expect(err.data.AccessDeniedDetail).toMatchObject({ AuthAction: 'cr:GetAuthorizationToken', AuthPrincipalType: 'AssumedRoleUser' });
    await rpcError(post(crClient(emu, 'cn-hangzhou', KEYS.ci), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 }), 'NoPermission', 403);
  });

  it('answers INSTANCE_NOT_EXIST (HTTP 200, IsSuccess false) for unknown, other-region and other-account instances', async () => {
    const user = fromSts(await assumeRole(emu, service, USER_ROLE)); // '*' grant in account B
    const bj = crClient(emu, 'cn-beijing', user);
    const unknown = await rpcError(post(bj, 'GetAuthorizationToken', { InstanceId: 'cri-doesnotexist0001' }), 'INSTANCE_NOT_EXIST', 200);
    expect(unknown.data.IsSuccess).toBe(false);
    // B's instance asked at the Hangzhou endpoint.
    await rpcError(post(crClient(emu, 'cn-hangzhou', user), 'GetAuthorizationToken', { InstanceId: INSTANCE_B1 }), 'INSTANCE_NOT_EXIST', 200);
    // A's instance asked with B's credentials.
    await rpcError(post(crClient(emu, 'cn-hangzhou', user), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 }), 'INSTANCE_NOT_EXIST', 200);
    await expect(post(bj, 'GetAuthorizationToken', { InstanceId: INSTANCE_B1 })).resolves.toHaveProperty('IsSuccess', true);
    await rpcError(post(bj, 'GetAuthorizationToken', {}), 'MissingInstanceId', 400);
  });

  it('lists internet endpoints with system and custom domains', async () => {
    const res = await post<Record<string, any>>(hz(), 'ListInstanceEndpoint', { InstanceId: INSTANCE_A1, ModuleName: 'Registry' });
    expect(res.Endpoints).toHaveLength(1);
    expect(res.Endpoints[0]).toMatchObject({ EndpointType: 'internet', Enable: true });
    expect(res.Endpoints[0].Domains).toEqual([
      { Domain: 'alpha-registry.cn-hangzhou.cr.aliyuncs.com', Type: 'SYSTEM' },
      { Domain: 'registry.example.com', Type: 'USER' },
      { Domain: 'mirror.example.org', Type: 'USER' },
    ]);
    const chart = await post<Record<string, any>>(hz(), 'ListInstanceEndpoint', { InstanceId: INSTANCE_A1, ModuleName: 'Chart' });
    expect(chart.Endpoints[0].Domains).toEqual([{ Domain: 'alpha-chart.cn-hangzhou.cr.aliyuncs.com', Type: 'SYSTEM' }]);
  });

  it('returns VPC domains and instance details', async () => {
    const vpc = await post<Record<string, any>>(hz(), 'GetInstanceVpcEndpoint', { InstanceId: INSTANCE_A1, ModuleName: 'Registry' });
    expect(vpc).toMatchObject({ Enable: true, Domains: ['alpha-registry-vpc.cn-hangzhou.cr.aliyuncs.com'] });
    expect(vpc.LinkedVpcs[0]).toMatchObject({ VpcId: 'vpc-1', VswitchId: 'vsw-1', Ip: '10.0.0.5' });
    const inst = await post<Record<string, any>>(hz(), 'GetInstance', { InstanceId: INSTANCE_A1 });
    expect(inst).toMatchObject({ InstanceId: INSTANCE_A1, InstanceName: 'alpha', InstanceStatus: 'RUNNING', RegionId: 'cn-hangzhou' });
  });

  it('maps an instance name to its ID with ListInstance (needs an instance/* grant)', async () => {
    const res = await post<Record<string, any>>(hz(), 'ListInstance', { InstanceName: 'alpha-two' });
    expect(res).toMatchObject({ TotalCount: 1, Instances: [{ InstanceId: INSTANCE_A2, InstanceName: 'alpha-two' }] });
    expect((await post<Record<string, any>>(hz(), 'ListInstance')).TotalCount).toBe(2);
    const scoped = fromSts(await assumeRole(emu, KEYS.ci, `acs:ram::${ACCT_A}:role/scoped-reader`));
    const client = crClient(emu, 'cn-hangzhou', scoped);
    await rpcError(post(client, 'ListInstance', { InstanceName: 'alpha' }), 'NoPermission', 403);
    await expect(post(client, 'GetInstance', { InstanceId: INSTANCE_A1 })).resolves.toHaveProperty('InstanceName', 'alpha');
  });

  it('verifies signatures on the CR endpoint too', async () => {
    await rpcError(post(crClient(emu, 'cn-hangzhou', { ...service, accessKeySecret: 'wrong' }), 'GetInstance', { InstanceId: INSTANCE_A1 }), 'SignatureDoesNotMatch', 400);
    const err = await rpcError(post(crClient(emu, 'cn-hangzhou', service), 'Nope'), 'InvalidAction.NotFound', 404);
    expect(err.data.HostId).toBe('cr.cn-hangzhou.aliyuncs.com');
  });
});

describe('CR Personal Edition 2016-06-07 (ROA)', () => {
  it('issues a token with STS credentials (x-acs-security-token signed)', async () => {
    const res = await personalClient(emu, 'cn-hangzhou', service).get<{ data: Record<string, any> }>('/tokens', {}, {}, { timeout: 5000 });
    expect(res.data).toMatchObject({ tempUserName: 'cr_temp_user' });
    expect(res.data.authorizationToken).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(res.data.expireDate - Date.now()).toBeLessThanOrEqual(3600_000);
    expect(emu.calls.count({ product: 'cr-personal', action: 'GetAuthorizationToken' })).toBe(1);
  });

  it('checks the ROA signature, token and expiry', async () => {
    await roaError(personalClient(emu, 'cn-hangzhou', { ...service, accessKeySecret: 'wrong' }).get('/tokens'), 'SignatureDoesNotMatch', 400);
    await roaError(personalClient(emu, 'cn-hangzhou', { ...service, securityToken: 'garbage' }).get('/tokens'), 'InvalidSecurityToken.Malformed', 400);
    const { securityToken: _t, ...noToken } = service;
    await roaError(personalClient(emu, 'cn-hangzhou', noToken).get('/tokens'), 'MissingSecurityToken', 400);
    emu.clock.advance(7201_000);
    await roaError(personalClient(emu, 'cn-hangzhou', service).get('/tokens'), 'InvalidSecurityToken.Expired', 400);
  });

  it('checks Date skew', async () => {
    emu.clock.skewGateway(-20 * 60_000);
    await roaError(personalClient(emu, 'cn-hangzhou', service).get('/tokens'), 'InvalidTimeStamp.Expired', 400);
  });

  it('denies regions outside the grant and accounts without a registry there', async () => {
    await roaError(personalClient(emu, 'cn-shanghai', service).get('/tokens'), 'NoPermission', 403);
    await roaError(personalClient(emu, 'cn-hangzhou', KEYS.ci).get('/tokens'), 'NoPermission', 403);
    const user = fromSts(await assumeRole(emu, service, USER_ROLE)); // '*' grant, but B has no personal registry
    await roaError(personalClient(emu, 'cn-hangzhou', user).get('/tokens'), 'USER_NOT_EXIST', 404);
  });

  it('has no other ROA routes', async () => {
    await roaError(personalClient(emu, 'cn-hangzhou', service).get('/repos'), 'InvalidAction.NotFound', 404);
  });
});
