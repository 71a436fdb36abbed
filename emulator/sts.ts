// STS 2015-04-01: AssumeRole, AssumeRoleWithOIDC, GetCallerIdentity.
import { parseRoleArn, sameOidcProvider, sameRole } from './arn.js';
import { requirePermission, sessionArn, type Caller } from './caller.js';
import { canonicalRoleArn, findOidcProvider, findRole } from './directory.js';
import { errors } from './errors.js';
import { derivedRoleId, randomAlnum } from './ids.js';
import type { AccountSpec, RoleSpec } from './model.js';
import { verifyOidcToken } from './oidc.js';
import type { EmulatorState } from './state.js';

export const STS_VERSION = '2015-04-01';
export const STS_ACTIONS = new Set(['AssumeRole', 'AssumeRoleWithOIDC', 'GetCallerIdentity']);
/** Actions the gateway serves without a signature. */
export const STS_ANONYMOUS_ACTIONS = new Set(['AssumeRoleWithOIDC']);

type Params = Readonly<Record<string, string>>;

const SESSION_NAME = /^[A-Za-z0-9.@_-]{2,64}$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;

function required(params: Params, name: string): string {
  const value = params[name];
  if (!value) throw errors.missingParameter(name);
  return value;
}

/** Syntax checks shared by both AssumeRole flavours; returns the requested duration (default 3600). */
function commonChecks(params: Params, roleArnValue: string, sessionName: string): number {
  if (!parseRoleArn(roleArnValue)) throw errors.invalidParameter('RoleArn');
  if (!SESSION_NAME.test(sessionName)) throw errors.invalidParameter('RoleSessionName');
  const duration = params.DurationSeconds === undefined ? 3600 : Number(params.DurationSeconds);
  if (!/^\d+$/.test(params.DurationSeconds ?? '3600') || !Number.isSafeInteger(duration)) throw errors.invalidParameter('DurationSeconds');
  if (params.Policy !== undefined) checkPolicy(params.Policy);
  return duration;
}

/** Session policies are only grammar-checked; permissions stay the role's (not intersected). */
function checkPolicy(policy: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch {
    throw errors.policyGrammar();
  }
  if (policy.length > 2048 || !doc || typeof doc !== 'object' || !Array.isArray((doc as { Statement?: unknown }).Statement)) {
    throw errors.policyGrammar();
  }
}

function lookupRole(state: EmulatorState, arn: string): { account: AccountSpec; role: RoleSpec } {
  const found = findRole(state.world, arn);
  if (!found) throw errors.roleNotFound(arn);
  return found;
}

function checkDuration(role: RoleSpec, duration: number): void {
  const max = role.maxSessionDuration ?? 3600;
  if (duration < 900 || duration > max) throw errors.durationOutOfRange(max);
}

function issue(state: EmulatorState, account: AccountSpec, role: RoleSpec, sessionName: string, duration: number, source: string) {
  const arn = canonicalRoleArn(account, role);
  const roleId = role.id ?? derivedRoleId(arn.toLowerCase());
  const { credentials } = state.securityTokens.issue(state.clock.now(), duration, {
    acct: account.id,
    role: arn,
    roleId,
    sess: sessionName,
    src: source,
  });
  return {
    AssumedRoleUser: { Arn: sessionArn(arn, sessionName), AssumedRoleId: `${roleId}:${sessionName}` },
    Credentials: credentials,
  };
}

function assumeRole(state: EmulatorState, params: Params, caller: Caller) {
  if (caller.kind === 'anonymous') throw errors.missingParameter('AccessKeyId');
  if (caller.kind === 'root') throw errors.rootCannotAssume();
  const roleArnValue = required(params, 'RoleArn');
  const sessionName = required(params, 'RoleSessionName');
  const duration = commonChecks(params, roleArnValue, sessionName);
  const externalId = params.ExternalId;
  if (externalId !== undefined && !EXTERNAL_ID.test(externalId)) throw errors.invalidParameter('ExternalId');
  // Caller side first (identity policy), then the role side (existence, trust), like RAM.
  requirePermission(state.world, caller, 'assumeRole', roleArnValue, 'sts:AssumeRole');
  const { account, role } = lookupRole(state, roleArnValue);
  const trusted = role.trust.some((p) => {
    // A service principal is the cloud service's own identity: nothing a customer signs with matches it.
    if ('oidcProvider' in p || 'service' in p) return false;
    const principalOk =
      'account' in p
        ? p.account === caller.accountId
        : 'user' in p
          ? caller.kind === 'user' && p.user.toLowerCase() === caller.arn.toLowerCase()
          : caller.kind === 'session' && sameRole(p.role, caller.session.role);
    return principalOk && (p.externalId === undefined || p.externalId === externalId);
  });
  if (!trusted) throw errors.trustDenied();
  checkDuration(role, duration);
  return issue(state, account, role, sessionName, duration, caller.arn);
}

function assumeRoleWithOidc(state: EmulatorState, params: Params) {
  const providerArn = required(params, 'OIDCProviderArn');
  const token = required(params, 'OIDCToken');
  const roleArnValue = required(params, 'RoleArn');
  // RoleSessionName is optional for this API.
  const sessionName = params.RoleSessionName ?? `oidc-${randomAlnum(8)}`;
  const duration = commonChecks(params, roleArnValue, sessionName);
  const provider = findOidcProvider(state.world, providerArn);
  if (!provider) throw errors.oidcProviderNotFound();
  const claims = verifyOidcToken(token, provider, state.clock.now());
  const { account, role } = lookupRole(state, roleArnValue);
  const trusted = role.trust.some(
    (p) =>
      'oidcProvider' in p &&
      sameOidcProvider(p.oidcProvider, providerArn) &&
      (!p.subjects || p.subjects.includes(claims.sub)) &&
      (!p.audiences || claims.aud.some((a) => p.audiences!.includes(a))),
  );
  if (!trusted) throw errors.oidcNoPermission();
  checkDuration(role, duration);
  const iso = (sec: number): string => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    ...issue(state, account, role, sessionName, duration, `oidc:${providerArn}:${claims.sub}`),
    OIDCTokenInfo: {
      Subject: claims.sub,
      Issuer: claims.iss,
      ClientIds: claims.aud.join(','),
      ExpirationTime: iso(claims.exp),
      IssuanceTime: iso(claims.iat ?? Math.floor(state.clock.now() / 1000)),
      VerificationInfo: 'Success',
    },
  };
}

function getCallerIdentity(caller: Caller) {
  switch (caller.kind) {
    case 'anonymous':
      throw errors.missingParameter('AccessKeyId');
    case 'root':
      return { AccountId: caller.accountId, UserId: caller.accountId, PrincipalId: caller.accountId, Arn: caller.arn, IdentityType: 'Account' };
    case 'user':
      return { AccountId: caller.accountId, UserId: caller.userName, PrincipalId: caller.userName, Arn: caller.arn, IdentityType: 'RAMUser' };
    case 'session':
      return {
        AccountId: caller.accountId,
        RoleId: caller.session.roleId,
        PrincipalId: `${caller.session.roleId}:${caller.session.sess}`,
        Arn: caller.arn,
        IdentityType: 'AssumedRoleUser',
      };
  }
}

/** Runs a verified STS request; the result is the body without RequestId. */
export function handleSts(state: EmulatorState, action: string, params: Params, caller: Caller): Record<string, unknown> {
  switch (action) {
    case 'AssumeRole':
      return assumeRole(state, params, caller);
    case 'AssumeRoleWithOIDC':
      return assumeRoleWithOidc(state, params);
    case 'GetCallerIdentity':
      return getCallerIdentity(caller);
    default:
      throw errors.apiNotFound();
  }
}
