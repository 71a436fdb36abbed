// The pure half of the trust explanation (src/cloud/trust-advice.ts): which principal a trust policy must name,
// what a trust policy lets in, and the advice texts, asserted in full. Loaded per test (after vi.resetModules)
// so the load-time ARN patterns and the `list` helper are credited to these tests.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type * as TrustAdvice from '../../src/cloud/trust-advice.js';

let t: typeof TrustAdvice;
beforeEach(async () => {
  vi.resetModules();
  t = await import('../../src/cloud/trust-advice.js');
});

const A = '1609982529000001';
const ECI_ROLE = `acs:ram::${A}:role/role-assume`;

describe('principalFromIdentity', () => {
  it('a RAM user, whose ARN is what a trust policy names', () => {
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:user/ci-bot.1`, identityType: 'RAMUser' })).toEqual({
      arn: `acs:ram::${A}:user/ci-bot.1`,
      accountId: A,
      kind: 'ram-user',
      trustArn: `acs:ram::${A}:user/ci-bot.1`,
    });
  });

  it('a RAM user ARN must be exactly acs:ram::<digits>:user/<name without / or spaces>', () => {
    for (const arn of [`xacs:ram::${A}:user/ci`, `acs:ram::${A}:user/ci/extra`, `acs:ram::${A}:user/c i`, 'acs:ram::12ab:user/ci', `acs:ram::${A}:user/`]) {
      expect(t.principalFromIdentity({ accountId: A, arn, identityType: 'RAMUser' })).toBeUndefined();
    }
  });

  it('a role session names the role behind it, for assumed-role/ and role/ forms', () => {
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:assumed-role/KubernetesWorkerRole-x.1/i-abc`, identityType: 'AssumedRoleUser' })).toEqual({
      arn: `acs:ram::${A}:assumed-role/KubernetesWorkerRole-x.1/i-abc`,
      accountId: A,
      kind: 'role',
      trustArn: `acs:ram::${A}:role/KubernetesWorkerRole-x.1`,
    });
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:role/acr-pull-webhook-rrsa/acr-pull-webhook`, identityType: 'AssumedRoleUser' })).toEqual({
      arn: `acs:ram::${A}:role/acr-pull-webhook-rrsa/acr-pull-webhook`,
      accountId: A,
      kind: 'role',
      trustArn: `acs:ram::${A}:role/acr-pull-webhook-rrsa`,
    });
  });

  it('a session ARN must be exactly acs:ram::<digits>:role/<name>/<session without spaces>', () => {
    for (const arn of [
      `xacs:ram::${A}:role/worker/i-1`,
      `acs:ram::${A}:role/worker/i 1`,
      'acs:ram::12ab:role/worker/i-1',
      `acs:ram::${A}:role/work_er/i-1`,
      `acs:ram::${A}:role/worker/`,
      'garbage',
    ]) {
      expect(t.principalFromIdentity({ accountId: A, arn, identityType: 'AssumedRoleUser' })).toBeUndefined();
    }
  });

  it('the root account is trusted as <account>:root, whatever its ARN looks like', () => {
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:root`, identityType: 'Account' })).toEqual({
      arn: `acs:ram::${A}:root`,
      accountId: A,
      kind: 'account',
      trustArn: `acs:ram::${A}:root`,
    });
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:user/ci`, identityType: 'Account' })?.kind).toBe('account');
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:role/worker/i-1`, identityType: 'Account' })?.kind).toBe('account');
  });

  it('the identity type decides: a user ARN of a session, or a session ARN of a user, is not taken', () => {
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:user/ci`, identityType: 'AssumedRoleUser' })).toBeUndefined();
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:role/worker/i-1`, identityType: 'RAMUser' })).toBeUndefined();
    expect(t.principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:user/ci`, identityType: 'Federated' })).toBeUndefined();
  });
});

describe('summarizeTrustPolicy', () => {
  const doc = (...Statement: unknown[]) => JSON.stringify({ Version: '1', Statement });

  it('counts Allow statements on sts:AssumeRole, sts:* or *, whatever else the Action lists', () => {
    expect(
      t.summarizeTrustPolicy(
        doc(
          { Effect: 'Allow', Action: 'sts:*', Principal: { Service: 'eci.aliyuncs.com' } },
          { Effect: 'Allow', Action: '*', Principal: { RAM: `acs:ram::${A}:user/a` } },
          { Effect: 'Allow', Action: ['sts:GetCallerIdentity', 'sts:AssumeRole'], Principal: { Federated: ['acs:ram::1:oidc-provider/p'] } },
          { Effect: 'Allow', Action: 'ecs:DescribeInstances', Principal: { RAM: 'acs:ram::1:user/not-this' } },
          { Effect: 'Allow', Principal: { RAM: 'acs:ram::1:user/no-action' } },
        ),
      ),
    ).toEqual({ services: ['eci.aliyuncs.com'], ram: [`acs:ram::${A}:user/a`], federated: ['acs:ram::1:oidc-provider/p'] });
  });

  it('keeps only the string principals of a list, and takes statements without a Principal or null ones as naming nobody', () => {
    expect(
      t.summarizeTrustPolicy(doc(null, { Effect: 'Allow', Action: 'sts:AssumeRole' }, { Effect: 'Allow', Action: ['sts:AssumeRole', 7], Principal: { RAM: [`acs:ram::${A}:user/a`, 5, null], Service: 7 } })),
    ).toEqual({ services: [], ram: [`acs:ram::${A}:user/a`], federated: [] });
  });

  it('is undefined for what is not a trust policy', () => {
    expect(t.summarizeTrustPolicy('null')).toBeUndefined();
    expect(t.summarizeTrustPolicy('not json')).toBeUndefined();
    expect(t.summarizeTrustPolicy('{"Statement":{}}')).toBeUndefined();
  });
});

describe('trustDenialAdvice', () => {
  const user = { arn: `acs:ram::${A}:user/webhook`, accountId: A, kind: 'ram-user' as const, trustArn: `acs:ram::${A}:user/webhook` };
  const role = { arn: `acs:ram::${A}:assumed-role/worker/i-1`, accountId: A, kind: 'role' as const, trustArn: `acs:ram::${A}:role/worker` };
  const USER_STATEMENT = `{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${A}:user/webhook"]}}`;

  it('a role trusting only services: names them all, the webhook, the statement, and to keep the service statement', () => {
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env (AccessKey)', trust: { services: ['eci.aliyuncs.com', 'ecs.aliyuncs.com'], ram: [], federated: [] } })).toBe(
      "The role trusts only the Alibaba Cloud service eci.aliyuncs.com, ecs.aliyuncs.com: it is a normal service role, as ECI's documentation creates it, and only that service can assume it. " +
        `The webhook is not ECI; it is the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT} (keep the service statement if ECI still uses the role); the webhook's identity also needs sts:AssumeRole on the role`,
    );
  });

  it('services and other principals: the policy does not name the webhook (keep the service statement)', () => {
    const want =
      `The role's trust policy does not name the webhook, which is the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT} ` +
      "(keep the service statement if ECI still uses the role); the webhook's identity also needs sts:AssumeRole on the role";
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env', trust: { services: ['eci.aliyuncs.com'], ram: ['acs:ram::1:user/x'], federated: [] } })).toBe(want);
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env', trust: { services: ['eci.aliyuncs.com'], ram: [], federated: ['acs:ram::1:oidc-provider/p'] } })).toBe(want);
  });

  it('a policy naming nobody, or others only: no service statement to keep', () => {
    const want =
      `The role's trust policy does not name the webhook, which is the RAM user acs:ram::${A}:user/webhook. Add this statement to the role's trust policy: ${USER_STATEMENT}; ` +
      "the webhook's identity also needs sts:AssumeRole on the role";
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env', trust: { services: [], ram: [], federated: [] } })).toBe(want);
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env', trust: { services: [], ram: ['acs:ram::1:user/x'], federated: [] } })).toBe(want);
  });

  it('a policy naming the webhook itself, or its account root: the refusal is a condition or the webhook’s own policy', () => {
    const want = (who: string) =>
      `The role's trust policy names ${who}, so the refusal comes from a condition (an ExternalId: see credentials.externalIds) or from the webhook's own RAM policy (it needs sts:AssumeRole on the role)`;
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: user, identitySource: 'env', trust: { services: [], ram: [`acs:ram::${A}:user/webhook`], federated: [] } })).toBe(
      want(`the RAM user acs:ram::${A}:user/webhook`),
    );
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: role, identitySource: 'static:x', trust: { services: [], ram: [`acs:ram::${A}:root`], federated: [] } })).toBe(
      want(`a RAM role acs:ram::${A}:role/worker (session acs:ram::${A}:assumed-role/worker/i-1)`),
    );
  });

  it('RAM would not show the policy: says so, and keeps the service statement', () => {
    expect(t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: role, identitySource: 'rrsa (x)' })).toBe(
      "The role's trust policy does not let the webhook in (RAM would not show the policy to check it). A role created for ECI as its documentation describes (trusted service: ECI) trusts only eci.aliyuncs.com, " +
        `and the webhook is not ECI; it is its RRSA role acs:ram::${A}:role/worker (session acs:ram::${A}:assumed-role/worker/i-1). ` +
        `Add this statement to the role's trust policy: {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${A}:role/worker"]}} (keep the service statement if ECI still uses the role); ` +
        "the webhook's identity also needs sts:AssumeRole on the role",
    );
  });

  it('describes a role principal by where it comes from', () => {
    const advice = (identitySource: string) => t.trustDenialAdvice({ roleArn: ECI_ROLE, principal: role, identitySource, trust: { services: [], ram: [], federated: [] } });
    expect(advice('ecs-ram-role')).toContain(`which is the ECS instance's RAM role acs:ram::${A}:role/worker (session`);
    expect(advice('rrsa (acs:ram::1:role/r)')).toContain(`which is its RRSA role acs:ram::${A}:role/worker (session`);
    expect(advice('env (STS token)')).toContain(`which is a RAM role acs:ram::${A}:role/worker (session acs:ram::${A}:assumed-role/worker/i-1).`);
  });
});

describe('missingPermissionAdvice', () => {
  it('names who lacks the action', () => {
    expect(t.missingPermissionAdvice('sts:AssumeRole', { arn: `acs:ram::${A}:root`, accountId: A, kind: 'account', trustArn: `acs:ram::${A}:root` }, 'env')).toBe(
      `RAM refused sts:AssumeRole to the root account ${A}: grant it sts:AssumeRole on the role (for example with the AliyunSTSAssumeRoleAccess policy, or a custom policy on the role's ARN)`,
    );
    expect(t.missingPermissionAdvice('sts:AssumeRole', undefined, 'env')).toBe(
      "RAM refused sts:AssumeRole to the webhook's identity: grant it sts:AssumeRole on the role (for example with the AliyunSTSAssumeRoleAccess policy, or a custom policy on the role's ARN)",
    );
    expect(t.missingPermissionAdvice('sts:AssumeRole', { arn: `acs:ram::${A}:role/w/s`, accountId: A, kind: 'role', trustArn: `acs:ram::${A}:role/w` }, 'static:ci')).toBe(
      `RAM refused sts:AssumeRole to a RAM role acs:ram::${A}:role/w (session acs:ram::${A}:role/w/s): grant it sts:AssumeRole on the role (for example with the AliyunSTSAssumeRoleAccess policy, or a custom policy on the role's ARN)`,
    );
  });
});
