// Every denial src/cloud/denials.ts builds, asserted as the full text, status and reason the person creating the
// Pod sees: one test per step kind and per code family. The module is loaded per test (after vi.resetModules)
// so its load-time regular expressions and constants are credited to these tests.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type * as Denials from '../../src/cloud/denials.js';
import type * as Errors from '../../src/cloud/errors.js';
import type * as Types from '../../src/pull-secrets/types.js';

let d: typeof Denials;
let CloudError: typeof Errors.CloudError;
let DenialError: typeof Types.DenialError;

beforeEach(async () => {
  vi.resetModules();
  d = await import('../../src/cloud/denials.js');
  ({ CloudError } = await import('../../src/cloud/errors.js'));
  ({ DenialError } = await import('../../src/pull-secrets/types.js'));
});

const A = '1609982529000001';
const ROLE = `acs:ram::${A}:role/acr-pull`;
const SERVICE = `acs:ram::${A}:role/webhook-service`;
const PROVIDER = `acs:ram::${A}:oidc-provider/ack-rrsa-c1`;
const ISSUER = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou-internal.aliyuncs.com/c1';
const RETRY = 'Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again';

const err = (code: string, requestId?: string, httpStatus?: number) => new CloudError('SomeApi', code, false, requestId, httpStatus);
const shape = (e: Types.DenialError) => ({ message: e.message, code: e.code, reason: e.reason });

const identity = (self?: string): Denials.Step => (self === undefined ? { kind: 'identity' } : { kind: 'identity', self });
const sourced = (source: string, self?: string): Denials.Step => ({ kind: 'identity', source, ...(self === undefined ? {} : { self }) });
const service = (endpoint?: string): Denials.Step => ({ kind: 'assume-service', roleArn: ROLE, ...(endpoint === undefined ? {} : { endpoint }) });
const oidc = (audiences = ['sts.aliyuncs.com'], subject = 'system:serviceaccount:team-a:puller'): Denials.Step => ({
  kind: 'assume-oidc',
  roleArn: ROLE,
  providerArn: PROVIDER,
  subject,
  issuer: ISSUER,
  audiences,
  endpoint: 'https://sts.cn-hangzhou.aliyuncs.com',
});
const user: Denials.Step = { kind: 'assume-user', roleArn: ROLE, serviceArn: SERVICE, endpoint: 'https://sts.aliyuncs.com/' };
const instance: Denials.Step = {
  kind: 'instance',
  what: 'getting a registry token',
  actions: 'cr:GetAuthorizationToken and cr:ListInstanceEndpoint',
  instanceId: 'cri-abc',
  region: 'cn-beijing',
  as: ROLE,
  endpoint: 'https://cr.cn-beijing.aliyuncs.com',
};
const personal: Denials.Step = { kind: 'personal', region: 'cn-shanghai', as: ROLE, endpoint: 'https://cr.cn-shanghai.aliyuncs.com/' };
const discover: Denials.Step = { kind: 'discover', what: 'looking up', instanceName: 'team-reg', region: 'cn-hangzhou', as: ROLE, endpoint: 'https://cr.cn-hangzhou.aliyuncs.com' };

describe('stepName', () => {
  it('names each step kind', () => {
    expect(d.stepName(identity())).toBe("loading the webhook's own Alibaba Cloud credentials");
    expect(d.stepName(identity('the node'))).toBe("loading the node's own Alibaba Cloud credentials");
    expect(d.stepName(sourced('ecs-ram-role', 'the node'))).toBe("loading the node's own Alibaba Cloud credentials from ecs-ram-role");
    expect(d.stepName(sourced(`rrsa (${ROLE})`))).toBe(`loading the webhook's own Alibaba Cloud credentials from rrsa (${ROLE})`);
    expect(d.stepName(service())).toBe(`assuming service role ${ROLE}`);
    expect(d.stepName(oidc())).toBe(`assuming service role ${ROLE} with the token of ServiceAccount team-a/puller (AssumeRoleWithOIDC)`);
    expect(d.stepName(user)).toBe(`assuming user role ${ROLE} with service role ${SERVICE}`);
    expect(d.stepName(instance)).toBe(`getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}`);
    expect(d.stepName(personal)).toBe(`getting a Personal Edition registry token in cn-shanghai as ${ROLE}`);
    expect(d.stepName(discover)).toBe(`looking up ACR instance team-reg in cn-hangzhou (discovery) as ${ROLE}`);
  });

  it('strips the ServiceAccount prefix only at the start of the subject', () => {
    expect(d.stepName(oidc(undefined, 'ns:system:serviceaccount:x'))).toBe(`assuming service role ${ROLE} with the token of ServiceAccount ns/system:serviceaccount:x (AssumeRoleWithOIDC)`);
  });
});

describe('timeoutDenial and the endpoint shown', () => {
  it('shows scheme, host and path, without a lone "/" and without userinfo or query', () => {
    const e = d.timeoutDenial(service('https://user:pw@sts.example.com:8443/sts/?token=x'));
    expect(shape(e)).toEqual({
      message:
        `acr-pull-webhook timed out assuming service role ${ROLE}: STS (https://sts.example.com:8443/sts/) did not answer before the admission deadline. ` +
        `Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). ${RETRY}`,
      code: 503,
      reason: 'Timeout',
    });
    expect(d.timeoutDenial(user).message).toContain('STS (https://sts.aliyuncs.com) did not answer');
    expect(d.timeoutDenial(personal).message).toContain('Container Registry (https://cr.cn-shanghai.aliyuncs.com) did not answer');
  });

  it('an endpoint that is not a URL is shown as "(endpoint)"; no endpoint (absent or empty) shows none', () => {
    expect(d.timeoutDenial(service('not a url')).message).toContain(`assuming service role ${ROLE}: STS ((endpoint)) did not answer`);
    expect(d.timeoutDenial(service()).message).toContain(`assuming service role ${ROLE}: STS did not answer`);
    expect(d.timeoutDenial(service('')).message).toContain(`assuming service role ${ROLE}: STS did not answer`);
    expect(d.timeoutDenial({ kind: 'assume-service', roleArn: ROLE, endpoint: undefined }).message).toContain(`assuming service role ${ROLE}: STS did not answer`);
  });

  it('names the service of every step kind', () => {
    expect(d.timeoutDenial(identity()).message).toContain(
      "timed out loading the webhook's own Alibaba Cloud credentials: the webhook's credential provider (RRSA token exchange or ECS metadata) did not answer",
    );
    expect(d.timeoutDenial(identity('the node')).message).toContain(": the node's credential provider (RRSA token exchange or ECS metadata) did not answer");
    expect(d.timeoutDenial(oidc()).message).toContain('(AssumeRoleWithOIDC): STS (https://sts.cn-hangzhou.aliyuncs.com) did not answer');
    expect(d.timeoutDenial(user).message).toContain(`with service role ${SERVICE}: STS (https://sts.aliyuncs.com) did not answer`);
    expect(d.timeoutDenial(instance).message).toContain(`as ${ROLE}: Container Registry (https://cr.cn-beijing.aliyuncs.com) did not answer`);
    expect(d.timeoutDenial(discover).message).toContain(`(discovery) as ${ROLE}: Container Registry (https://cr.cn-hangzhou.aliyuncs.com) did not answer`);
  });
});

describe('isServiceRoleRefusal', () => {
  it('is true only for NoPermission (a CloudError) on a service-role AssumeRole', () => {
    expect(d.isServiceRoleRefusal(service(), err('NoPermission'))).toBe(true);
    expect(d.isServiceRoleRefusal(user, err('NoPermission'))).toBe(false);
    expect(d.isServiceRoleRefusal(instance, err('NoPermission'))).toBe(false);
    expect(d.isServiceRoleRefusal(service(), err('Forbidden.RAM'))).toBe(false);
    expect(d.isServiceRoleRefusal(service(), { code: 'NoPermission' })).toBe(false);
    expect(d.isServiceRoleRefusal(user, { code: 'NoPermission' })).toBe(false);
  });
});

describe('denialFor', () => {
  it('passes a DenialError through; anything else that is not a CloudError is "Unknown"', () => {
    const given = new DenialError('already said', 400, 'BadRequest');
    expect(d.denialFor(service(), given)).toBe(given);
    expect(shape(d.denialFor(instance, new Error('boom')))).toEqual({
      message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: Unknown.`,
      code: 500,
      reason: 'InternalError',
    });
  });

  it('anything else is classified like a cloud call\'s failure, keeping only its code', () => {
    // What @alicloud/credentials' providers throw when their service refuses the connection or does not answer.
    const refused = Object.assign(new Error('connect ECONNREFUSED 100.100.100.200:80 secret-in-text'), { code: 'ECONNREFUSED' });
    expect(shape(d.denialFor(instance, refused))).toEqual({
      message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: Unreachable. Container Registry (https://cr.cn-beijing.aliyuncs.com) could not be reached from the webhook: check its network and endpoint settings. ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    });
    expect(shape(d.denialFor(identity(), Object.assign(new Error('ENOENT: /var/run/secrets/token'), { code: 'ENOENT' })))).toEqual({
      message: "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials: ENOENT. The cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, RRSA or an ECS RAM role",
      code: 503,
      reason: 'ServiceUnavailable',
    });
    const timedOut = Object.assign(new Error('ConnectTimeout: Connect http://100.100.100.200/ failed.'), { name: 'RequestTimeoutError' });
    expect(shape(d.denialFor(sourced('rrsa (acs:ram::1:role/w)'), timedOut))).toEqual({
      message:
        "acr-pull-webhook timed out loading the webhook's own Alibaba Cloud credentials from rrsa (acs:ram::1:role/w): STS (the exchange of the webhook's RRSA token for credentials, AssumeRoleWithOIDC) did not answer before the admission deadline. " +
        `Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). ${RETRY}`,
      code: 503,
      reason: 'Timeout',
    });
  });

  it('the ECS RAM role\'s metadata service refused or silent: not there, so another source is needed', () => {
    const want = (code: string) => ({
      message:
        `acr-pull-webhook failed loading the node's own Alibaba Cloud credentials from ecs-ram-role: ${code}. The ECS instance metadata service (100.100.100.200) that the node's ECS RAM role credentials come from could not be reached from the webhook: ` +
        `check its network and endpoint settings. Outside Alibaba Cloud ECS there is none: the cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or RRSA instead. ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    });
    expect(shape(d.denialFor(sourced('ecs-ram-role', 'the node'), err('Unreachable')))).toEqual(want('Unreachable'));
    // The library's own one-second connect timeout, not the admission deadline.
    expect(shape(d.denialFor(sourced('ecs-ram-role', 'the node'), err('Timeout')))).toEqual(want('Timeout'));
    // Other sources (and other steps) unreachable: no such advice.
    expect(d.denialFor(sourced('env (AccessKey)'), err('Unreachable')).message).toBe(
      `acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials from env (AccessKey): Unreachable. The webhook's credential provider (RRSA token exchange or ECS metadata) could not be reached from the webhook: check its network and endpoint settings. ${RETRY}`,
    );
    // A static identity whose label merely ends in "ecs-ram-role" is not the metadata service: its credentials are
    // at hand, so the generic provider text, and a timeout is the admission deadline's.
    expect(shape(d.denialFor(sourced('static:fallback ecs-ram-role'), err('Unreachable')))).toEqual({
      message: `acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials from static:fallback ecs-ram-role: Unreachable. The webhook's credential provider (RRSA token exchange or ECS metadata) could not be reached from the webhook: check its network and endpoint settings. ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    });
    expect(shape(d.denialFor(sourced('static:fallback ecs-ram-role'), err('Timeout')))).toEqual({
      message:
        "acr-pull-webhook timed out loading the webhook's own Alibaba Cloud credentials from static:fallback ecs-ram-role: the webhook's credential provider (RRSA token exchange or ECS metadata) did not answer before the admission deadline. " +
        `Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). ${RETRY}`,
      code: 503,
      reason: 'Timeout',
    });
    expect(d.denialFor(sourced('ecs-ram-role'), err('EcsRamRole.NotAttached', undefined, 404)).message).toBe(
      "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials from ecs-ram-role: EcsRamRole.NotAttached. The cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, RRSA or an ECS RAM role",
    );
  });

  it('refusals, per step kind', () => {
    expect(shape(d.denialFor(user, err('NoPermission', 'REQ-1')))).toEqual({
      message: `acr-pull-webhook failed assuming user role ${ROLE} with service role ${SERVICE}: NoPermission (request ID REQ-1). The user role's trust policy must name the service role as a RAM principal (${SERVICE}), and the service role needs sts:AssumeRole on it`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(service(), err('NoPermission'), 'The advice.'))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: NoPermission. The advice.`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(service(), err('Forbidden.RAM')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: Forbidden.RAM. The role's trust policy must allow the webhook's identity (its account or RAM role), and that identity needs sts:AssumeRole`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(instance, err('NoPermission.Role')))).toEqual({
      message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: NoPermission.Role. Grant cr:GetAuthorizationToken and cr:ListInstanceEndpoint to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(personal, err('NoPermission')))).toEqual({
      message: `acr-pull-webhook failed getting a Personal Edition registry token in cn-shanghai as ${ROLE}: NoPermission. Grant cr:GetAuthorizationToken to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(discover, err('NoPermission')))).toEqual({
      message: `acr-pull-webhook failed looking up ACR instance team-reg in cn-hangzhou (discovery) as ${ROLE}: NoPermission. Grant cr:ListInstance (on instance/*), cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint to that identity in RAM, or turn discovery off and list the instance under registries`,
      code: 403,
      reason: 'Forbidden',
    });
    // No refusal text of its own for the webhook's identity: the operator's configuration advice.
    expect(shape(d.denialFor(identity(), err('NoPermission')))).toEqual({
      message: "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials: NoPermission. The cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, RRSA or an ECS RAM role",
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });

  it('role and instance codes', () => {
    expect(shape(d.denialFor(service(), err('EntityNotExist.Role')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: EntityNotExist.Role. The role does not exist: check the account ID and role name in the annotation`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(service(), err('InvalidParameter.RoleArn')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: InvalidParameter.RoleArn. The role ARN is malformed`,
      code: 400,
      reason: 'BadRequest',
    });
    expect(shape(d.denialFor(service(), err('InvalidParameter.DurationSeconds')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: InvalidParameter.DurationSeconds. The role's maximum session duration is shorter than the webhook's credentials.sessionDurationSeconds: raise the role's MaxSessionDuration or lower the setting`,
      code: 500,
      reason: 'InternalError',
    });
    for (const code of ['INSTANCE_NOT_EXIST', 'InstanceNotExist', 'INSTANCE_NOT_FOUND']) {
      expect(shape(d.denialFor(instance, err(code)))).toEqual({
        message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: ${code}. No such instance in that region: check the instance ID and its region prefix (cn-beijing:cri-...)`,
        code: 400,
        reason: 'BadRequest',
      });
    }
  });

  it('timeouts, unreachable services and throttling', () => {
    expect(shape(d.denialFor(instance, err('Timeout', 'R-9')))).toEqual({
      message:
        `acr-pull-webhook timed out getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: Container Registry (https://cr.cn-beijing.aliyuncs.com) did not answer before the admission deadline. ` +
        `Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). ${RETRY}`,
      code: 503,
      reason: 'Timeout',
    });
    expect(shape(d.denialFor(discover, err('Unreachable')))).toEqual({
      message: `acr-pull-webhook failed looking up ACR instance team-reg in cn-hangzhou (discovery) as ${ROLE}: Unreachable. Container Registry (https://cr.cn-hangzhou.aliyuncs.com) could not be reached from the webhook: check its network and endpoint settings. ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    });
    expect(shape(d.denialFor(service(), err('Throttling.User')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: Throttling.User. Alibaba Cloud is throttling the webhook on this step (retried while the admission deadline allowed). ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });

  it('transient service errors: by code prefix or by a 5xx status', () => {
    const want = {
      message: `acr-pull-webhook failed assuming user role ${ROLE} with service role ${SERVICE}: ServiceUnavailable. This is a transient Alibaba Cloud service error of STS (https://sts.aliyuncs.com) on this step (retried while the admission deadline allowed). ${RETRY}`,
      code: 503,
      reason: 'ServiceUnavailable',
    };
    expect(shape(d.denialFor(user, err('ServiceUnavailable')))).toEqual(want);
    expect(d.denialFor(user, err('internalerror.x')).message).toContain('This is a transient Alibaba Cloud service error of STS (https://sts.aliyuncs.com)');
    expect(shape(d.denialFor(user, err('Odd', undefined, 500)))).toEqual({ ...want, message: want.message.replace(': ServiceUnavailable.', ': Odd.') });
    expect(d.denialFor(user, err('Odd', undefined, 503)).reason).toBe('ServiceUnavailable');
    // A 4xx with an unknown code, and an error code that only contains a transient word, are not transient.
    expect(shape(d.denialFor(user, err('Odd', undefined, 499)))).toEqual({
      message: `acr-pull-webhook failed assuming user role ${ROLE} with service role ${SERVICE}: Odd.`,
      code: 500,
      reason: 'InternalError',
    });
    expect(shape(d.denialFor(user, err('Upstream.InternalError')))).toEqual({
      message: `acr-pull-webhook failed assuming user role ${ROLE} with service role ${SERVICE}: Upstream.InternalError.`,
      code: 500,
      reason: 'InternalError',
    });
    expect(d.denialFor(oidc(), err('Unreachable')).message).toContain(': Unreachable. STS (https://sts.cn-hangzhou.aliyuncs.com) could not be reached');
    expect(d.denialFor(personal, err('SYSTEM_ERROR')).message).toContain('service error of Container Registry (https://cr.cn-shanghai.aliyuncs.com) on this step');
    expect(d.denialFor(identity('the node'), err('Odd', undefined, 502)).message).toContain("service error of the node's credential provider (RRSA token exchange or ECS metadata) on this step");
  });

  it('rejected credentials, only for those codes at the start', () => {
    for (const code of ['InvalidAccessKeyId.NotFound', 'SignatureDoesNotMatch', 'InvalidSecurityToken.Expired', 'MissingSecurityToken', 'InvalidTimeStamp.Expired']) {
      expect(shape(d.denialFor(instance, err(code, 'R-2')))).toEqual({
        message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: ${code} (request ID R-2). The credentials used for this step were rejected; the cluster operator must check the webhook's identity and clock`,
        code: 500,
        reason: 'InternalError',
      });
    }
    expect(shape(d.denialFor(instance, err('Key.InvalidAccessKeyId')))).toEqual({
      message: `acr-pull-webhook failed getting a registry token for ACR instance cri-abc in cn-beijing as ${ROLE}: Key.InvalidAccessKeyId.`,
      code: 500,
      reason: 'InternalError',
    });
    // On the identity step too, rejected credentials say so (before the configuration advice).
    expect(d.denialFor(identity(), err('InvalidAccessKeyId.NotFound')).message).toBe(
      "acr-pull-webhook failed loading the webhook's own Alibaba Cloud credentials: InvalidAccessKeyId.NotFound. The credentials used for this step were rejected; the cluster operator must check the webhook's identity and clock",
    );
  });

  it('the identity step without a known code asks the operator to configure credentials', () => {
    expect(shape(d.denialFor(identity('the node'), new Error('no provider')))).toEqual({
      message: "acr-pull-webhook failed loading the node's own Alibaba Cloud credentials: Unknown. The cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, RRSA or an ECS RAM role",
      code: 503,
      reason: 'ServiceUnavailable',
    });
  });
});

describe('denialFor, AssumeRoleWithOIDC', () => {
  const what = `acr-pull-webhook failed assuming service role ${ROLE} with the token of ServiceAccount team-a/puller (AssumeRoleWithOIDC)`;

  it('a trust policy refusal names the provider and the conditions', () => {
    expect(shape(d.denialFor(oidc(['sts.aliyuncs.com', 'acr-pull']), err('AuthenticationFail.NoPermission', 'R-3')))).toEqual({
      message: `${what}: AuthenticationFail.NoPermission (request ID R-3). The role's trust policy must allow the OIDC provider ${PROVIDER} with the conditions oidc:sub = system:serviceaccount:team-a:puller and oidc:aud = sts.aliyuncs.com or acr-pull, and that provider must exist in the role's account`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('an expired token', () => {
    expect(shape(d.denialFor(oidc(), err('AuthenticationFail.OIDCToken.Expired')))).toEqual({
      message: `${what}: AuthenticationFail.OIDCToken.Expired. The ServiceAccount token has expired: check the node's clock`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('an audience that is not a client ID', () => {
    expect(shape(d.denialFor(oidc(['a', 'b']), err('AuthenticationFail.OIDCToken.AudienceNotMatch')))).toEqual({
      message: `${what}: AuthenticationFail.OIDCToken.AudienceNotMatch. The token's audience (a, b) is not a client ID of ${PROVIDER}: set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig to one (sts.aliyuncs.com for ACK RRSA)`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('an issuer that does not match', () => {
    expect(shape(d.denialFor(oidc(), err('AuthenticationFail.OIDCToken.IssuerNotMatch')))).toEqual({
      message: `${what}: AuthenticationFail.OIDCToken.IssuerNotMatch. The issuer URL of ${PROVIDER} must equal the cluster's service-account issuer ${ISSUER}`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('any other AuthenticationFail: the provider must have the issuer and the current signing keys', () => {
    expect(shape(d.denialFor(oidc(), err('AuthenticationFail.OIDCToken.Invalid')))).toEqual({
      message: `${what}: AuthenticationFail.OIDCToken.Invalid. STS could not verify the ServiceAccount token: ${PROVIDER} must have the issuer ${ISSUER} and the cluster's current service-account signing keys (re-sync the provider after a key rotation)`,
      code: 403,
      reason: 'Forbidden',
    });
  });

  it('only AuthenticationFail codes of the OIDC step get the OIDC texts', () => {
    expect(shape(d.denialFor(oidc(), err('EntityNotExist.Role')))).toEqual({
      message: `${what}: EntityNotExist.Role. The role does not exist: check the account ID and role name in the annotation`,
      code: 403,
      reason: 'Forbidden',
    });
    expect(shape(d.denialFor(service(), err('AuthenticationFail.NoPermission')))).toEqual({
      message: `acr-pull-webhook failed assuming service role ${ROLE}: AuthenticationFail.NoPermission.`,
      code: 500,
      reason: 'InternalError',
    });
  });
});
