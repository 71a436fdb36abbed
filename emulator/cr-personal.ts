// Container Registry Personal Edition 2016-06-07 (ROA): `GET /tokens` on `cr.<region>.aliyuncs.com`.
import { requirePermission, type Caller } from './caller.js';
import { registryTokenExpiry, TEMP_USERNAME } from './cr.js';
import { hasPersonalRegistry } from './directory.js';
import { errors } from './errors.js';
import { randomAlnum } from './ids.js';
import { recordRegistryToken, type EmulatorState } from './state.js';

export const CR_PERSONAL_VERSION = '2016-06-07';

/** The action name a ROA route counts under (calls, faults). */
export function personalActionFor(method: string, resource: string): string {
  return method === 'GET' && resource === '/tokens' ? 'GetAuthorizationToken' : `${method} ${resource}`;
}

/** Runs a verified Personal Edition request; the result is the whole JSON body. */
export function handleCrPersonal(state: EmulatorState, region: string, method: string, resource: string, caller: Caller, requestId: string): Record<string, unknown> {
  if (method !== 'GET' || resource !== '/tokens') throw errors.apiNotFound();
  if (caller.kind === 'anonymous') throw errors.missingAuthorization();
  requirePermission(state.world, caller, 'crPersonalRegions', region, 'cr:GetAuthorizationToken');
  if (!hasPersonalRegistry(state.world, caller.accountId, region)) throw errors.personalUserNotExist();
  const password = randomAlnum(64);
  const expiresAt = registryTokenExpiry(state, caller);
  recordRegistryToken(state, {
    edition: 'personal',
    username: TEMP_USERNAME,
    password,
    region,
    accountId: caller.accountId,
    principal: caller.arn,
    holder: caller,
    expiresAt,
  });
  return { data: { authorizationToken: password, tempUserName: TEMP_USERNAME, expireDate: expiresAt }, requestId };
}
