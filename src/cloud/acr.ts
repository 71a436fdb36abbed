// Container Registry APIs: Enterprise Edition (2018-12-01, RPC) and Personal Edition (2016-06-07, ROA).
import type { Budget } from '../pull-secrets/types.js';
import { ownString } from '../util/own-string.js';
import { CloudError } from './errors.js';
import type { CloudCaller, Credentials } from './rpc.js';

export interface RegistryToken {
  username: string;
  password: string;
  /** ms since epoch */
  expiresAt: number;
}

const EE = '2018-12-01';

export async function getAuthorizationToken(caller: CloudCaller, endpoint: string, creds: Credentials, instanceId: string, budget: Budget): Promise<RegistryToken> {
  const res = await caller.rpc<{ TempUsername?: string; AuthorizationToken?: string; ExpireTime?: number | string; RequestId?: string }>(
    endpoint, EE, creds, 'GetAuthorizationToken', { InstanceId: instanceId }, budget,
  );
  const expiresAt = Number(res.ExpireTime);
  if (!res.TempUsername || !res.AuthorizationToken || !Number.isFinite(expiresAt)) throw new CloudError('GetAuthorizationToken', 'BadResponse', true, res.RequestId);
  // Tokens, domains and IDs are cached: copied so the caches do not hold the response bodies they came from.
  return { username: ownString(res.TempUsername), password: ownString(res.AuthorizationToken), expiresAt };
}

/** Every domain of the instance: internet (system and custom) and VPC. */
export async function instanceDomains(caller: CloudCaller, endpoint: string, creds: Credentials, instanceId: string, budget: Budget): Promise<string[]> {
  const [internet, vpc] = await Promise.all([
    caller.rpc<{ Endpoints?: { Domains?: { Domain?: string }[] }[] }>(endpoint, EE, creds, 'ListInstanceEndpoint', { InstanceId: instanceId, ModuleName: 'Registry' }, budget),
    caller.rpc<{ Domains?: string[] }>(endpoint, EE, creds, 'GetInstanceVpcEndpoint', { InstanceId: instanceId, ModuleName: 'Registry' }, budget),
  ]);
  const domains = new Set<string>();
  for (const e of internet.Endpoints ?? []) for (const d of e.Domains ?? []) if (d.Domain) domains.add(ownString(d.Domain.toLowerCase()));
  for (const d of vpc.Domains ?? []) domains.add(ownString(d.toLowerCase()));
  return [...domains].sort();
}

/** The instance behind a default domain `<name>-registry.<region>.cr.aliyuncs.com`. */
export async function instanceIdByName(caller: CloudCaller, endpoint: string, creds: Credentials, name: string, budget: Budget): Promise<string | undefined> {
  return (await instanceByName(caller, endpoint, creds, name, budget))?.instanceId;
}

/** The caller's instance of that name in the endpoint's region, with its state (ListInstance filtered by name). */
export async function instanceByName(caller: CloudCaller, endpoint: string, creds: Credentials, name: string, budget: Budget): Promise<InstanceSummary | undefined> {
  const res = await caller.rpc<{ Instances?: { InstanceId?: string; InstanceName?: string; InstanceStatus?: string }[] }>(
    endpoint, EE, creds, 'ListInstance', { InstanceName: name, PageNo: 1, PageSize: 30 }, budget,
  );
  const found = res.Instances?.find((i) => i.InstanceName === name && i.InstanceId);
  return found ? { instanceId: ownString(found.InstanceId!), instanceName: ownString(name), status: ownString(found.InstanceStatus ?? '') } : undefined;
}

/** Personal Edition: one token per account and region (`GET /tokens`). */
export async function personalToken(caller: CloudCaller, endpoint: string, creds: Credentials, budget: Budget): Promise<RegistryToken> {
  const res = await caller.roa<{ data?: { authorizationToken?: string; tempUserName?: string; expireDate?: number | string } }>(
    endpoint, '2016-06-07', creds, 'GetAuthorizationToken(Personal)', 'GET', '/tokens', budget,
  );
  const d = res.data;
  const expiresAt = Number(d?.expireDate);
  if (!d?.tempUserName || !d.authorizationToken || !Number.isFinite(expiresAt)) throw new CloudError('GetAuthorizationToken(Personal)', 'BadResponse', true);
  return { username: ownString(d.tempUserName), password: ownString(d.authorizationToken), expiresAt };
}

export interface InstanceSummary {
  instanceId: string;
  instanceName: string;
  status: string;
}

/** Instances in these states can serve pulls; others (STARTING, STOPPED, DELETING...) are not discovered. */
export const SERVING_INSTANCE_STATES: ReadonlySet<string> = new Set(['RUNNING']);

/** ListInstance pages are asked this big; the API's documented maximum is not published (100 for its siblings). */
const LIST_PAGE_SIZE = 30;
/** Bounds the walk whatever TotalCount says: 3,000 instances in one region is far beyond any quota. */
const LIST_MAX_PAGES = 100;

/** Every Enterprise Edition instance of the caller's account in the endpoint's region (ListInstance, paginated). */
export async function listInstances(caller: CloudCaller, endpoint: string, creds: Credentials, budget: Budget): Promise<InstanceSummary[]> {
  const out: InstanceSummary[] = [];
  for (let page = 1; page <= LIST_MAX_PAGES; page++) {
    const res = await caller.rpc<{ Instances?: { InstanceId?: string; InstanceName?: string; InstanceStatus?: string }[]; TotalCount?: number | string; PageNo?: number | string }>(
      endpoint, EE, creds, 'ListInstance', { PageNo: page, PageSize: LIST_PAGE_SIZE }, budget,
    );
    const items = res.Instances ?? [];
    for (const i of items) {
      if (i.InstanceId) out.push({ instanceId: ownString(i.InstanceId), instanceName: ownString(i.InstanceName ?? ''), status: ownString(i.InstanceStatus ?? '') });
    }
    const total = Number(res.TotalCount);
    if (items.length === 0 || (Number.isFinite(total) ? page * LIST_PAGE_SIZE >= total : items.length < LIST_PAGE_SIZE)) break;
  }
  return out;
}
