// RAM 2015-05-01 (RPC) at `ram.aliyuncs.com`: GetRole, which shows a role's trust policy. RAM is
// account-scoped: GetRole takes a bare RoleName and looks only in the caller's own account.
import { requirePermission, type Caller } from './caller.js';
import { canonicalRoleArn, findOidcProvider, findRole } from './directory.js';
import { errors } from './errors.js';
import { derivedRoleId } from './ids.js';
import type { AccountSpec, RoleSpec, TrustPrincipal, WorldSpec } from './model.js';
import { roleArn } from './arn.js';

export const RAM_VERSION = '2015-05-01';
export const RAM_ACTIONS = new Set(['GetRole']);

type Params = Readonly<Record<string, string>>;

const CREATED = '2024-01-15T08:00:00Z';

/** One statement of a RAM trust policy, as the console and CreateRole write them. */
function statement(world: WorldSpec, p: TrustPrincipal): Record<string, unknown> {
  const base = { Action: 'sts:AssumeRole', Effect: 'Allow' };
  const externalId = (id: string | undefined) => (id === undefined ? {} : { Condition: { StringEquals: { 'sts:ExternalId': id } } });
  if ('service' in p) return { ...base, Principal: { Service: [p.service] } };
  if ('account' in p) return { ...base, Principal: { RAM: [`acs:ram::${p.account}:root`] }, ...externalId(p.externalId) };
  if ('role' in p) return { ...base, Principal: { RAM: [p.role] }, ...externalId(p.externalId) };
  if ('user' in p) return { ...base, Principal: { RAM: [p.user] }, ...externalId(p.externalId) };
  const provider = findOidcProvider(world, p.oidcProvider);
  const equals: Record<string, unknown> = {};
  if (provider) {
    equals['oidc:iss'] = provider.issuer;
    equals['oidc:aud'] = provider.clientIds;
  }
  if (p.audiences) equals['oidc:aud'] = p.audiences;
  if (p.subjects) equals['oidc:sub'] = p.subjects;
  return { ...base, Principal: { Federated: [p.oidcProvider] }, Condition: { StringEquals: equals } };
}

export function trustPolicyDocument(world: WorldSpec, role: RoleSpec): string {
  return JSON.stringify({ Statement: role.trust.map((p) => statement(world, p)), Version: '1' });
}

function getRole(world: WorldSpec, params: Params, caller: Exclude<Caller, { kind: 'anonymous' }>) {
  const name = params.RoleName;
  if (!name) throw errors.missingParameter('RoleName');
  const arn = roleArn(caller.accountId, name);
  requirePermission(world, caller, 'ramGetRole', arn, 'ram:GetRole');
  const found = findRole(world, arn);
  if (!found) throw errors.ramRoleNotFound(name);
  const { account, role }: { account: AccountSpec; role: RoleSpec } = found;
  const canonical = canonicalRoleArn(account, role);
  return {
    Role: {
      RoleId: role.id ?? derivedRoleId(canonical.toLowerCase()),
      RoleName: role.name,
      Arn: canonical,
      Description: role.description ?? '',
      AssumeRolePolicyDocument: trustPolicyDocument(world, role),
      MaxSessionDuration: role.maxSessionDuration ?? 3600,
      CreateDate: CREATED,
      UpdateDate: CREATED,
    },
  };
}

/** Runs a verified RAM request; the result is the body without RequestId. */
export function handleRam(world: WorldSpec, action: string, params: Params, caller: Caller): Record<string, unknown> {
  if (caller.kind === 'anonymous') throw errors.missingParameter('AccessKeyId');
  switch (action) {
    case 'GetRole':
      return getRole(world, params, caller);
    default:
      throw errors.apiNotFound();
  }
}
