// Container Registry Enterprise Edition 2018-12-01 (RPC) at `cr.<region>.aliyuncs.com`.
// RAM is checked first (on the instance ID as given), then the instance must exist in the caller's
// account and in the endpoint's region; otherwise INSTANCE_NOT_EXIST, as scoped lookups would say.
import { requirePermission, type Caller } from './caller.js';
import { findInstance } from './directory.js';
import { errors } from './errors.js';
import { randomAlnum } from './ids.js';
import type { InstanceSpec } from './model.js';
import { recordRegistryToken, type EmulatorState } from './state.js';

export const CR_VERSION = '2018-12-01';
export const CR_ACTIONS = new Set(['GetAuthorizationToken', 'ListInstanceEndpoint', 'GetInstanceVpcEndpoint', 'GetInstance', 'ListInstance']);

/** The user name registry logins come with. */
export const TEMP_USERNAME = 'cr_temp_user';

type Params = Readonly<Record<string, string>>;
type SignedCaller = Exclude<Caller, { kind: 'anonymous' }>;

const SUCCESS = { Code: 'success', IsSuccess: true };
const DEFAULT_CREATE_TIME = Date.UTC(2024, 0, 15, 8, 0, 0);

export function systemDomain(inst: InstanceSpec, module: 'Registry' | 'Chart', vpc: boolean): string {
  return `${inst.name}-${module === 'Chart' ? 'chart' : 'registry'}${vpc ? '-vpc' : ''}.${inst.region}.cr.aliyuncs.com`;
}

/** ACR token lifetime: the configured TTL, never beyond the STS session that asked. */
export function registryTokenExpiry(state: EmulatorState, caller: SignedCaller): number {
  const now = state.clock.now();
  const ttl = now + state.settings.tokenTtlSeconds * 1000;
  return caller.kind === 'session' && !state.settings.tokenOutlivesSession ? Math.min(ttl, caller.session.exp) : ttl;
}

function instanceFor(state: EmulatorState, region: string, caller: SignedCaller, params: Params, permission: 'crGetAuthorizationToken' | 'crReadInstance', ramAction: string): InstanceSpec {
  const instanceId = params.InstanceId;
  if (!instanceId) throw errors.missingParameter('InstanceId');
  requirePermission(state.world, caller, permission, instanceId, ramAction);
  const inst = findInstance(state.world, instanceId);
  if (!inst || inst.region !== region || inst.accountId !== caller.accountId) {
    throw errors.instanceNotExist(state.settings.instanceNotExistStatus);
  }
  return inst;
}

function moduleName(params: Params): 'Registry' | 'Chart' {
  const module = params.ModuleName ?? 'Registry';
  if (module !== 'Registry' && module !== 'Chart') throw errors.paramInvalid('ModuleName');
  return module;
}

function instanceSummary(inst: InstanceSpec) {
  const created = inst.createTime ?? DEFAULT_CREATE_TIME;
  return {
    InstanceId: inst.id,
    InstanceName: inst.name,
    InstanceSpecification: inst.specification ?? 'Enterprise_Basic',
    InstanceStatus: inst.status ?? 'RUNNING',
    RegionId: inst.region,
    CreateTime: String(created),
    ModifiedTime: String(created),
  };
}

function getAuthorizationToken(state: EmulatorState, region: string, params: Params, caller: SignedCaller) {
  const inst = instanceFor(state, region, caller, params, 'crGetAuthorizationToken', 'cr:GetAuthorizationToken');
  const password = randomAlnum(64);
  const expiresAt = registryTokenExpiry(state, caller);
  recordRegistryToken(state, {
    edition: 'enterprise',
    username: TEMP_USERNAME,
    password,
    instanceId: inst.id,
    region,
    accountId: caller.accountId,
    principal: caller.arn,
    holder: caller,
    expiresAt,
  });
  return { ...SUCCESS, AuthorizationToken: password, TempUsername: TEMP_USERNAME, ExpireTime: expiresAt };
}

function listInstanceEndpoint(state: EmulatorState, region: string, params: Params, caller: SignedCaller) {
  const inst = instanceFor(state, region, caller, params, 'crReadInstance', 'cr:ListInstanceEndpoint');
  const module = moduleName(params);
  const domains = [{ Domain: systemDomain(inst, module, false), Type: 'SYSTEM' }];
  if (module === 'Registry') for (const d of inst.customDomains ?? []) domains.push({ Domain: d, Type: 'USER' });
  const enabled = inst.internetEnabled ?? true;
  return {
    ...SUCCESS,
    Endpoints: [
      {
        EndpointType: 'internet',
        Enable: enabled,
        Status: enabled ? 'RUNNING' : 'STOPPED',
        AclEnable: false,
        AclEntries: [],
        Domains: domains,
        LinkedVpcs: [],
      },
    ],
  };
}

function getInstanceVpcEndpoint(state: EmulatorState, region: string, params: Params, caller: SignedCaller) {
  const inst = instanceFor(state, region, caller, params, 'crReadInstance', 'cr:GetInstanceVpcEndpoint');
  const module = moduleName(params);
  const vpcs = inst.linkedVpcs ?? [];
  return {
    ...SUCCESS,
    Enable: vpcs.length > 0,
    Domains: [systemDomain(inst, module, true)],
    LinkedVpcs: vpcs.map((v, i) => ({
      VpcId: v.vpcId,
      VswitchId: v.vswitchId ?? '',
      Ip: v.ip ?? `172.16.0.${10 + i}`,
      DefaultAccess: false,
      Status: 'RUNNING',
    })),
  };
}

function getInstance(state: EmulatorState, region: string, params: Params, caller: SignedCaller) {
  const inst = instanceFor(state, region, caller, params, 'crReadInstance', 'cr:GetInstance');
  return { ...SUCCESS, ...instanceSummary(inst) };
}

/** cr:ListInstance is granted on `instance/*` only, so an instance-scoped grant does not cover it. */
function listInstance(state: EmulatorState, region: string, params: Params, caller: SignedCaller) {
  requirePermission(state.world, caller, 'crReadInstance', '*', 'cr:ListInstance');
  const pageNo = Math.max(1, Number.parseInt(params.PageNo ?? '1', 10) || 1);
  const pageSize = Math.min(100, Math.max(1, Number.parseInt(params.PageSize ?? '30', 10) || 30));
  const matches = (state.world.instances ?? []).filter(
    (i) =>
      i.accountId === caller.accountId &&
      i.region === region &&
      (params.InstanceName === undefined || i.name === params.InstanceName) &&
      (params.InstanceStatus === undefined || (i.status ?? 'RUNNING') === params.InstanceStatus),
  );
  return {
    ...SUCCESS,
    Instances: matches.slice((pageNo - 1) * pageSize, pageNo * pageSize).map(instanceSummary),
    PageNo: pageNo,
    PageSize: pageSize,
    TotalCount: matches.length,
  };
}

/** Runs a verified CR Enterprise request; the result is the body without RequestId. */
export function handleCr(state: EmulatorState, region: string, action: string, params: Params, caller: Caller): Record<string, unknown> {
  if (caller.kind === 'anonymous') throw errors.missingParameter('AccessKeyId');
  switch (action) {
    case 'GetAuthorizationToken':
      return getAuthorizationToken(state, region, params, caller);
    case 'ListInstanceEndpoint':
      return listInstanceEndpoint(state, region, params, caller);
    case 'GetInstanceVpcEndpoint':
      return getInstanceVpcEndpoint(state, region, params, caller);
    case 'GetInstance':
      return getInstance(state, region, params, caller);
    case 'ListInstance':
      return listInstance(state, region, params, caller);
    default:
      throw errors.apiNotFound();
  }
}
