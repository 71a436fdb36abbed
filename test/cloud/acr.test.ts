// Container Registry API wrappers against a stub caller: exact requests, exact results, malformed answers.
import { describe, expect, it } from 'vitest';
import { getAuthorizationToken, instanceByName, instanceDomains, instanceIdByName, listInstances, personalToken } from '../../src/cloud/acr.js';
import { CloudError } from '../../src/cloud/errors.js';
import type { CloudCaller } from '../../src/cloud/rpc.js';

const CREDS = { accessKeyId: 'LTAI5tAcrTestKey00000001', accessKeySecret: 'acr-test-secret' };
const EP = 'https://cr.cn-hangzhou.example.test';
const BUDGET = { deadline: 4_000_000_000_000 };

/** A caller whose rpc/roa answers come from `answer(action, params)`; every call is recorded. */
function stub(answer: (action: string, params: Record<string, string | number>) => unknown) {
  const calls: { action: string; params: Record<string, string | number>; args: unknown[] }[] = [];
  const caller = {
    rpc: async (endpoint: string, version: string, creds: unknown, action: string, params: Record<string, string | number>, budget: unknown) => {
      calls.push({ action, params, args: [endpoint, version, creds, budget] });
      return answer(action, params);
    },
    roa: async (endpoint: string, version: string, creds: unknown, api: string, method: string, path: string, budget: unknown) => {
      calls.push({ action: api, params: {}, args: [endpoint, version, creds, method, path, budget] });
      return answer(api, {});
    },
  } as unknown as CloudCaller;
  return { caller, calls };
}

const rejection = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => e);

describe('getAuthorizationToken (Enterprise Edition)', () => {
  it('returns the temporary user, token and expiry of the instance', async () => {
    const { caller, calls } = stub(() => ({ TempUsername: 'cr_temp_user', AuthorizationToken: 'tok', ExpireTime: '1700000000000', RequestId: 'R' }));
    expect(await getAuthorizationToken(caller, EP, CREDS, 'cri-1', BUDGET)).toEqual({ username: 'cr_temp_user', password: 'tok', expiresAt: 1_700_000_000_000 });
    expect(calls).toEqual([{ action: 'GetAuthorizationToken', params: { InstanceId: 'cri-1' }, args: [EP, '2018-12-01', CREDS, BUDGET] }]);
  });

  it('an answer without user, token or a numeric expiry is a retryable BadResponse carrying the request ID', async () => {
    const good = { TempUsername: 'u', AuthorizationToken: 't', ExpireTime: 1_700_000_000_000, RequestId: 'R9' };
    for (const bad of [{ ...good, TempUsername: undefined }, { ...good, AuthorizationToken: '' }, { ...good, ExpireTime: 'soon' }, { RequestId: 'R9' }]) {
      const err = await rejection(getAuthorizationToken(stub(() => bad).caller, EP, CREDS, 'cri-1', BUDGET));
      expect(err).toBeInstanceOf(CloudError);
      expect(err).toMatchObject({ api: 'GetAuthorizationToken', code: 'BadResponse', retryable: true, requestId: 'R9' });
    }
  });
});

describe('instanceDomains', () => {
  it('joins internet and VPC domains, lower-cased, sorted, without duplicates or empty entries', async () => {
    const { caller, calls } = stub((action) =>
      action === 'ListInstanceEndpoint'
        ? { Endpoints: [{ Domains: [{ Domain: 'B.example.com' }, {}, { Domain: '' }] }, {}, { Domains: [{ Domain: 'a.example.com' }] }] }
        : { Domains: ['vpc.example.com', 'a.example.com'] },
    );
    expect(await instanceDomains(caller, EP, CREDS, 'cri-1', BUDGET)).toEqual(['a.example.com', 'b.example.com', 'vpc.example.com']);
    expect(calls.map((c) => [c.action, c.params])).toEqual([
      ['ListInstanceEndpoint', { InstanceId: 'cri-1', ModuleName: 'Registry' }],
      ['GetInstanceVpcEndpoint', { InstanceId: 'cri-1', ModuleName: 'Registry' }],
    ]);
  });

  it('answers without endpoint lists give no domains', async () => {
    expect(await instanceDomains(stub(() => ({})).caller, EP, CREDS, 'cri-1', BUDGET)).toEqual([]);
  });
});

describe('instanceByName / instanceIdByName', () => {
  it('asks ListInstance filtered by the name and takes the instance of exactly that name that has an ID', async () => {
    const { caller, calls } = stub(() => ({
      Instances: [{ InstanceName: 'other', InstanceId: 'cri-other' }, { InstanceName: 'mine' }, { InstanceName: 'mine', InstanceId: 'cri-mine', InstanceStatus: 'RUNNING' }],
    }));
    expect(await instanceByName(caller, EP, CREDS, 'mine', BUDGET)).toEqual({ instanceId: 'cri-mine', instanceName: 'mine', status: 'RUNNING' });
    expect(calls).toEqual([{ action: 'ListInstance', params: { InstanceName: 'mine', PageNo: 1, PageSize: 30 }, args: [EP, '2018-12-01', CREDS, BUDGET] }]);
    expect(await instanceIdByName(caller, EP, CREDS, 'mine', BUDGET)).toBe('cri-mine');
  });

  it('an instance without a state has status ""', async () => {
    const { caller } = stub(() => ({ Instances: [{ InstanceName: 'mine', InstanceId: 'cri-mine' }] }));
    expect(await instanceByName(caller, EP, CREDS, 'mine', BUDGET)).toEqual({ instanceId: 'cri-mine', instanceName: 'mine', status: '' });
  });

  it('no such instance: undefined, with or without an Instances list', async () => {
    expect(await instanceIdByName(stub(() => ({ Instances: [{ InstanceName: 'other', InstanceId: 'cri-other' }] })).caller, EP, CREDS, 'mine', BUDGET)).toBeUndefined();
    expect(await instanceIdByName(stub(() => ({})).caller, EP, CREDS, 'mine', BUDGET)).toBeUndefined();
    expect(await instanceByName(stub(() => ({})).caller, EP, CREDS, 'mine', BUDGET)).toBeUndefined();
  });
});

describe('personalToken (Personal Edition)', () => {
  it('GET /tokens (2016-06-07) gives the account’s temporary user and token', async () => {
    const { caller, calls } = stub(() => ({ data: { tempUserName: 'cr_temp_user', authorizationToken: 'ptok', expireDate: 1_700_000_000_000 } }));
    expect(await personalToken(caller, EP, CREDS, BUDGET)).toEqual({ username: 'cr_temp_user', password: 'ptok', expiresAt: 1_700_000_000_000 });
    expect(calls).toEqual([{ action: 'GetAuthorizationToken(Personal)', params: {}, args: [EP, '2016-06-07', CREDS, 'GET', '/tokens', BUDGET] }]);
  });

  it('an answer without data, user, token or a numeric expiry is a retryable BadResponse', async () => {
    const good = { tempUserName: 'u', authorizationToken: 't', expireDate: '1700000000000' };
    for (const bad of [{}, { data: { ...good, tempUserName: '' } }, { data: { ...good, authorizationToken: undefined } }, { data: { ...good, expireDate: 'never' } }]) {
      const err = await rejection(personalToken(stub(() => bad).caller, EP, CREDS, BUDGET));
      expect(err).toBeInstanceOf(CloudError);
      expect(err).toMatchObject({ api: 'GetAuthorizationToken(Personal)', code: 'BadResponse', retryable: true, requestId: undefined });
    }
  });
});

const item = (n: number) => ({ InstanceId: `cri-${n}`, InstanceName: `i${n}`, InstanceStatus: 'RUNNING' });
const page = (from: number, count: number) => Array.from({ length: count }, (_, k) => item(from + k));

describe('listInstances', () => {
  it('walks pages of 30 until TotalCount is reached, keeping entries with an ID', async () => {
    const { caller, calls } = stub((_, p) => ({ TotalCount: 31, Instances: p.PageNo === 1 ? page(0, 30) : [{ InstanceName: 'no-id' }, { InstanceId: 'cri-bare' }] }));
    const out = await listInstances(caller, EP, CREDS, BUDGET);
    expect(out).toHaveLength(31);
    expect(out[0]).toEqual({ instanceId: 'cri-0', instanceName: 'i0', status: 'RUNNING' });
    expect(out[30]).toEqual({ instanceId: 'cri-bare', instanceName: '', status: '' });
    expect(calls.map((c) => c.params)).toEqual([{ PageNo: 1, PageSize: 30 }, { PageNo: 2, PageSize: 30 }]);
    expect(calls[0]!.args).toEqual([EP, '2018-12-01', CREDS, BUDGET]);
  });

  it('stops when a page reaches TotalCount exactly', async () => {
    const { caller, calls } = stub(() => ({ TotalCount: '30', Instances: page(0, 30) }));
    expect(await listInstances(caller, EP, CREDS, BUDGET)).toHaveLength(30);
    expect(calls).toHaveLength(1);
  });

  it('stops at an empty page, whatever TotalCount says', async () => {
    const { caller, calls } = stub((_, p) => (p.PageNo === 1 ? { TotalCount: 90, Instances: page(0, 30) } : { TotalCount: 90 }));
    expect(await listInstances(caller, EP, CREDS, BUDGET)).toHaveLength(30);
    expect(calls).toHaveLength(2);
  });

  it('without TotalCount: goes on after a full page, stops after a short one', async () => {
    const { caller, calls } = stub((_, p) => ({ Instances: p.PageNo === 1 ? page(0, 30) : p.PageNo === 2 ? page(30, 5) : page(100, 30) }));
    const out = await listInstances(caller, EP, CREDS, BUDGET);
    expect(out.map((i) => i.instanceId)).toEqual(page(0, 35).map((i) => i.InstanceId));
    expect(calls).toHaveLength(2);
  });

  it('asks at most 100 pages when every page is full and no total is given', async () => {
    const { caller, calls } = stub((_, p) => ({ Instances: [{ InstanceId: `cri-p${p.PageNo}`, InstanceName: `p${p.PageNo}` }, ...Array.from({ length: 29 }, () => ({}))] }));
    const out = await listInstances(caller, EP, CREDS, BUDGET);
    expect(calls).toHaveLength(100);
    expect(calls.at(-1)!.params).toEqual({ PageNo: 100, PageSize: 30 });
    expect(out).toHaveLength(100);
    expect(out.at(-1)).toEqual({ instanceId: 'cri-p100', instanceName: 'p100', status: '' });
  });
});
