import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../../emulator/server.js';
import { INSTANCE_A1, KEYS, SERVICE_ROLE, assumeRole, crClient, fromSts, post, rpcError, stsClient, testWorld } from './fixture.js';

const emu = await startEmulator({ world: testWorld() });
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const sts = stsClient(emu, KEYS.ci);
const whoami = (timeout = 5000) => post(sts, 'GetCallerIdentity', {}, timeout);

describe('fault injection', () => {
  it('adds latency globally or per action', async () => {
    emu.injectLatency(150, { action: 'GetCallerIdentity', times: 1 });
    let t = Date.now();
    await whoami();
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    t = Date.now();
    await whoami();
    expect(Date.now() - t).toBeLessThan(140);

    const h = emu.injectLatency(150);
    t = Date.now();
    await assumeRole(emu, KEYS.ci, SERVICE_ROLE);
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    expect(h.hits).toBe(1);
    h.remove();
  });

  it('throttles the next N calls with Throttling.User (HTTP 400)', async () => {
    const h = emu.injectThrottle({ action: 'AssumeRole', times: 2 });
    await whoami(); // other actions unaffected
    for (let i = 0; i < 2; i++) {
      const err = await rpcError(assumeRole(emu, KEYS.ci, SERVICE_ROLE), 'Throttling.User', 400);
      expect(err.data.Message).toBe('Request was denied due to user flow control.');
    }
    expect(h.remaining).toBe(0);
    await expect(assumeRole(emu, KEYS.ci, SERVICE_ROLE)).resolves.toHaveProperty('AccessKeyId');
    expect(emu.calls.count({ action: 'AssumeRole', code: 'Throttling.User' })).toBe(2);
    expect(emu.calls.count({ action: 'AssumeRole', code: '' })).toBe(1);
  });

  it('fails with 500 InternalError or 503 ServiceUnavailable', async () => {
    emu.injectServerError(500, { times: 1 });
    await rpcError(whoami(), 'InternalError', 500);
    emu.injectServerError(503, { product: 'sts', times: 1 });
    await rpcError(whoami(), 'ServiceUnavailable', 503);
    await expect(whoami()).resolves.toHaveProperty('Arn');
  });

  it('targets one product or one access key', async () => {
    const service = fromSts(await assumeRole(emu, KEYS.ci, SERVICE_ROLE));
    emu.injectServerError(503, { product: 'cr' });
    await expect(whoami()).resolves.toHaveProperty('Arn');
    await rpcError(post(crClient(emu, 'cn-hangzhou', service), 'GetAuthorizationToken', { InstanceId: INSTANCE_A1 }), 'ServiceUnavailable', 503);
    emu.reset();
    emu.injectThrottle({ accessKeyId: service.accessKeyId });
    await expect(whoami()).resolves.toHaveProperty('Arn');
    await rpcError(post(stsClient(emu, service), 'GetCallerIdentity'), 'Throttling.User', 400);
  });

  it('can answer with a non-JSON body, which pop-core throws as a plain object', async () => {
    emu.inject({ kind: 'raw', status: 502, body: '<html>502 Bad Gateway</html>' }, { times: 1 });
    const err: unknown = await whoami().catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(Error);
    expect(err).toBeTypeOf('object');
    expect(emu.calls.list().at(-1)).toMatchObject({ status: 502, fault: 'raw' });
  });

  it('hangs until the client times out', async () => {
    emu.injectHang({ times: 1 });
    const t = Date.now();
    const err = (await whoami(300).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toMatch(/Timeout/i);
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
    await expect(whoami()).resolves.toHaveProperty('Arn');
  });
});

describe('counters and reset', () => {
  it('counts by action and by caller and forgets on reset', async () => {
    const c = await assumeRole(emu, KEYS.ci, SERVICE_ROLE);
    await post(stsClient(emu, fromSts(c)), 'GetCallerIdentity');
    await whoami();
    expect(emu.calls.total).toBe(3);
    expect(emu.calls.byAction()).toEqual({ AssumeRole: 1, GetCallerIdentity: 2 });
    expect(emu.calls.byCaller()).toEqual({ [KEYS.ci.accessKeyId]: 2, [c.AccessKeyId]: 1 });
    expect(emu.calls.count({ action: 'GetCallerIdentity', caller: c.AccessKeyId })).toBe(1);
    const log = emu.calls.list();
    expect(log.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(JSON.stringify(log)).not.toContain(KEYS.ci.accessKeySecret);
    expect(JSON.stringify(log)).not.toContain(c.SecurityToken);
    emu.injectThrottle();
    emu.reset();
    expect(emu.calls.total).toBe(0);
    expect(emu.faults.size).toBe(0);
    await expect(whoami()).resolves.toHaveProperty('Arn');
  });
});

describe('close', () => {
  it('does not hang with hung and delayed requests in flight', async () => {
    const other = await startEmulator({ world: testWorld() });
    other.injectHang({ action: 'GetCallerIdentity' });
    other.injectLatency(60_000, { action: 'AssumeRole' });
    const client = stsClient(other, KEYS.ci);
    const hung = post(client, 'GetCallerIdentity', {}, 15_000).catch((e: unknown) => e);
    const slow = post(client, 'AssumeRole', { RoleArn: SERVICE_ROLE, RoleSessionName: 'slow' }, 15_000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    expect(other.calls.total).toBe(2);
    const t = Date.now();
    await other.close();
    expect(Date.now() - t).toBeLessThan(2000);
    expect(await hung).toBeInstanceOf(Error);
    expect(await slow).toBeInstanceOf(Error);
    await other.close(); // idempotent
  });
});
