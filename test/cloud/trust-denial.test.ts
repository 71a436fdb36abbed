// Roles built the way ECI's docs say trust only the ECI service: the denial says so, names the webhook's own
// principal and gives the trust-policy statement to add. Real pop-core client against the emulator.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type WorldSpec } from '../../emulator/index.js';
import { staticIdentity, type Identity } from '../../src/cloud/identity.js';
import { CloudCaller } from '../../src/cloud/rpc.js';
import { assumeRole } from '../../src/cloud/sts.js';
import { AcrTokenSource } from '../../src/cloud/token-source.js';
import { principalFromIdentity, summarizeTrustPolicy, trustDenialAdvice, trustStatement } from '../../src/cloud/trust-advice.js';
import { TrustExplainer } from '../../src/cloud/trust-explainer.js';
import { DenialError } from '../../src/pull-secrets/types.js';

const A = '1609982529000001';
const KEYS = {
  webhook: { accessKeyId: 'LTAI5tWebhookKey00000001', accessKeySecret: 'webhook-secret-000000000000000' },
  blind: { accessKeyId: 'LTAI5tBlindKey0000000001', accessKeySecret: 'blind-secret-00000000000000000' },
  bare: { accessKeyId: 'LTAI5tBareKey00000000001', accessKeySecret: 'bare-secret-00000000000000000' },
  root: { accessKeyId: 'LTAI5tRootKey00000000001', accessKeySecret: 'root-secret-00000000000000000' },
};
const ECI_ROLE = `acs:ram::${A}:role/role-assume`;
const RRSA_ROLE = `acs:ram::${A}:role/acr-pull-webhook-rrsa`;

function world(): WorldSpec {
  return {
    accounts: [
      {
        id: A,
        rootAccessKeys: [{ id: KEYS.root.accessKeyId, secret: KEYS.root.accessKeySecret }],
        users: [
          { name: 'webhook', accessKeys: [{ id: KEYS.webhook.accessKeyId, secret: KEYS.webhook.accessKeySecret }], permissions: { assumeRole: '*', ramGetRole: '*' } },
          { name: 'blind', accessKeys: [{ id: KEYS.blind.accessKeyId, secret: KEYS.blind.accessKeySecret }], permissions: { assumeRole: '*' } },
          { name: 'bare', accessKeys: [{ id: KEYS.bare.accessKeyId, secret: KEYS.bare.accessKeySecret }] },
        ],
        roles: [
          { name: 'role-assume', trust: [{ service: 'eci.aliyuncs.com' }], permissions: { assumeRole: '*', crGetAuthorizationToken: '*' } },
          { name: 'other-trust', trust: [{ user: `acs:ram::${A}:user/someone-else` }] },
          { name: 'acr-pull-webhook-rrsa', trust: [{ user: `acs:ram::${A}:user/webhook` }], permissions: { assumeRole: '*', ramGetRole: '*' } },
        ],
      },
    ],
  };
}

const w = world();
const emu = await startEmulator({ world: w });
const callers: CloudCaller[] = [];
afterEach(() => emu.reset());
afterAll(async () => {
  for (const c of callers) c.close();
  await emu.close();
});

function setup(identity: Identity) {
  const caller = new CloudCaller({ backoffMs: 10 });
  callers.push(caller);
  const explainer = new TrustExplainer({ identity, caller, stsEndpoint: emu.stsEndpoint, ramEndpoint: emu.ramEndpoint });
  const tokens = new AcrTokenSource({
    identity,
    endpoints: { sts: emu.stsEndpoint, cr: (r) => emu.crEndpoint(r) },
    caller,
    sessionDurationSeconds: 3600,
    refreshThresholdMs: 15 * 60_000,
    negativeTtlMs: 0,
    explainRefusal: (arn, action, budget) => explainer.explain(arn, action, budget),
  });
  return { tokens, explainer };
}

async function denialFor(identity: Identity, roleArn = ECI_ROLE): Promise<DenialError> {
  const { tokens } = setup(identity);
  const e = await tokens.dockerAuths({ chain: { serviceArn: roleArn }, registries: [{ kind: 'instance', instanceId: 'cri-x', region: 'cn-hangzhou' }] }, 'team-a', { deadline: Date.now() + 5000 }).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(DenialError);
  return e as DenialError;
}

const noSecrets = (text: string, ...secrets: string[]) => {
  for (const s of secrets) expect(text).not.toContain(s);
};

describe('a role that trusts only the ECI service', () => {
  it('is denied plainly: the service it trusts, the webhook’s own RAM user, and the statement to add', async () => {
    const e = await denialFor(staticIdentity('env', KEYS.webhook));
    expect(e.code).toBe(403);
    expect(e.message).toMatch(/^acr-pull-webhook failed assuming service role acs:ram::1609982529000001:role\/role-assume: NoPermission \(request ID [0-9A-F-]+\)\. /);
    expect(e.message).toContain('The role trusts only the Alibaba Cloud service eci.aliyuncs.com: it is a normal service role, as ECI\'s documentation creates it');
    expect(e.message).toContain(`The webhook is not ECI; it is the RAM user acs:ram::${A}:user/webhook`);
    expect(e.message).toContain(`Add this statement to the role's trust policy: {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${A}:user/webhook"]}}`);
    noSecrets(e.message, KEYS.webhook.accessKeySecret);
    expect(emu.calls.count({ action: 'GetCallerIdentity' })).toBe(1);
    expect(emu.calls.count({ action: 'GetRole' })).toBe(1);
  });

  it('the advice really works: with the statement added, the same role is assumed', async () => {
    const role = w.accounts[0]!.roles!.find((r) => r.name === 'role-assume')!;
    const before = role.trust;
    role.trust = [...before, { user: `acs:ram::${A}:user/webhook` }];
    try {
      const { tokens } = setup(staticIdentity('env', KEYS.webhook));
      await expect(tokens.credentialsFor({ serviceArn: ECI_ROLE }, 'team-a', { deadline: Date.now() + 5000 })).resolves.toMatchObject({ accessKeyId: expect.stringMatching(/^STS\./) });
    } finally {
      role.trust = before;
    }
  });

  it('names the RRSA role (not the session) when the webhook runs as a role session, and finds the principal once', async () => {
    // The RRSA role's session, as @alicloud/credentials would hand it over.
    const caller = new CloudCaller();
    callers.push(caller);
    const session = await assumeRole(caller, emu.stsEndpoint, KEYS.webhook, { roleArn: RRSA_ROLE, roleSessionName: 'acr-pull-webhook', durationSeconds: 3600 }, { deadline: Date.now() + 5000 });
    const rrsa: Identity = { source: `rrsa (${RRSA_ROLE})`, credentials: async () => session };
    const { tokens } = setup(rrsa);
    const budget = { deadline: Date.now() + 5000 };
    const binding = { chain: { serviceArn: ECI_ROLE }, registries: [{ kind: 'instance' as const, instanceId: 'cri-x', region: 'cn-hangzhou' }] };
    const first = (await tokens.dockerAuths(binding, 'team-a', budget).catch((x: unknown) => x)) as DenialError;
    await tokens.dockerAuths(binding, 'team-b', budget).catch(() => undefined);
    expect(first.message).toContain(`it is its RRSA role ${RRSA_ROLE} (session acs:ram::${A}:role/acr-pull-webhook-rrsa/acr-pull-webhook)`);
    expect(first.message).toContain(`{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["${RRSA_ROLE}"]}}`);
    noSecrets(first.message, session.accessKeySecret, session.securityToken);
    expect(emu.calls.count({ action: 'GetCallerIdentity' })).toBe(1);
  });

  it('still gives the fix when RAM will not show the role (no ram:GetRole)', async () => {
    const e = await denialFor(staticIdentity('env', KEYS.blind));
    expect(e.message).toContain("The role's trust policy does not let the webhook in (RAM would not show the policy to check it). A role created for ECI");
    expect(e.message).toContain(`it is the RAM user acs:ram::${A}:user/blind`);
    expect(e.message).toContain(`"Principal":{"RAM":["acs:ram::${A}:user/blind"]}`);
  });

  it('a role trusting someone else is not called an ECI role', async () => {
    const e = await denialFor(staticIdentity('env', KEYS.webhook), `acs:ram::${A}:role/other-trust`);
    expect(e.message).toContain(`The role's trust policy does not name the webhook, which is the RAM user acs:ram::${A}:user/webhook`);
    expect(e.message).not.toContain('ECI');
  });

  it('a missing sts:AssumeRole on the webhook’s own side is told apart (RAM’s AccessDeniedDetail)', async () => {
    const e = await denialFor(staticIdentity('env', KEYS.bare));
    expect(e.message).toContain(`RAM refused sts:AssumeRole to the RAM user acs:ram::${A}:user/bare: grant it sts:AssumeRole on the role`);
    expect(emu.calls.count({ action: 'GetRole' })).toBe(0);
  });

  it('root keys: says roles cannot be assumed by root accounts', async () => {
    const e = await denialFor(staticIdentity('env', KEYS.root));
    expect(e.message).toContain(`The webhook runs with the root account's AccessKey (${A}), and RAM roles may not be assumed by root accounts`);
    noSecrets(e.message, KEYS.root.accessKeySecret);
  });

  it('without the principal (GetCallerIdentity failing) the advice says so and still shows the statement’s shape', async () => {
    emu.injectServerError(500, { action: 'GetCallerIdentity' });
    const e = await denialFor(staticIdentity('env', KEYS.webhook));
    expect(e.message).toContain("the webhook's identity (unknown: GetCallerIdentity failed)");
    expect(e.message).toContain('acs:ram::<account>:user/<name> or acs:ram::<account>:role/<RRSA or ECS role>');
  });
});

describe('trust advice, pure', () => {
  it('derives the principal a trust policy names', () => {
    expect(principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:user/ci`, identityType: 'RAMUser' })).toEqual({ arn: `acs:ram::${A}:user/ci`, accountId: A, kind: 'ram-user', trustArn: `acs:ram::${A}:user/ci` });
    expect(principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:assumed-role/KubernetesWorkerRole-x/i-abc`, identityType: 'AssumedRoleUser' })?.trustArn).toBe(`acs:ram::${A}:role/KubernetesWorkerRole-x`);
    expect(principalFromIdentity({ accountId: A, arn: `acs:ram::${A}:root`, identityType: 'Account' })?.kind).toBe('account');
    expect(principalFromIdentity({ accountId: A, arn: 'garbage', identityType: 'AssumedRoleUser' })).toBeUndefined();
  });

  it('summarizes trust policies, ignoring Deny and other actions', () => {
    const doc = JSON.stringify({
      Version: '1',
      Statement: [
        { Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'eci.aliyuncs.com' } },
        { Effect: 'Deny', Action: 'sts:AssumeRole', Principal: { RAM: ['acs:ram::1:root'] } },
        { Effect: 'Allow', Action: ['sts:AssumeRole'], Principal: { Service: ['ecs.aliyuncs.com'] } },
      ],
    });
    expect(summarizeTrustPolicy(doc)).toEqual({ services: ['eci.aliyuncs.com', 'ecs.aliyuncs.com'], ram: [], federated: [] });
    expect(summarizeTrustPolicy('not json')).toBeUndefined();
    expect(summarizeTrustPolicy('{"Statement":1}')).toBeUndefined();
  });

  it('an ECS instance role is named as such; a policy naming the webhook points at ExternalId and permissions', () => {
    const principal = { arn: `acs:ram::${A}:assumed-role/worker/i-1`, accountId: A, kind: 'role' as const, trustArn: `acs:ram::${A}:role/worker` };
    expect(trustDenialAdvice({ roleArn: ECI_ROLE, principal, identitySource: 'ecs-ram-role', trust: { services: ['eci.aliyuncs.com'], ram: [], federated: [] } })).toContain(
      `The webhook is not ECI; it is the ECS instance's RAM role acs:ram::${A}:role/worker`,
    );
    expect(trustDenialAdvice({ roleArn: ECI_ROLE, principal, identitySource: 'ecs-ram-role', trust: { services: [], ram: [`acs:ram::${A}:root`], federated: [] } })).toContain('an ExternalId');
    expect(trustStatement(`acs:ram::${A}:role/worker`)).toBe(`{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::${A}:role/worker"]}}`);
  });
});
