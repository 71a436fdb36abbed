// Cloud failures turned into denial messages that name the step that failed and the fix. Only codes,
// ARNs, instance IDs and request IDs appear: all of it is safe to show the person creating the Pod.
import { DenialError } from '../pull-secrets/types.js';
import { CloudError, toCloudError } from './errors.js';

export type Step =
  /**
   * `self`: whose identity ("the webhook", "the node"); default the webhook. `source`: where it comes from
   * (Identity.source: "env (AccessKey)", "rrsa (<role ARN>)", "ecs-ram-role", "static:<label>"), no secret in it.
   */
  | { kind: 'identity'; self?: string; source?: string }
  | { kind: 'assume-service'; roleArn: string; endpoint?: string }
  /** The first hop taken with a Kubernetes ServiceAccount token (RRSA) instead of the front end's identity. */
  | { kind: 'assume-oidc'; roleArn: string; providerArn: string; subject: string; issuer: string; audiences: string[]; endpoint?: string }
  | { kind: 'assume-user'; roleArn: string; serviceArn: string; endpoint?: string }
  /** `actions`: the RAM actions the step's calls need, for a NoPermission denial. */
  | { kind: 'instance'; what: string; actions: string; instanceId: string; region: string; as: string; endpoint?: string }
  | { kind: 'personal'; region: string; as: string; endpoint?: string }
  /** Discovery of the instance a default domain names (the credential provider: ListInstance by name, then its domains). */
  | { kind: 'discover'; what: string; instanceName: string; region: string; as: string; endpoint?: string };

export function stepName(step: Step): string {
  switch (step.kind) {
    case 'identity':
      return `loading ${step.self ?? 'the webhook'}'s own Alibaba Cloud credentials${step.source ? ` from ${step.source}` : ''}`;
    case 'assume-service':
      return `assuming service role ${step.roleArn}`;
    case 'assume-oidc':
      return `assuming service role ${step.roleArn} with the token of ServiceAccount ${step.subject.replace(/^system:serviceaccount:/, '').replace(':', '/')} (AssumeRoleWithOIDC)`;
    case 'assume-user':
      return `assuming user role ${step.roleArn} with service role ${step.serviceArn}`;
    case 'instance':
      return `${step.what} for ACR instance ${step.instanceId} in ${step.region} as ${step.as}`;
    case 'personal':
      return `getting a Personal Edition registry token in ${step.region} as ${step.as}`;
    case 'discover':
      return `${step.what} ACR instance ${step.instanceName} in ${step.region} (discovery) as ${step.as}`;
  }
}

/** An endpoint as shown in a message: scheme, host and path only (never userinfo or a query). */
function shownEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.origin}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(endpoint)';
  }
}

/** The service a step calls, with its endpoint when known: what the operator checks. */
function serviceOf(step: Step): string {
  const at = 'endpoint' in step && step.endpoint ? ` (${shownEndpoint(step.endpoint)})` : '';
  switch (step.kind) {
    case 'identity':
      return identityService(step.self ?? 'the webhook', step.source);
    case 'assume-service':
    case 'assume-oidc':
    case 'assume-user':
      return `STS${at}`;
    case 'instance':
    case 'personal':
    case 'discover':
      return `Container Registry${at}`;
  }
}

/** What an identity source calls to get its credentials (the @alicloud/credentials providers of identity.ts). */
function identityService(self: string, source: string | undefined): string {
  if (source?.startsWith('ecs-ram-role')) return `the ECS instance metadata service (100.100.100.200) that ${self}'s ECS RAM role credentials come from`;
  if (source?.startsWith('rrsa')) return `STS (the exchange of ${self}'s RRSA token for credentials, AssumeRoleWithOIDC)`;
  return `${self}'s credential provider (RRSA token exchange or ECS metadata)`;
}

const sentence = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** A denied Pod is not retried by the API server, but its controller makes it again. */
const RETRY_ADVICE = 'Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again';

/** The denial when the admission deadline passes while `step` is in flight (or its call timed out). */
export function timeoutDenial(step: Step): DenialError {
  return new DenialError(
    `acr-pull-webhook timed out ${stepName(step)}: ${serviceOf(step)} did not answer before the admission deadline. ` +
      `Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). ${RETRY_ADVICE}`,
    503,
    'Timeout',
  );
}

/** 5xx and their codes: the service failed, not the request; retrying later is the fix. */
const TRANSIENT = /^(ServiceUnavailable|InternalError|InternalFailure|SYSTEM_ERROR|ServiceBusy|BadResponse)/i;

/** True for a refusal that trust-explainer.ts can explain: AssumeRole of a service role with the webhook's identity. */
export function isServiceRoleRefusal(step: Step, e: unknown): e is CloudError {
  return step.kind === 'assume-service' && e instanceof CloudError && e.code === 'NoPermission';
}

/** `advice` (from trust-explainer.ts) replaces the generic fix of a refused service-role AssumeRole. */
export function denialFor(step: Step, e: unknown, advice?: string): DenialError {
  if (e instanceof DenialError) return e;
  // What an identity provider (or anything else) threw: classified like the cloud calls' failures (a refused
  // connection is Unreachable, a timeout Timeout), keeping its code only, never its text.
  const err = toCloudError(step.kind, e);
  const ref = err.requestId ? ` (request ID ${err.requestId})` : '';
  const what = `acr-pull-webhook failed ${stepName(step)}: ${err.code}${ref}`;
  const code = err.code;

  if (step.kind === 'assume-oidc' && code.startsWith('AuthenticationFail')) return oidcDenial(step, code, what);
  if (code === 'NoPermission' || code.startsWith('Forbidden') || code === 'NoPermission.Role') {
    if (step.kind === 'assume-user') {
      return new DenialError(`${what}. The user role's trust policy must name the service role as a RAM principal (${step.serviceArn}), and the service role needs sts:AssumeRole on it`, 403, 'Forbidden');
    }
    if (step.kind === 'assume-service') {
      if (advice) return new DenialError(`${what}. ${advice}`, 403, 'Forbidden');
      return new DenialError(`${what}. The role's trust policy must allow the webhook's identity (its account or RAM role), and that identity needs sts:AssumeRole`, 403, 'Forbidden');
    }
    if (step.kind === 'instance' || step.kind === 'personal') {
      const actions = step.kind === 'instance' ? step.actions : 'cr:GetAuthorizationToken';
      return new DenialError(
        `${what}. Grant ${actions} to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
        403,
        'Forbidden',
      );
    }
    if (step.kind === 'discover') {
      return new DenialError(
        `${what}. Grant cr:ListInstance (on instance/*), cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint to that identity in RAM, or turn discovery off and list the instance under registries`,
        403,
        'Forbidden',
      );
    }
  }
  if (code === 'EntityNotExist.Role') {
    return new DenialError(`${what}. The role does not exist: check the account ID and role name in the annotation`, 403, 'Forbidden');
  }
  if (code === 'InvalidParameter.RoleArn') return new DenialError(`${what}. The role ARN is malformed`, 400, 'BadRequest');
  if (code === 'InvalidParameter.DurationSeconds') {
    return new DenialError(`${what}. The role's maximum session duration is shorter than the webhook's credentials.sessionDurationSeconds: raise the role's MaxSessionDuration or lower the setting`, 500, 'InternalError');
  }
  if (code === 'INSTANCE_NOT_EXIST' || code === 'InstanceNotExist' || code === 'INSTANCE_NOT_FOUND') {
    return new DenialError(`${what}. No such instance in that region: check the instance ID and its region prefix (cn-beijing:cri-...)`, 400, 'BadRequest');
  }
  // Outside an ECS instance (a laptop, another cloud) there is no metadata service: the library's connection to
  // it is refused or times out (after its own second, not the admission deadline), and the source is the wrong one.
  const noMetadata = step.kind === 'identity' && step.source?.startsWith('ecs-ram-role') === true;
  if (code === 'Timeout' && !noMetadata) return timeoutDenial(step);
  if (code === 'Unreachable' || code === 'Timeout') {
    const elsewhere = noMetadata ? ' Outside Alibaba Cloud ECS there is none: the cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or RRSA instead.' : '';
    return new DenialError(`${what}. ${sentence(serviceOf(step))} could not be reached from the webhook: check its network and endpoint settings.${elsewhere} ${RETRY_ADVICE}`, 503, 'ServiceUnavailable');
  }
  if (code.startsWith('Throttling')) {
    return new DenialError(`${what}. Alibaba Cloud is throttling the webhook on this step (retried while the admission deadline allowed). ${RETRY_ADVICE}`, 503, 'ServiceUnavailable');
  }
  if (TRANSIENT.test(code) || (err.httpStatus !== undefined && err.httpStatus >= 500)) {
    return new DenialError(
      `${what}. This is a transient Alibaba Cloud service error of ${serviceOf(step)} on this step (retried while the admission deadline allowed). ${RETRY_ADVICE}`,
      503,
      'ServiceUnavailable',
    );
  }
  if (/^(InvalidAccessKeyId|SignatureDoesNotMatch|InvalidSecurityToken|MissingSecurityToken|InvalidTimeStamp)/.test(code)) {
    return new DenialError(`${what}. The credentials used for this step were rejected; the cluster operator must check the webhook's identity and clock`, 500, 'InternalError');
  }
  if (step.kind === 'identity') {
    return new DenialError(`${what}. The cluster operator must configure ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, RRSA or an ECS RAM role`, 503, 'ServiceUnavailable');
  }
  return new DenialError(`${what}.`, 500, 'InternalError');
}

/** AssumeRoleWithOIDC answers 401 AuthenticationFail.* for every token and trust problem; each has its own fix. */
function oidcDenial(step: Extract<Step, { kind: 'assume-oidc' }>, code: string, what: string): DenialError {
  if (code === 'AuthenticationFail.NoPermission') {
    return new DenialError(
      `${what}. The role's trust policy must allow the OIDC provider ${step.providerArn} with the conditions ` +
        `oidc:sub = ${step.subject} and oidc:aud = ${step.audiences.join(' or ')}, and that provider must exist in the role's account`,
      403,
      'Forbidden',
    );
  }
  if (code === 'AuthenticationFail.OIDCToken.Expired') {
    return new DenialError(`${what}. The ServiceAccount token has expired: check the node's clock`, 403, 'Forbidden');
  }
  if (code === 'AuthenticationFail.OIDCToken.AudienceNotMatch') {
    return new DenialError(
      `${what}. The token's audience (${step.audiences.join(', ')}) is not a client ID of ${step.providerArn}: set ` +
        "tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig to one (sts.aliyuncs.com for ACK RRSA)",
      403,
      'Forbidden',
    );
  }
  if (code === 'AuthenticationFail.OIDCToken.IssuerNotMatch') {
    return new DenialError(`${what}. The issuer URL of ${step.providerArn} must equal the cluster's service-account issuer ${step.issuer}`, 403, 'Forbidden');
  }
  return new DenialError(
    `${what}. STS could not verify the ServiceAccount token: ${step.providerArn} must have the issuer ${step.issuer} ` +
      "and the cluster's current service-account signing keys (re-sync the provider after a key rotation)",
    403,
    'Forbidden',
  );
}
