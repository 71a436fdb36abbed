// TrustExplainer (src/cloud/trust-explainer.ts) against a recording stand-in for the RPC caller and an injected
// clock: when it asks STS and RAM, with which budget, how long a failed GetCallerIdentity is remembered, and the
// advice it returns. Loaded per test (after vi.resetModules) so the load-time role-ARN pattern is credited.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CloudCaller, Credentials } from '../../src/cloud/rpc.js';
import type * as Explainer from '../../src/cloud/trust-explainer.js';
import type { Budget } from '../../src/pull-secrets/types.js';

let TrustExplainer: typeof Explainer.TrustExplainer;
beforeEach(async () => {
  vi.resetModules();
  ({ TrustExplainer } = await import('../../src/cloud/trust-explainer.js'));
});

const A = '1609982529000001';
const STS = 'https://sts.test';
const RAM = 'https://ram.test';
const CREDS: Credentials = { accessKeyId: 'LTAI5tExplainKey00000001', accessKeySecret: 'explain-secret-000000000000' };

interface Call {
  endpoint: string;
  action: string;
  params: Record<string, string | number>;
  deadline: number;
  signal?: AbortSignal;
}

type Answer = Record<string, unknown> | Error;

/** Answers GetCallerIdentity and GetRole from the queues given (the last answer repeats), recording each call. */
function fakeCaller(answers: { GetCallerIdentity?: Answer[]; GetRole?: Answer[] }) {
  const calls: Call[] = [];
  const caller = {
    rpc: async (endpoint: string, _v: string, _c: Credentials | null, action: string, params: Record<string, string | number>, budget: Budget) => {
      calls.push({ endpoint, action, params, deadline: budget.deadline, ...(budget.signal ? { signal: budget.signal } : {}) });
      const queue = answers[action as 'GetRole'] ?? [];
      const a = queue.length > 1 ? queue.shift()! : queue[0];
      if (!a) throw new Error(`unexpected ${action}`);
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { caller: caller as unknown as CloudCaller, calls };
}

const user = { AccountId: A, Arn: `acs:ram::${A}:user/webhook`, IdentityType: 'RAMUser', RequestId: 'R1' };
const root = { AccountId: A, Arn: `acs:ram::${A}:root`, IdentityType: 'Account', RequestId: 'R2' };
const federated = { AccountId: A, Arn: `acs:ram::${A}:oidc/x`, IdentityType: 'Federated', RequestId: 'R3' };
const eciOnly = { Role: { AssumeRolePolicyDocument: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'eci.aliyuncs.com' } }] }) } };

const USER_STATEMENT = `{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${A}:user/webhook"]}}`;
const NOT_SHOWN =
  "The role's trust policy does not let the webhook in (RAM would not show the policy to check it). A role created for ECI as its documentation describes (trusted service: ECI) trusts only eci.aliyuncs.com, and the webhook is not ECI; it is ";
const END = " (keep the service statement if ECI still uses the role); the webhook's identity also needs sts:AssumeRole on the role";
const UNKNOWN_FIX =
  `the webhook's identity (unknown: GetCallerIdentity failed). Add a statement naming the webhook's identity to the role's trust policy: ` +
  '{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::<account>:user/<name> or acs:ram::<account>:role/<RRSA or ECS role>"]}}';

function setup(answers: Parameters<typeof fakeCaller>[0], start = 1_000_000) {
  const clock = { t: start };
  const { caller, calls } = fakeCaller(answers);
  const explainer = new TrustExplainer({
    identity: { source: 'env (AccessKey)', credentials: async () => CREDS },
    caller,
    stsEndpoint: STS,
    ramEndpoint: RAM,
    now: () => clock.t,
  });
  return { explainer, calls, clock, budget: { deadline: start + 30_000 } as Budget };
}

const actions = (calls: Call[]) => calls.map((c) => `${c.action}${c.params.RoleName ? ` ${c.params.RoleName}` : ''}`);

describe('TrustExplainer.explain', () => {
  it('reads the trust policy of a role of its own account and explains it', async () => {
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [user], GetRole: [eciOnly] });
    await expect(explainer.explain(`acs:ram::${A}:role/role-assume.v2`, undefined, budget)).resolves.toBe(
      "The role trusts only the Alibaba Cloud service eci.aliyuncs.com: it is a normal service role, as ECI's documentation creates it, and only that service can assume it. " +
        `The webhook is not ECI; it is the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT}${END}`,
    );
    expect(calls.map((c) => [c.endpoint, c.action, c.params])).toEqual([
      [STS, 'GetCallerIdentity', {}],
      [RAM, 'GetRole', { RoleName: 'role-assume.v2' }],
    ]);
  });

  it('does not ask RAM about a role of another account, a malformed role ARN, or as the root account', async () => {
    for (const arn of [`acs:ram::1609982529000002:role/r`, `xacs:ram::${A}:role/r`, `acs:ram::${A}:role/r_x`, `acs:ram::${A}:role/r/x`, `acs:ram::${A}:user/r`]) {
      const { explainer, calls, budget } = setup({ GetCallerIdentity: [user], GetRole: [eciOnly] });
      await expect(explainer.explain(arn, undefined, budget)).resolves.toBe(`${NOT_SHOWN}the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT}${END}`);
      expect(actions(calls)).toEqual(['GetCallerIdentity']);
    }
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [root], GetRole: [eciOnly] });
    await expect(explainer.explain(`acs:ram::${A}:role/r`, undefined, budget)).resolves.toBe(
      `The webhook runs with the root account's AccessKey (${A}), and RAM roles may not be assumed by root accounts: give the webhook a RAM user's AccessKey, RRSA or an ECS instance RAM role instead`,
    );
    expect(actions(calls)).toEqual(['GetCallerIdentity']);
  });

  it('without its own principal it does not ask RAM, and says the principal is unknown', async () => {
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [new Error('down')], GetRole: [eciOnly] });
    await expect(explainer.explain(`acs:ram::${A}:role/r`, undefined, budget)).resolves.toBe(`${NOT_SHOWN}${UNKNOWN_FIX}${END}`);
    expect(actions(calls)).toEqual(['GetCallerIdentity']);
  });

  it('when RAM will not show the role, says it could not check', async () => {
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [user], GetRole: [new Error('NoPermission')] });
    await expect(explainer.explain(`acs:ram::${A}:role/r`, undefined, budget)).resolves.toBe(
      `${NOT_SHOWN}the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT}${END}`,
    );
    expect(actions(calls)).toEqual(['GetCallerIdentity', 'GetRole r']);
  });

  it('a refusal of its own policy (a denied action) is told without reading the role', async () => {
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [user], GetRole: [eciOnly] });
    await expect(explainer.explain(`acs:ram::${A}:role/r`, 'sts:AssumeRole', budget)).resolves.toBe(
      `RAM refused sts:AssumeRole to the RAM user acs:ram::${A}:user/webhook: grant it sts:AssumeRole on the role (for example with the AliyunSTSAssumeRoleAccess policy, or a custom policy on the role's ARN)`,
    );
    expect(actions(calls)).toEqual(['GetCallerIdentity']);
  });

  it('takes at most 2 s of the budget, and leaves 250 ms of it; the signal is passed on', async () => {
    const signal = new AbortController().signal;
    const long = setup({ GetCallerIdentity: [user], GetRole: [eciOnly] }, 1_000_000);
    await long.explainer.explain(`acs:ram::${A}:role/r`, undefined, { deadline: 1_100_000, signal });
    expect(long.calls.map((c) => [c.action, c.deadline, c.signal === signal])).toEqual([
      ['GetCallerIdentity', 1_002_000, true],
      ['GetRole', 1_002_000, true],
    ]);
    const short = setup({ GetCallerIdentity: [user], GetRole: [eciOnly] }, 1_000_000);
    await short.explainer.explain(`acs:ram::${A}:role/r`, undefined, { deadline: 1_001_000 });
    expect(short.calls.map((c) => [c.action, c.deadline, c.signal])).toEqual([
      ['GetCallerIdentity', 1_000_750, undefined],
      ['GetRole', 1_000_750, undefined],
    ]);
  });
});

describe('TrustExplainer.principal', () => {
  it('is found once and kept', async () => {
    const { explainer, calls, clock, budget } = setup({ GetCallerIdentity: [user] });
    const want = { arn: `acs:ram::${A}:user/webhook`, accountId: A, kind: 'ram-user', trustArn: `acs:ram::${A}:user/webhook` };
    await expect(explainer.principal(budget)).resolves.toEqual(want);
    clock.t += 3_600_000;
    await expect(explainer.principal(budget)).resolves.toEqual(want);
    expect(actions(calls)).toEqual(['GetCallerIdentity']);
  });

  it('concurrent first calls share one GetCallerIdentity', async () => {
    const { explainer, calls, budget } = setup({ GetCallerIdentity: [user] });
    const [a, b] = await Promise.all([explainer.principal(budget), explainer.principal(budget)]);
    expect(a?.trustArn).toBe(`acs:ram::${A}:user/webhook`);
    expect(b).toBe(a);
    expect(actions(calls)).toEqual(['GetCallerIdentity']);
  });

  it('after a failed call, asks again only once 60 s have passed', async () => {
    const { explainer, calls, clock, budget } = setup({ GetCallerIdentity: [new Error('down'), new Error('down'), user] });
    await expect(explainer.principal(budget)).resolves.toBeUndefined();
    clock.t += 59_999;
    await expect(explainer.principal(budget)).resolves.toBeUndefined();
    expect(calls).toHaveLength(1);
    clock.t += 1; // 60 s after the failure
    await expect(explainer.principal(budget)).resolves.toBeUndefined();
    expect(calls).toHaveLength(2);
    clock.t += 60_000;
    await expect(explainer.principal(budget)).resolves.toMatchObject({ kind: 'ram-user' });
    expect(calls).toHaveLength(3);
  });

  it('an identity it cannot name (not a RAM user, role session or account) counts as a failure for 60 s', async () => {
    const { explainer, calls, clock, budget } = setup({ GetCallerIdentity: [federated, user] });
    await expect(explainer.principal(budget)).resolves.toBeUndefined();
    clock.t += 59_999;
    await expect(explainer.principal(budget)).resolves.toBeUndefined();
    expect(calls).toHaveLength(1);
    clock.t += 1;
    await expect(explainer.principal(budget)).resolves.toMatchObject({ kind: 'ram-user', accountId: A });
    expect(calls).toHaveLength(2);
  });
});
