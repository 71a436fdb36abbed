// Why a role refused the webhook, in words: roles built the way ECI's docs say are "normal service roles" that
// trust only the ECI service, and the webhook is not ECI. Pure functions over what the webhook could find out
// (its own principal, and the role's trust policy when RAM lets it read it); the I/O is in trust-explainer.ts.
import type { CallerIdentity } from './sts.js';

/** The webhook's own identity, as a trust policy must name it. */
export interface WebhookPrincipal {
  /** What GetCallerIdentity said (a role session's ARN for RRSA and ECS roles). */
  arn: string;
  accountId: string;
  kind: 'ram-user' | 'role' | 'account';
  /** The ARN to put under `Principal.RAM`: the user, or the role behind the session; the account's root for root keys. */
  trustArn: string;
}

const USER_ARN = /^acs:ram::(\d{1,32}):user\/([^/\s]{1,128})$/;
// Sessions are reported as role/<name>/<session> (AssumeRole's AssumedRoleUser) or assumed-role/<name>/<session>.
const SESSION_ARN = /^acs:ram::(\d{1,32}):(?:assumed-role|role)\/([A-Za-z0-9.-]{1,64})\/[^\s]{1,128}$/i;

export function principalFromIdentity(id: CallerIdentity): WebhookPrincipal | undefined {
  if (id.identityType === 'RAMUser' && USER_ARN.test(id.arn)) return { arn: id.arn, accountId: id.accountId, kind: 'ram-user', trustArn: id.arn };
  if (id.identityType === 'AssumedRoleUser') {
    const m = SESSION_ARN.exec(id.arn);
    if (m) return { arn: id.arn, accountId: id.accountId, kind: 'role', trustArn: `acs:ram::${m[1]}:role/${m[2]}` };
  }
  if (id.identityType === 'Account') return { arn: id.arn, accountId: id.accountId, kind: 'account', trustArn: `acs:ram::${id.accountId}:root` };
  return undefined;
}

/** Who a trust policy lets in, by principal type (only Allow statements on sts:AssumeRole count). */
export interface TrustSummary {
  services: string[];
  ram: string[];
  federated: string[];
}

const list = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Undefined when the document is not a trust policy this code understands. */
export function summarizeTrustPolicy(doc: string): TrustSummary | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(doc);
  } catch {
    return undefined;
  }
  const statements = (parsed as { Statement?: unknown } | null)?.Statement;
  if (!Array.isArray(statements)) return undefined;
  const out: TrustSummary = { services: [], ram: [], federated: [] };
  for (const s of statements as Record<string, unknown>[]) {
    if (s?.Effect !== 'Allow' || !list(s.Action).some((a) => a === 'sts:AssumeRole' || a === 'sts:*' || a === '*')) continue;
    const p = s.Principal as Record<string, unknown> | undefined;
    out.services.push(...list(p?.Service));
    out.ram.push(...list(p?.RAM));
    out.federated.push(...list(p?.Federated));
  }
  return out;
}

/** What the webhook learnt about a refused role. */
export interface TrustFindings {
  roleArn: string;
  /** Undefined when GetCallerIdentity failed. */
  principal?: WebhookPrincipal;
  /** `rrsa (...)`, `ecs-ram-role`, `env (AccessKey)`, `static:...` (identity.ts). */
  identitySource: string;
  /** Undefined when RAM would not show the role (another account, no ram:GetRole, or unreachable). */
  trust?: TrustSummary;
}

/** The trust-policy statement that lets the webhook's identity assume a role. */
export function trustStatement(principalArn: string): string {
  return JSON.stringify({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { RAM: [principalArn] } });
}

function describePrincipal(p: WebhookPrincipal, source: string): string {
  if (p.kind === 'ram-user') return `the RAM user ${p.arn}`;
  if (p.kind === 'account') return `the root account ${p.accountId}`;
  const via = source.startsWith('rrsa') ? 'its RRSA role' : source === 'ecs-ram-role' ? "the ECS instance's RAM role" : 'a RAM role';
  return `${via} ${p.trustArn} (session ${p.arn})`;
}

/**
 * The sentence after "assuming service role X failed: NoPermission": why, and the exact change. Built from ARNs,
 * service names and account IDs only (all from RAM/STS answers about the webhook's own account), never a secret.
 */
export function trustDenialAdvice(f: TrustFindings): string {
  const p = f.principal;
  if (p?.kind === 'account') {
    return `The webhook runs with the root account's AccessKey (${p.accountId}), and RAM roles may not be assumed by root accounts: give the webhook a RAM user's AccessKey, RRSA or an ECS instance RAM role instead`;
  }
  const who = p ? describePrincipal(p, f.identitySource) : "the webhook's identity (unknown: GetCallerIdentity failed)";
  let why: string;
  const t = f.trust;
  const names = t && p && t.ram.some((r) => r === p.trustArn || r === `acs:ram::${p.accountId}:root`);
  if (t && names) {
    return `The role's trust policy names ${who}, so the refusal comes from a condition (an ExternalId: see credentials.externalIds) or from the webhook's own RAM policy (it needs sts:AssumeRole on the role)`;
  }
  if (t && t.services.length > 0 && t.ram.length === 0 && t.federated.length === 0) {
    why = `The role trusts only the Alibaba Cloud service ${t.services.join(', ')}: it is a normal service role, as ECI's documentation creates it, and only that service can assume it. The webhook is not ECI; it is ${who}`;
  } else if (t) {
    why = `The role's trust policy does not name the webhook, which is ${who}`;
  } else {
    why =
      `The role's trust policy does not let the webhook in (RAM would not show the policy to check it). A role created for ECI as its documentation describes ` +
      `(trusted service: ECI) trusts only eci.aliyuncs.com, and the webhook is not ECI; it is ${who}`;
  }
  const fix = p
    ? `Add this statement to the role's trust policy: ${trustStatement(p.trustArn)}`
    : `Add a statement naming the webhook's identity to the role's trust policy: {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::<account>:user/<name> or acs:ram::<account>:role/<RRSA or ECS role>"]}}`;
  const keep = !t || t.services.length > 0 ? ' (keep the service statement if ECI still uses the role)' : '';
  return `${why}. ${fix}${keep}; the webhook's identity also needs sts:AssumeRole on the role`;
}

/** For a refusal of the caller's own policy (RAM's AccessDeniedDetail names the action). */
export function missingPermissionAdvice(action: string, p: WebhookPrincipal | undefined, source: string): string {
  const who = p ? describePrincipal(p, source) : "the webhook's identity";
  return `RAM refused ${action} to ${who}: grant it ${action} on the role (for example with the AliyunSTSAssumeRoleAccess policy, or a custom policy on the role's ARN)`;
}
