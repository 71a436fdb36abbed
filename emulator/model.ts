// The emulated world as plain data: accounts, their RAM identities and roles, CR instances.
import type { JsonWebKey } from 'node:crypto';

// Tests build one (or take demoState()) and may mutate it while the emulator runs; every request
// looks things up afresh, so a change applies to the next call.

/** IDs (instance IDs, role ARNs, region IDs) an identity is allowed on, or '*' for all. */
export type Grant = '*' | readonly string[];

/** What RAM identity policies allow an identity (user or role). Absent means denied, as in RAM. */
export interface Permissions {
  /** `sts:AssumeRole`: role ARNs the identity may assume (role names compared case-insensitively). */
  assumeRole?: Grant;
  /** `cr:GetAuthorizationToken` on Enterprise instances, by instance ID. */
  crGetAuthorizationToken?: Grant;
  /** `cr:ListInstanceEndpoint`, `cr:GetInstanceVpcEndpoint`, `cr:GetInstance` by instance ID; `cr:ListInstance` needs '*'. */
  crReadInstance?: Grant;
  /** Personal Edition `cr:GetAuthorizationToken`, by region ID. */
  crPersonalRegions?: Grant;
  /** RAM `ram:GetRole`, by role ARN (RAM's GetRole only looks in the caller's own account). */
  ramGetRole?: Grant;
  /** `cr:PullRepository` by instance ID: what a registry login (temporary token) may pull. */
  crPullRepository?: Grant;
  /** `cr:PushRepository` by instance ID: what a registry login may push. */
  crPushRepository?: Grant;
}

export interface AccessKeySpec {
  id: string;
  secret: string;
  /** Default 'Active'. */
  status?: 'Active' | 'Inactive';
}

export interface UserSpec {
  name: string;
  accessKeys: AccessKeySpec[];
  permissions?: Permissions;
}

/** One principal a role trusts (its trust policy is the list of these; any match allows). */
export type TrustPrincipal =
  /** Any RAM user or role session of this account (the RAM trust `"RAM": ["acs:ram::<id>:root"]`). */
  | { account: string; externalId?: string }
  /** Sessions of this specific role (`acs:ram::<id>:role/<name>`). */
  | { role: string; externalId?: string }
  /** This RAM user (`acs:ram::<id>:user/<name>`). */
  | { user: string; externalId?: string }
  /**
   * A cloud service (`"Service": ["eci.aliyuncs.com"]`): a "normal service role" as the ECI docs create it.
   * Only that service can assume it; no AccessKey, role session or OIDC token of a customer ever matches.
   */
  | { service: string }
  /**
   * Tokens from this OIDC provider (`acs:ram::<id>:oidc-provider/<name>`), with RRSA's trust-policy conditions:
   * `subjects` is `oidc:sub`, `audiences` is `oidc:aud` (StringEquals; absent: any).
   */
  | { oidcProvider: string; subjects?: string[]; audiences?: string[] };

export interface RoleSpec {
  /** 1-64 of letters, digits, `.`, `-`; matched case-insensitively like RAM. */
  name: string;
  /** RoleId shown in AssumedRoleId; derived from the ARN when absent. */
  id?: string;
  /** 3600-43200, default 3600. */
  maxSessionDuration?: number;
  /** Shown by RAM GetRole. */
  description?: string;
  trust: TrustPrincipal[];
  permissions?: Permissions;
}

export interface OidcProviderSpec {
  name: string;
  /** Must equal the token's `iss`. */
  issuer: string;
  /** Accepted `aud` values. */
  clientIds: string[];
  /**
   * The issuer's public keys (its `/openid/v1/jwks` or `jwks_uri` document): a token must be signed by one.
   * RAM fetches them from the issuer; here they are given (a test reads them from its API server).
   */
  jwks: { keys: JsonWebKey[] };
}

export interface AccountSpec {
  /** Numeric account (UID), 16 digits in practice. */
  id: string;
  /** Root (main account) keys: full rights, but may not assume roles. */
  rootAccessKeys?: AccessKeySpec[];
  users?: UserSpec[];
  roles?: RoleSpec[];
  oidcProviders?: OidcProviderSpec[];
}

export interface LinkedVpc {
  vpcId: string;
  vswitchId?: string;
  ip?: string;
}

export interface InstanceSpec {
  /** `cri-` + lower-case alphanumerics; `default` for Apsara Stack's instance. */
  id: string;
  /** Default domains derive from it: `<name>-registry[-vpc].<region>.cr.aliyuncs.com`. */
  name: string;
  region: string;
  /** Owning account. */
  accountId: string;
  /** Default 'RUNNING'. */
  status?: string;
  /** Default 'Enterprise_Basic'. */
  specification?: string;
  /** Custom (Type USER) internet domains of the Registry module. */
  customDomains?: string[];
  /** Internet endpoint switch, default true. */
  internetEnabled?: boolean;
  linkedVpcs?: LinkedVpc[];
  /** Epoch ms; default a fixed date. */
  createTime?: number;
}

/** A Personal Edition registry: one per account and region. */
export interface PersonalRegistrySpec {
  accountId: string;
  region: string;
}

export interface WorldSpec {
  accounts: AccountSpec[];
  instances?: InstanceSpec[];
  personalRegistries?: PersonalRegistrySpec[];
}
