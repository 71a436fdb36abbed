// Who a verified request comes from, and what RAM lets them do.
import { parseRoleArn, sameRole } from './arn.js';
import { findRole } from './directory.js';
import { errors } from './errors.js';
import type { Grant, Permissions, WorldSpec } from './model.js';
import type { SessionClaims } from './security-token.js';

export type Caller =
  | { kind: 'anonymous' }
  | { kind: 'root'; accountId: string; arn: string; accessKeyId: string }
  | { kind: 'user'; accountId: string; arn: string; accessKeyId: string; userName: string; permissions: Permissions }
  | { kind: 'session'; accountId: string; arn: string; accessKeyId: string; session: SessionClaims };

export type PermissionName = keyof Permissions;

/** Role session ARN as STS reports it: `acs:ram::<acct>:role/<lower-case role name>/<session>`. */
export function sessionArn(roleArnValue: string, sessionName: string): string {
  const parsed = parseRoleArn(roleArnValue);
  return parsed ? `acs:ram::${parsed.accountId}:role/${parsed.name.toLowerCase()}/${sessionName}` : roleArnValue;
}

/** Current permissions: a session gets its role's as they are now (a deleted role grants nothing). */
function permissionsOf(world: WorldSpec, caller: Caller): Permissions | 'all' {
  switch (caller.kind) {
    case 'anonymous':
      return {};
    case 'root':
      return 'all';
    case 'user':
      return caller.permissions;
    case 'session':
      return findRole(world, caller.session.role)?.role.permissions ?? {};
  }
}

function grants(grant: Grant | undefined, id: string, compare: (a: string, b: string) => boolean): boolean {
  if (grant === undefined) return false;
  if (grant === '*') return true;
  return grant.some((g) => g === '*' || compare(g, id));
}

const exact = (a: string, b: string): boolean => a === b;
const roleCompare = (a: string, b: string): boolean => sameRole(a, b);

/** True if RAM would allow; '*' as id asks for a wildcard grant (ListInstance). */
export function isAllowed(world: WorldSpec, caller: Caller, permission: PermissionName, id: string): boolean {
  const perms = permissionsOf(world, caller);
  if (perms === 'all') return true;
  const grant = perms[permission];
  if (id === '*') return grant === '*' || (Array.isArray(grant) && grant.includes('*'));
  return grants(grant, id, permission === 'assumeRole' ? roleCompare : exact);
}

/** Throws RAM's NoPermission unless allowed. */
export function requirePermission(
  world: WorldSpec,
  caller: Caller,
  permission: PermissionName,
  id: string,
  ramAction: string,
): void {
  if (isAllowed(world, caller, permission, id)) return;
  if (caller.kind === 'anonymous') throw errors.ramDenied(ramAction, 'Anonymous', '', '');
  const type = caller.kind === 'user' ? 'SubUser' : caller.kind === 'session' ? 'AssumedRoleUser' : 'Account';
  throw errors.ramDenied(ramAction, type, caller.arn, caller.accountId);
}
