// Gateway checks, driven both by the real pop-core client and by hand-built requests (for the cases
// a correct client never produces: replayed nonces, tampered parameters, stale timestamps).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { NonceCache } from '../../emulator/nonce-cache.js';
import { startEmulator } from '../../emulator/server.js';
import { formatRpcTimestamp, percentEncode, rpcStringToSign, signRpcParams } from '../../emulator/signature.js';
import { KEYS, SERVICE_ROLE, assumeRole, fromSts, post, rpcError, stsClient, testWorld } from './fixture.js';

const emu = await startEmulator({ world: testWorld() });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

type Params = Record<string, string>;

function unsignedParams(extra: Params = {}, key = KEYS.ci.accessKeyId): Params {
  return {
    Action: 'GetCallerIdentity',
    Version: '2015-04-01',
    Format: 'JSON',
    AccessKeyId: key,
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: randomUUID(),
    Timestamp: formatRpcTimestamp(Date.now()),
    ...extra,
  };
}

const signed = (extra: Params = {}): Params => signRpcParams('POST', unsignedParams(extra), KEYS.ci.accessKeySecret);
const form = (p: Params): string => Object.entries(p).map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&');

async function rawPost(params: Params | string, query = ''): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${emu.stsEndpoint}/${query ? `?${query}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: typeof params === 'string' ? params : form(params),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

describe('signature verification', () => {
  it('accepts a correctly signed hand-made request', async () => {
    const { status, json } = await rawPost(signed());
    expect(status).toBe(200);
    expect(json.Arn).toBe('acs:ram::1111111111111111:user/ci');
  });

  it('rejects a tampered parameter and shows its string to sign', async () => {
    const p = signed({ Extra: 'original' });
    const tampered = { ...p, Extra: 'changed' };
    const { status, json } = await rawPost(tampered);
    expect(status).toBe(400);
    expect(json.Code).toBe('SignatureDoesNotMatch');
    expect(json.Message).toBe(
      `Specified signature is not matched with our calculation. server string to sign is:${rpcStringToSign('POST', tampered)}`,
    );
    expect(Object.keys(json).sort()).toEqual(['Code', 'HostId', 'Message', 'Recommend', 'RequestId']);
    expect(json.HostId).toBe('sts.aliyuncs.com');
  });

  it('rejects a wrong secret sent by pop-core', async () => {
    const wrong = stsClient(emu, { accessKeyId: KEYS.ci.accessKeyId, accessKeySecret: 'not-the-secret' });
    const err = await rpcError(post(wrong, 'GetCallerIdentity'), 'SignatureDoesNotMatch', 400);
    expect(String(err.data.Message)).toContain('server string to sign is:POST&%2F&AccessKeyId%3D');
  });

  it('merges parameters split between query string and form body', async () => {
    const p = signed();
    const { Signature, AccessKeyId, ...rest } = p;
    const { status } = await rawPost(rest, form({ Signature: Signature!, AccessKeyId: AccessKeyId! }));
    expect(status).toBe(200);
  });

  it('decodes once: %2B is a plus, a bare + is a space (so an unescaped signature fails)', async () => {
    let p = signed();
    for (let i = 0; i < 50 && !p.Signature!.includes('+'); i++) p = signed();
    expect(p.Signature).toContain('+');
    const bare = form({ ...p, Signature: 'X' }).replace('Signature=X', `Signature=${p.Signature!.replace(/=/g, '%3D')}`);
    expect((await rawPost(bare)).json.Code).toBe('SignatureDoesNotMatch');
    expect((await rawPost(p)).status).toBe(200);
  });

  it('checks SignatureMethod, SignatureVersion and required parameters', async () => {
    const sign = (p: Params) => signRpcParams('POST', p, KEYS.ci.accessKeySecret);
    expect((await rawPost(sign(unsignedParams({ SignatureMethod: 'HMAC-SHA256' })))).json.Code).toBe('InvalidSignatureMethod');
    expect((await rawPost(sign(unsignedParams({ SignatureVersion: '2.0' })))).json.Code).toBe('InvalidSignatureVersion');
    const { SignatureNonce: _n, ...noNonce } = unsignedParams();
    expect((await rawPost(sign(noNonce))).json).toMatchObject({ Code: 'MissingSignatureNonce', Message: 'SignatureNonce is mandatory for this action.' });
    const { Signature: _s, ...unsigned } = signed();
    expect((await rawPost(unsigned)).json.Code).toBe('MissingSignature');
  });

  it('rejects unknown actions, versions and paths', async () => {
    expect(await rawPost(signed({ Action: 'DeleteEverything' }))).toMatchObject({ status: 404, json: { Code: 'InvalidAction.NotFound' } });
    expect(await rawPost(signed({ Version: '2019-01-01' }))).toMatchObject({ status: 400, json: { Code: 'InvalidVersion' } });
    const res = await fetch(`${emu.url}/nowhere`);
    expect(res.status).toBe(404);
  });
});

describe('timestamps and nonces', () => {
  it('rejects a Timestamp more than 15 minutes off and a malformed one', async () => {
    const stale = signed({ Timestamp: formatRpcTimestamp(Date.now() - 16 * 60_000) });
    expect(await rawPost(stale)).toMatchObject({ status: 400, json: { Code: 'InvalidTimeStamp.Expired' } });
    const future = signed({ Timestamp: formatRpcTimestamp(Date.now() + 16 * 60_000) });
    expect((await rawPost(future)).json.Code).toBe('InvalidTimeStamp.Expired');
    expect((await rawPost(signed({ Timestamp: formatRpcTimestamp(Date.now() - 14 * 60_000) }))).status).toBe(200);
    expect((await rawPost(signed({ Timestamp: '2024-01-01 00:00:00' }))).json.Code).toBe('InvalidTimeStamp.Format');
  });

  it('rejects pop-core requests when the gateway clock is skewed', async () => {
    const client = stsClient(emu, KEYS.ci);
    emu.clock.skewGateway(16 * 60_000);
    await rpcError(post(client, 'GetCallerIdentity'), 'InvalidTimeStamp.Expired', 400);
    emu.clock.skewGateway(-2 * 60_000);
    await expect(post(client, 'GetCallerIdentity')).resolves.toHaveProperty('Arn');
  });

  it('rejects a reused SignatureNonce, but only for correctly signed requests', async () => {
    const nonce = randomUUID();
    const bad = { ...signed({ SignatureNonce: nonce }), Signature: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' };
    expect((await rawPost(bad)).json.Code).toBe('SignatureDoesNotMatch');
    const good = signed({ SignatureNonce: nonce });
    expect((await rawPost(good)).status).toBe(200);
    expect(await rawPost(good)).toMatchObject({ status: 400, json: { Code: 'SignatureNonceUsed' } });
    // Same nonce, different key: not a replay.
    const other = signRpcParams('POST', unsignedParams({ SignatureNonce: nonce }, KEYS.noPerm.accessKeyId), KEYS.noPerm.accessKeySecret);
    expect((await rawPost(other)).status).toBe(200);
  });

  it('forgets nonces after the window and bounds memory', () => {
    const cache = new NonceCache(1000, 3);
    expect(cache.checkAndRecord('ak', 'n1', 0)).toBe(false);
    expect(cache.checkAndRecord('ak', 'n1', 999)).toBe(true);
    expect(cache.checkAndRecord('ak', 'n1', 1000)).toBe(false);
    for (const n of ['a', 'b', 'c', 'd', 'e']) cache.checkAndRecord('ak', n, 1500);
    expect(cache.size).toBeLessThanOrEqual(3);
  });
});

describe('access keys and security tokens', () => {
  it('rejects unknown and disabled keys', async () => {
    await rpcError(post(stsClient(emu, { accessKeyId: 'LTAI5tUnknown0000000000', accessKeySecret: 'x' }), 'GetCallerIdentity'), 'InvalidAccessKeyId.NotFound', 404);
    await rpcError(post(stsClient(emu, KEYS.inactive), 'GetCallerIdentity'), 'InvalidAccessKeyId.Inactive', 400);
  });

  it('requires, parses and matches the SecurityToken of STS keys', async () => {
    const c = await assumeRole(emu, KEYS.ci, SERVICE_ROLE);
    const other = await assumeRole(emu, KEYS.ci, SERVICE_ROLE);
    const call = (securityToken?: string, accessKeyId = c.AccessKeyId) =>
      post(stsClient(emu, { accessKeyId, accessKeySecret: c.AccessKeySecret, ...(securityToken ? { securityToken } : {}) }), 'GetCallerIdentity');
    await rpcError(call(), 'MissingSecurityToken', 400);
    await rpcError(call(other.SecurityToken), 'InvalidSecurityToken.MismatchWithAccessKey', 400);
    await rpcError(call('garbage'), 'InvalidSecurityToken.Malformed', 400);
    const flipped = c.SecurityToken.slice(0, 20) + (c.SecurityToken[20] === 'A' ? 'B' : 'A') + c.SecurityToken.slice(21);
    await rpcError(call(flipped), 'InvalidSecurityToken.Malformed', 400);
    // A permanent key with someone's token is a mismatch too.
    await rpcError(post(stsClient(emu, { ...KEYS.ci, securityToken: c.SecurityToken }), 'GetCallerIdentity'), 'InvalidSecurityToken.MismatchWithAccessKey', 400);
    await expect(post(stsClient(emu, fromSts(c)), 'GetCallerIdentity')).resolves.toHaveProperty('IdentityType', 'AssumedRoleUser');
  });

  it('expires STS keys by the service clock without upsetting the timestamp check', async () => {
    const c = await assumeRole(emu, KEYS.ci, SERVICE_ROLE, { DurationSeconds: 3600 });
    const client = stsClient(emu, fromSts(c));
    emu.clock.advance(3599_000);
    await expect(post(client, 'GetCallerIdentity')).resolves.toHaveProperty('Arn');
    emu.clock.advance(1_000);
    await rpcError(post(client, 'GetCallerIdentity'), 'InvalidSecurityToken.Expired', 400);
    emu.clock.reset();
    await expect(post(client, 'GetCallerIdentity')).resolves.toHaveProperty('Arn');
  });
});
