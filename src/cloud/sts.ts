// STS AssumeRole and AssumeRoleWithOIDC (2015-04-01): one hop of the credential chain.
import type { Budget } from '../pull-secrets/types.js';
import { ownString } from '../util/own-string.js';
import { CloudError } from './errors.js';
import type { CloudCaller, Credentials } from './rpc.js';

export interface SessionCredentials extends Credentials {
  securityToken: string;
  /** ms since epoch */
  expiresAt: number;
}

export interface AssumeRoleRequest {
  roleArn: string;
  roleSessionName: string;
  durationSeconds: number;
  externalId?: string;
}

interface AssumeRoleResponse {
  RequestId?: string;
  Credentials?: { AccessKeyId?: string; AccessKeySecret?: string; SecurityToken?: string; Expiration?: string };
}

export async function assumeRole(caller: CloudCaller, endpoint: string, creds: Credentials, req: AssumeRoleRequest, budget: Budget): Promise<SessionCredentials> {
  const params: Record<string, string | number> = {
    RoleArn: req.roleArn,
    RoleSessionName: req.roleSessionName,
    DurationSeconds: req.durationSeconds,
  };
  if (req.externalId) params.ExternalId = req.externalId;
  const res = await caller.rpc<AssumeRoleResponse>(endpoint, '2015-04-01', creds, 'AssumeRole', params, budget);
  return sessionFrom('AssumeRole', res);
}

export interface AssumeRoleWithOidcRequest {
  roleArn: string;
  /** The RAM OIDC identity provider that trusts the token's issuer (RRSA): acs:ram::<uid>:oidc-provider/<name>. */
  oidcProviderArn: string;
  /** The JWT (a Kubernetes ServiceAccount token). Sent in the POST body only, never logged. */
  oidcToken: string;
  roleSessionName: string;
  durationSeconds: number;
}

/**
 * RRSA: a role assumed with an OIDC token instead of an AccessKey. The API takes no signature (the token is the
 * credential), so the call goes out unsigned; STS checks the token against the provider's issuer keys and the
 * role's trust policy (oidc:iss, oidc:aud, oidc:sub).
 */
export async function assumeRoleWithOidc(caller: CloudCaller, endpoint: string, req: AssumeRoleWithOidcRequest, budget: Budget): Promise<SessionCredentials> {
  const params: Record<string, string | number> = {
    RoleArn: req.roleArn,
    OIDCProviderArn: req.oidcProviderArn,
    OIDCToken: req.oidcToken,
    RoleSessionName: req.roleSessionName,
    DurationSeconds: req.durationSeconds,
  };
  const res = await caller.rpc<AssumeRoleResponse>(endpoint, '2015-04-01', null, 'AssumeRoleWithOIDC', params, budget);
  return sessionFrom('AssumeRoleWithOIDC', res);
}

function sessionFrom(api: string, res: AssumeRoleResponse): SessionCredentials {
  const c = res.Credentials;
  const expiresAt = c?.Expiration ? Date.parse(c.Expiration) : NaN;
  if (!c?.AccessKeyId || !c.AccessKeySecret || !c.SecurityToken || !Number.isFinite(expiresAt)) {
    throw new CloudError(api, 'BadResponse', true, res.RequestId);
  }
  // Cached for the session's lifetime: copied so the cache does not hold every response body.
  return { accessKeyId: ownString(c.AccessKeyId), accessKeySecret: ownString(c.AccessKeySecret), securityToken: ownString(c.SecurityToken), expiresAt };
}

const SESSION_NAME_CHARS = /[^A-Za-z0-9.@_-]/g;

/**
 * RoleSessionName that tells the account owner's audit trail which namespace pulled: 2-64 of [A-Za-z0-9.@_-].
 * Too long a name is cut and given a short hash so two long namespaces never share one.
 */
export function roleSessionName(requester: string, hash: (s: string) => string): string {
  const name = `acr-pull@${requester}`.replace(SESSION_NAME_CHARS, '-');
  return name.length <= 64 ? name : `${name.slice(0, 55)}.${hash(requester).slice(0, 8)}`;
}

export interface CallerIdentity {
  accountId: string;
  /** `acs:ram::<account>:user/<name>`, `acs:ram::<account>:root`, or a role session's ARN. */
  arn: string;
  /** Account, RAMUser or AssumedRoleUser. */
  identityType: string;
}

/** GetCallerIdentity: who the given credentials are. No RAM permission is needed for it. */
export async function getCallerIdentity(caller: CloudCaller, endpoint: string, creds: Credentials, budget: Budget): Promise<CallerIdentity> {
  const res = await caller.rpc<{ AccountId?: string; Arn?: string; IdentityType?: string; RequestId?: string }>(endpoint, '2015-04-01', creds, 'GetCallerIdentity', {}, budget);
  if (!res.AccountId || !res.Arn || !res.IdentityType) throw new CloudError('GetCallerIdentity', 'BadResponse', true, res.RequestId);
  return { accountId: ownString(res.AccountId), arn: ownString(res.Arn), identityType: ownString(res.IdentityType) };
}
