// RAM (2015-05-01, RPC): GetRole, read only to explain a refused AssumeRole (whom the role's trust policy names).
import type { Budget } from '../pull-secrets/types.js';
import { CloudError } from './errors.js';
import type { CloudCaller, Credentials } from './rpc.js';

/** The role's trust policy document (JSON text). RAM's GetRole only sees roles of the caller's own account. */
export async function getRoleTrustPolicy(caller: CloudCaller, endpoint: string, creds: Credentials, roleName: string, budget: Budget): Promise<string> {
  const res = await caller.rpc<{ Role?: { AssumeRolePolicyDocument?: string }; RequestId?: string }>(endpoint, '2015-05-01', creds, 'GetRole', { RoleName: roleName }, budget);
  const doc = res.Role?.AssumeRolePolicyDocument;
  if (typeof doc !== 'string') throw new CloudError('GetRole', 'BadResponse', false, res.RequestId);
  return doc;
}
