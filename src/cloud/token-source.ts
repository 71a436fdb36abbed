// The credential chain end to end: webhook identity -> service role -> user role -> registry tokens, cached
// per chain and instance until `expiry - threshold`, with single-flight loads and deadlines from the review.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef, RoleChain } from '../acr/model.js';
import type { Budget, DockerAuths, RegistryCredential, TokenSource } from '../pull-secrets/types.js';
import { DenialError } from '../pull-secrets/types.js';
import { getAuthorizationToken, instanceDomains, instanceIdByName, personalToken, type RegistryToken } from './acr.js';
import { ExpiringCache, type CacheOutcome, type PersistentStore } from './cache.js';
import { denialFor, isServiceRoleRefusal, type Step } from './denials.js';
import type { Endpoints } from './endpoints.js';
import type { Identity } from './identity.js';
import type { CloudCaller, Credentials } from './rpc.js';
import { assumeRole, assumeRoleWithOidc, roleSessionName, type SessionCredentials } from './sts.js';

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
  /** A cache that outlives the process (the credential provider's disk cache); memory only when absent. */
  persistent?: PersistentStore;
  /** Whose identity a chain without service ARN uses, for messages: "the webhook" (default), "the node". */
  self?: string;
}

/**
 * A workload's own identity (KEP-4412): the first hop of its chain is assumed with its Kubernetes
 * ServiceAccount token through RRSA (AssumeRoleWithOIDC) instead of with the front end's identity.
 */
export interface WorkloadIdentity {
  /** The RAM OIDC provider that trusts the cluster's service-account issuer. */
  oidcProviderArn: string;
  /** The ServiceAccount token; sent to STS only, never cached or logged. */
  token: string;
  issuer: string;
  /** `system:serviceaccount:<namespace>:<name>` */
  subject: string;
  audiences: string[];
  /**
   * Who the token speaks for (issuer, subject and ServiceAccount UID): the partition of the cached sessions,
   * so that one ServiceAccount's sessions never serve another.
   */
  partition: string;
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
  /** Resolved on demand, through the session caches. */
  creds: () => Promise<Credentials>;
  key: string;
  as: string;
}

export class AcrTokenSource implements TokenSource {
  private readonly sessions: ExpiringCache<SessionCredentials>;
  private readonly tokens: ExpiringCache<RegistryToken>;
  private readonly metadata: ExpiringCache<string[]>;
  private readonly now: () => number;
  private readonly threshold: () => number;

  constructor(private readonly opts: TokenSourceOptions) {
    this.now = opts.now ?? Date.now;
    const t = opts.refreshThresholdMs;
    this.threshold = typeof t === 'function' ? t : () => t;
    const common = {
      maxEntries: opts.maxEntries ?? DEFAULT_CACHE_ENTRIES,
      negativeTtlMs: opts.negativeTtlMs ?? 5000,
      now: this.now,
      observe: opts.observeCache,
      persistent: opts.persistent,
    };
    this.sessions = new ExpiringCache({ name: 'sts', ...common });
    this.tokens = new ExpiringCache({ name: 'token', ...common });
    this.metadata = new ExpiringCache({ name: 'instance', ...common });
  }

  /** `workload`: the service hop is assumed with this ServiceAccount token (the credential provider's workload mode). */
  async dockerAuths(binding: Binding, requester: string, budget: Budget, workload?: WorkloadIdentity): Promise<DockerAuths> {
    const chain = this.chainCredentials(binding.chain, requester, budget, workload);
    const parts = await Promise.all(binding.registries.map((r) => this.registry(r, chain, budget)));
    const auths: Record<string, RegistryCredential> = {};
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const part of parts) {
      for (const domain of part.domains) auths[domain] = { username: part.token.username, password: part.token.password };
      expiresAt = Math.min(expiresAt, part.token.expiresAt);
    }
    return { auths, expiresAt };
  }

  /** Credentials of a chain's last hop (the webhook's own for {}), cached like the admission path's. */
  async credentialsFor(chain: RoleChain, requester: string, budget: Budget): Promise<Credentials> {
    return this.chainCredentials(chain, requester, budget).creds();
  }

  /**
   * A key naming a chain's final credentials (for caching what they obtain), a label for messages, and the
   * credentials themselves, obtained only when a cache miss needs them: a cached token costs no hop at all.
   */
  private chainCredentials(chain: RoleChain, requester: string, budget: Budget, workload?: WorkloadIdentity): ChainCredentials {
    const self = this.opts.self ?? 'the webhook';
    const ownCredentials = async () => {
      try {
        return await this.opts.identity.credentials();
      } catch (e) {
        throw denialFor({ kind: 'identity', self }, e);
      }
    };
    if (!chain.serviceArn) return { creds: ownCredentials, key: 'self', as: `${self}'s own identity` };
    const sessionName = roleSessionName(requester, sha);
    const serviceArn = chain.serviceArn;
    // Sessions obtained with a workload's token are that workload's: their keys carry its partition.
    const partition = workload ? `oidc|${workload.oidcProviderArn}|${workload.partition}|` : '';
    const serviceKey = `${partition}${serviceArn}|${sessionName}`;
    const service = () =>
      this.sessions.get(serviceKey, async () => {
        if (!workload) return this.assume(await ownCredentials(), serviceArn, sessionName, { kind: 'assume-service', roleArn: serviceArn }, budget);
        const step: Step = { kind: 'assume-oidc', roleArn: serviceArn, providerArn: workload.oidcProviderArn, subject: workload.subject, issuer: workload.issuer, audiences: workload.audiences };
        try {
          const session = await assumeRoleWithOidc(
            this.opts.caller,
            this.opts.endpoints.sts,
            { roleArn: serviceArn, oidcProviderArn: workload.oidcProviderArn, oidcToken: workload.token, roleSessionName: sessionName, durationSeconds: this.opts.sessionDurationSeconds },
            budget,
          );
          return { value: session, usableUntil: session.expiresAt - this.threshold() };
        } catch (e) {
          throw denialFor(step, e);
        }
      });
    if (!chain.userArn) return { creds: service, key: serviceKey, as: serviceArn };
    const userArn = chain.userArn;
    const key = `${partition}${serviceArn}|${userArn}|${sessionName}`;
    const user = () => this.sessions.get(key, async () => this.assume(await service(), userArn, sessionName, { kind: 'assume-user', roleArn: userArn, serviceArn }, budget));
    return { creds: user, key, as: userArn };
  }

  private async assume(creds: Credentials, roleArn: string, sessionName: string, step: Step, budget: Budget): Promise<{ value: SessionCredentials; usableUntil: number }> {
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
  }

  private async registry(r: RegistryRef, chain: ChainCredentials, budget: Budget): Promise<{ domains: string[]; token: RegistryToken }> {
    if (r.kind === 'personal') {
      const step: Step = { kind: 'personal', region: r.region, as: chain.as };
      const token = await this.token(`p|${r.region}|${chain.key}`, step, async () => personalToken(this.opts.caller, this.opts.endpoints.cr(r.region), await chain.creds(), budget));
      return { domains: r.domains, token };
    }
    const region = r.region ?? '';
    const endpoint = this.opts.endpoints.cr(region);
    const stepFor = (what: string, instanceId: string): Step => ({ kind: 'instance', what, instanceId, region, as: chain.as });
    let instanceId: string;
    if (r.kind === 'instance-name') {
      const found = await this.meta(`name|${region}|${r.instanceName}|${chain.key}`, stepFor('looking up the instance by name', r.instanceName), async () => {
        const id = await instanceIdByName(this.opts.caller, endpoint, await chain.creds(), r.instanceName, budget);
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
        : this.meta(`domains|${region}|${instanceId}|${chain.key}`, stepFor('listing the domains', instanceId), async () => instanceDomains(this.opts.caller, endpoint, await chain.creds(), instanceId, budget)),
      this.token(`i|${region}|${instanceId}|${chain.key}`, stepFor('getting a registry token', instanceId), async () =>
        getAuthorizationToken(this.opts.caller, endpoint, await chain.creds(), instanceId, budget),
      ),
    ]);
    return { domains, token };
  }

  private token(key: string, step: Step, load: () => Promise<RegistryToken>): Promise<RegistryToken> {
    return this.tokens.get(key, async () => {
      try {
        const token = await load();
        return { value: token, usableUntil: token.expiresAt - this.threshold() };
      } catch (e) {
        throw denialFor(step, e);
      }
    });
  }

  private meta(key: string, step: Step, load: () => Promise<string[]>): Promise<string[]> {
    return this.metadata.get(key, async () => {
      try {
        return { value: await load(), usableUntil: this.now() + METADATA_TTL_MS };
      } catch (e) {
        throw denialFor(step, e);
      }
    });
  }

  /** Entries held, for the memory benchmark. */
  get cachedEntries(): number {
    return this.sessions.size + this.tokens.size + this.metadata.size;
  }
}
