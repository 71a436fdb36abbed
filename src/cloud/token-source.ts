// The credential chain end to end: webhook identity -> service role -> user role -> registry tokens, cached
// per chain and instance until `expiry - threshold`, with single-flight loads and deadlines from the review.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef, RoleChain } from '../acr/model.js';
import type { Budget, DockerAuths, RegistryCredential, TokenSource } from '../pull-secrets/types.js';
import { DenialError } from '../pull-secrets/types.js';
import { getAuthorizationToken, instanceDomains, instanceIdByName, personalToken, type RegistryToken } from './acr.js';
import { ExpiringCache, type CacheOutcome, type Expiring } from './cache.js';
import { denialFor, isServiceRoleRefusal, stepName, timeoutDenial, type Step } from './denials.js';
import type { Endpoints } from './endpoints.js';
import type { Identity } from './identity.js';
import type { CloudCaller, Credentials } from './rpc.js';
import { assumeRole, roleSessionName, type SessionCredentials } from './sts.js';

export interface TokenSourceOptions {
  identity: Identity;
  endpoints: Endpoints;
  caller: CloudCaller;
  sessionDurationSeconds: number;
  /** Cached credentials and tokens are renewed this long before they expire (a function when it can change). */
  refreshThresholdMs: number | (() => number);
  /** Why a service role refused the webhook (trust-explainer.ts); called only after such a refusal. */
  explainRefusal?: (roleArn: string, deniedAction: string | undefined, budget: Budget) => Promise<string>;
  /** ExternalId to send when assuming a role, if the operator configured one. */
  externalIdFor?: (roleArn: string) => string | undefined;
  /** Entries per cache (sessions, registry tokens, instance metadata); default DEFAULT_CACHE_ENTRIES. */
  maxEntries?: number;
  negativeTtlMs?: number;
  now?: () => number;
  observeCache?: (cache: string, outcome: CacheOutcome) => void;
}

/** Instance domains and name lookups change rarely; tokens do not decide how long they stay. */
const METADATA_TTL_MS = 10 * 60_000;
/**
 * A cached session or token stops being usable when the Secret built from it is renewed (both at expiry minus
 * the refresh threshold), so entries only serve loads close together in time: a burst, or several Secrets of one
 * chain. Real STS SecurityTokens (no documented limit) are commonly over half a kilobyte, so 5,000 entries per
 * cache could cost tens of MiB of a 128 MiB heap for little; 1,000 keep every burst's chains.
 */
export const DEFAULT_CACHE_ENTRIES = 1000;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface ChainCredentials {
  creds: Credentials;
  /** Names these credentials: the role chain and the namespace's session (what they obtain is cached under it). */
  key: string;
  /** The role chain alone, without the session: failures are remembered per group, not per namespace. */
  group: string;
  as: string;
  /** ms since epoch; Infinity for the webhook's own identity. */
  expiresAt: number;
}

export class AcrTokenSource implements TokenSource {
  private readonly sessions: ExpiringCache<SessionCredentials>;
  private readonly tokens: ExpiringCache<RegistryToken>;
  private readonly metadata: ExpiringCache<string[]>;
  /** Per group (role chain, and call): recently worked (true) or failed (the denial, for negativeTtlMs). */
  private readonly health: ExpiringCache<true>;
  private readonly now: () => number;
  private readonly threshold: () => number;

  constructor(private readonly opts: TokenSourceOptions) {
    this.now = opts.now ?? Date.now;
    const t = opts.refreshThresholdMs;
    this.threshold = typeof t === 'function' ? t : () => t;
    const common = { maxEntries: opts.maxEntries ?? DEFAULT_CACHE_ENTRIES, now: this.now, observe: opts.observeCache };
    // Failures are remembered in `health`, per group; the value caches only hold successes.
    this.sessions = new ExpiringCache({ name: 'sts', negativeTtlMs: 0, ...common });
    this.tokens = new ExpiringCache({ name: 'token', negativeTtlMs: 0, ...common });
    this.metadata = new ExpiringCache({ name: 'instance', negativeTtlMs: 0, ...common });
    this.health = new ExpiringCache({ name: 'role', negativeTtlMs: opts.negativeTtlMs ?? 5000, ...common });
  }

  async dockerAuths(binding: Binding, requester: string, budget: Budget): Promise<DockerAuths> {
    const chain = await this.chainCredentials(binding.chain, requester, budget);
    const parts = await Promise.all(binding.registries.map((r) => this.registry(r, chain, budget)));
    const auths: Record<string, RegistryCredential> = {};
    // Tokens are already capped at the session that obtained them (see token()).
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const part of parts) {
      for (const domain of part.domains) auths[domain] = { username: part.token.username, password: part.token.password };
      expiresAt = Math.min(expiresAt, part.token.expiresAt);
    }
    return { auths, expiresAt };
  }

  /** Credentials of a chain's last hop (the webhook's own for {}), cached like the admission path's. */
  async credentialsFor(chain: RoleChain, requester: string, budget: Budget): Promise<Credentials> {
    return (await this.chainCredentials(chain, requester, budget)).creds;
  }

  /**
   * Final credentials of a chain plus a key naming them (for caching what they obtain), a label for messages and
   * when they expire (what they obtain must not outlive them).
   */
  private async chainCredentials(chain: RoleChain, requester: string, budget: Budget): Promise<ChainCredentials> {
    const own = () =>
      tracked(budget, { kind: 'identity' }, async () => {
        try {
          return await this.opts.identity.credentials();
        } catch (e) {
          throw denialFor({ kind: 'identity' }, e);
        }
      });
    if (!chain.serviceArn) {
      // The webhook's own identity is renewed by its provider; it puts no bound on tokens.
      return { creds: await own(), key: 'self', group: 'self', as: "the webhook's own identity", expiresAt: Number.POSITIVE_INFINITY };
    }
    const sts = this.opts.endpoints.sts;
    const sessionName = roleSessionName(requester, sha);
    const serviceStep: Step = { kind: 'assume-service', roleArn: chain.serviceArn, endpoint: sts };
    const service = await this.assume(chain.serviceArn, `${chain.serviceArn}|${sessionName}`, own, chain.serviceArn, sessionName, serviceStep, budget);
    if (!chain.userArn) {
      return { creds: service, key: `${chain.serviceArn}|${sessionName}`, group: chain.serviceArn, as: chain.serviceArn, expiresAt: service.expiresAt };
    }
    const group = `${chain.serviceArn}|${chain.userArn}`;
    const key = `${group}|${sessionName}`;
    const userStep: Step = { kind: 'assume-user', roleArn: chain.userArn, serviceArn: chain.serviceArn, endpoint: sts };
    const user = await this.assume(group, key, async () => service, chain.userArn, sessionName, userStep, budget);
    return { creds: user, key, group, as: chain.userArn, expiresAt: user.expiresAt };
  }

  private assume(group: string, key: string, from: () => Promise<Credentials>, roleArn: string, sessionName: string, step: Step, budget: Budget): Promise<SessionCredentials> {
    const load = async (): Promise<Expiring<SessionCredentials>> => {
      const creds = await from();
      try {
        const session = await assumeRole(
          this.opts.caller,
          this.opts.endpoints.sts,
          creds,
          { roleArn, roleSessionName: sessionName, durationSeconds: this.opts.sessionDurationSeconds, externalId: this.opts.externalIdFor?.(roleArn) },
          budget,
        );
        return { value: session, usableUntil: session.expiresAt - this.threshold() };
      } catch (e) {
        if (isServiceRoleRefusal(step, e) && this.opts.explainRefusal) {
          throw denialFor(step, e, await this.opts.explainRefusal(roleArn, e.deniedAction, budget).catch(() => undefined));
        }
        throw denialFor(step, e);
      }
    };
    // The service hop's identity load records its own step; AssumeRole is this one.
    return this.gated(`assume|${group}`, this.sessions, key, load, (s) => s.expiresAt - this.threshold(), step, budget);
  }

  /**
   * `cache.get(key, load)` for one namespace, through the health of its group (the role chain without the
   * namespace's session name, and the call): a failure is remembered for the whole group, so one broken or
   * throttled role used from many namespaces is not called again per namespace; and while a group has no recent
   * success, concurrent namespaces wait for the first one's answer instead of each calling (and retrying).
   * Successes stay per namespace (its own RoleSessionName in the account owner's audit trail).
   */
  private async gated<V>(group: string, cache: ExpiringCache<V>, key: string, load: () => Promise<Expiring<V>>, healthyUntil: (v: V) => number, step: Step, budget: Budget): Promise<V> {
    return tracked(budget, step, async () => {
      let probe: { ok: true; value: V } | { ok: false; error: unknown } | undefined;
      await this.health.get(group, async () => {
        try {
          const value = await cache.get(key, load);
          probe = { ok: true, value };
          return { value: true, usableUntil: healthyUntil(value) };
        } catch (e) {
          if (!ranOutOfTime(e)) throw e;
          // The probe's own deadline says nothing about the role: not remembered, and whoever waited on this probe
          // tries with their own time.
          probe = { ok: false, error: e };
          return { value: true, usableUntil: 0 };
        }
      });
      if (probe) {
        if (probe.ok) return probe.value;
        throw probe.error;
      }
      try {
        return await cache.get(key, load);
      } catch (e) {
        if (!ranOutOfTime(e)) this.health.fail(group, e);
        throw e;
      }
    });
  }

  private async registry(r: RegistryRef, chain: ChainCredentials, budget: Budget): Promise<{ domains: string[]; token: RegistryToken }> {
    if (r.kind === 'personal') {
      const endpoint = this.opts.endpoints.cr(r.region);
      const step: Step = { kind: 'personal', region: r.region, as: chain.as, endpoint };
      const token = await this.token(`p|${r.region}`, chain, step, budget, () => personalToken(this.opts.caller, endpoint, chain.creds, budget));
      return { domains: r.domains, token };
    }
    const region = r.region ?? '';
    const endpoint = this.opts.endpoints.cr(region);
    const stepFor = (what: string, actions: string, instanceId: string): Step => ({ kind: 'instance', what, actions, instanceId, region, as: chain.as, endpoint });
    let instanceId: string;
    if (r.kind === 'instance-name') {
      const found = await this.meta(`name|${region}|${r.instanceName}`, chain, stepFor('looking up the instance by name', 'cr:ListInstance (on all instances of the account)', r.instanceName), budget, async () => {
        const id = await instanceIdByName(this.opts.caller, endpoint, chain.creds, r.instanceName, budget);
        return id ? [id] : [];
      });
      if (!found[0]) {
        throw new DenialError(
          `no ACR Enterprise Edition instance named ${r.instanceName} in ${region} is visible to ${chain.as}: check the image's registry domain, or name the instance in k8s.aliyun.com/acr-instance-ids`,
          400,
          'BadRequest',
        );
      }
      instanceId = found[0];
    } else {
      instanceId = r.instanceId;
    }
    const [domains, token] = await Promise.all([
      r.kind === 'instance' && r.domains
        ? Promise.resolve(r.domains)
        : this.meta(`domains|${region}|${instanceId}`, chain, stepFor('listing the domains', 'cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint on the instance', instanceId), budget, () => instanceDomains(this.opts.caller, endpoint, chain.creds, instanceId, budget)),
      this.token(`i|${region}|${instanceId}`, chain, stepFor('getting a registry token', 'cr:GetAuthorizationToken on the instance', instanceId), budget, () =>
        getAuthorizationToken(this.opts.caller, endpoint, chain.creds, instanceId, budget),
      ),
    ]);
    return { domains, token };
  }

  /** A token never outlives the session that obtained it, whatever ExpireTime the registry gave it. */
  private token(call: string, chain: ChainCredentials, step: Step, budget: Budget, load: () => Promise<RegistryToken>): Promise<RegistryToken> {
    const usable = (t: RegistryToken) => t.expiresAt - this.threshold();
    const loadCapped = async (): Promise<Expiring<RegistryToken>> => {
      try {
        const loaded = await load();
        const token = loaded.expiresAt > chain.expiresAt ? { ...loaded, expiresAt: chain.expiresAt } : loaded;
        return { value: token, usableUntil: usable(token) };
      } catch (e) {
        throw denialFor(step, e);
      }
    };
    return this.gated(`${call}|${chain.group}`, this.tokens, `${call}|${chain.key}`, loadCapped, usable, step, budget);
  }

  private meta(call: string, chain: ChainCredentials, step: Step, budget: Budget, load: () => Promise<string[]>): Promise<string[]> {
    const until = () => this.now() + METADATA_TTL_MS;
    const loadWrapped = async (): Promise<Expiring<string[]>> => {
      try {
        return { value: await load(), usableUntil: until() };
      } catch (e) {
        throw denialFor(step, e);
      }
    };
    return this.gated(`${call}|${chain.group}`, this.metadata, `${call}|${chain.key}`, loadWrapped, until, step, budget);
  }

  /** Entries held, for the memory benchmark. */
  get cachedEntries(): number {
    return this.sessions.size + this.tokens.size + this.metadata.size + this.health.size;
  }
}

/** A denial because one review's deadline passed (not something the role or service said). */
const ranOutOfTime = (e: unknown) => e instanceof DenialError && e.reason === 'Timeout';

/** Runs `work` as `step` of the budget's progress record, so a deadline passing meanwhile names it. */
function tracked<T>(budget: Budget, step: Step, work: () => Promise<T>): Promise<T> {
  return budget.progress ? budget.progress.step({ label: stepName(step), timedOut: () => timeoutDenial(step) }, work) : work();
}
