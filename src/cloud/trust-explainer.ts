// Finds out why a role refused the webhook: its own principal (GetCallerIdentity, once) and, for a role of its
// own account, the role's trust policy (RAM GetRole, when the webhook may read it). Only runs after a refusal,
// within the review's deadline; whatever it cannot learn, the advice says so and still gives the fix.
import type { Budget } from '../pull-secrets/types.js';
import type { Identity } from './identity.js';
import { getRoleTrustPolicy } from './ram.js';
import type { CloudCaller } from './rpc.js';
import { getCallerIdentity } from './sts.js';
import { missingPermissionAdvice, principalFromIdentity, summarizeTrustPolicy, trustDenialAdvice, type WebhookPrincipal } from './trust-advice.js';

export interface TrustExplainerOptions {
  identity: Identity;
  caller: CloudCaller;
  stsEndpoint: string;
  ramEndpoint: string;
  now?: () => number;
}

/** A failed GetCallerIdentity is retried no more often than this. */
const PRINCIPAL_RETRY_MS = 60_000;
/** The explanation never takes more than this of a review's time, and leaves this much for the answer. */
const EXPLAIN_MAX_MS = 2000;
const EXPLAIN_MARGIN_MS = 250;
const ROLE_ARN = /^acs:ram::(\d{1,32}):role\/([A-Za-z0-9.-]{1,64})$/;

export class TrustExplainer {
  private known?: WebhookPrincipal;
  private pending?: Promise<WebhookPrincipal | undefined>;
  private failedAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly opts: TrustExplainerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The webhook's own principal, found once and kept (it does not change while the process runs). */
  principal(budget: Budget): Promise<WebhookPrincipal | undefined> {
    if (this.known) return Promise.resolve(this.known);
    if (this.now() - this.failedAt < PRINCIPAL_RETRY_MS) return Promise.resolve(undefined);
    this.pending ??= (async () => {
      try {
        const creds = await this.opts.identity.credentials();
        const found = principalFromIdentity(await getCallerIdentity(this.opts.caller, this.opts.stsEndpoint, creds, budget));
        if (!found) this.failedAt = this.now();
        this.known = found;
        return found;
      } catch {
        this.failedAt = this.now();
        return undefined;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  /** Advice for a refused AssumeRole of `roleArn` with the webhook's own identity. */
  async explain(roleArn: string, deniedAction: string | undefined, budget: Budget): Promise<string> {
    const sub: Budget = { deadline: Math.min(budget.deadline - EXPLAIN_MARGIN_MS, this.now() + EXPLAIN_MAX_MS), signal: budget.signal };
    const principal = await this.principal(sub);
    if (deniedAction) return missingPermissionAdvice(deniedAction, principal, this.opts.identity.source);
    let trust;
    const role = ROLE_ARN.exec(roleArn);
    // GetRole takes a bare name and looks in the caller's account: only ask about a role of that account.
    if (principal && role && role[1] === principal.accountId && principal.kind !== 'account') {
      try {
        const creds = await this.opts.identity.credentials();
        trust = summarizeTrustPolicy(await getRoleTrustPolicy(this.opts.caller, this.opts.ramEndpoint, creds, role[2]!, sub));
      } catch {
        trust = undefined; // no ram:GetRole, or RAM unreachable: the advice says it could not check
      }
    }
    return trustDenialAdvice({ roleArn, principal, identitySource: this.opts.identity.source, trust });
  }
}
