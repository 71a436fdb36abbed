// The credential chain end to end: webhook identity -> service role -> user role -> registry tokens, cached
// per chain and instance until `expiry - threshold`, with single-flight loads and deadlines from the review.
import { createHash } from 'node:crypto';
import type { Binding, RegistryRef, RoleChain } from '../acr/model.js';
import type { Budget, DockerAuths, RegistryCredential, TokenSource } from '../pull-secrets/types.js';
import { DenialError } from '../pull-secrets/types.js';
import { getAuthorizationToken, instanceDomains, instanceIdByName, personalToken, type RegistryToken } from './acr.js';
import { ExpiringCache, type CacheOutcome } from './cache.js';
import { denialFor, type Step } from './denials.js';
import type { Endpoints } from './endpoints.js';
import type { Identity } from './identity.js';
import type { CloudCaller, Credentials } from './rpc.js';
import { assumeRole, roleSessionName, type SessionCredentials } from './sts.js';

export interface TokenSourceOptions {
  identity: Identity;
  endpoints: Endpoints;
  caller: CloudCaller;
  sessionDurationSeconds: number;
  /** Cached credentials and tokens are renewed this long before they expire. */
  refreshThresholdMs: number;
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
  key: string;
  as: string;
  /** ms since epoch; Infinity for the webhook's own identity. */
  expiresAt: number;
}

export class AcrTokenSource implements TokenSource {
  private readonly sessions: ExpiringCache<SessionCredentials>;
  private readonly tokens: ExpiringCache<RegistryToken>;
  private readonly metadata: ExpiringCache<string[]>;
  private readonly now: () => number;

  constructor(private readonly opts: TokenSourceOptions) {
    this.now = opts.now ?? Date.now;
    const common = { maxEntries: opts.maxEntries ?? DEFAULT_CACHE_ENTRIES, negativeTtlMs: opts.negativeTtlMs ?? 5000, now: this.now, observe: opts.observeCache };
    this.sessions = new ExpiringCache({ name: 'sts', ...common });
    this.tokens = new ExpiringCache({ name: 'token', ...common });
    this.metadata = new ExpiringCache({ name: 'instance', ...common });
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

  /**
   * Final credentials of a chain plus a key naming them (for caching what they obtain), a label for messages and
   * when they expire (what they obtain must not outlive them).
   */
  private async chainCredentials(chain: RoleChain, requester: string, budget: Budget): Promise<ChainCredentials> {
    if (!chain.serviceArn) {
      try {
        // The webhook's own identity is renewed by its provider; it puts no bound on tokens.
        return { creds: await this.opts.identity.credentials(), key: 'self', as: "the webhook's own identity", expiresAt: Number.POSITIVE_INFINITY };
      } catch (e) {
        throw denialFor({ kind: 'identity' }, e);
      }
    }
    const sessionName = roleSessionName(requester, sha);
    const service = await this.assume(`${chain.serviceArn}|${sessionName}`, async () => {
      try {
        return await this.opts.identity.credentials();
      } catch (e) {
        throw denialFor({ kind: 'identity' }, e);
      }
    }, chain.serviceArn, sessionName, { kind: 'assume-service', roleArn: chain.serviceArn }, budget);
    if (!chain.userArn) return { creds: service, key: `${chain.serviceArn}|${sessionName}`, as: chain.serviceArn, expiresAt: service.expiresAt };
    const key = `${chain.serviceArn}|${chain.userArn}|${sessionName}`;
    const user = await this.assume(key, async () => service, chain.userArn, sessionName, { kind: 'assume-user', roleArn: chain.userArn, serviceArn: chain.serviceArn }, budget);
    return { creds: user, key, as: chain.userArn, expiresAt: user.expiresAt };
  }

  private assume(key: string, from: () => Promise<Credentials>, roleArn: string, sessionName: string, step: Step, budget: Budget): Promise<SessionCredentials> {
    return this.sessions.get(key, async () => {
      const creds = await from();
      try {
        const session = await assumeRole(
          this.opts.caller,
          this.opts.endpoints.sts,
          creds,
          { roleArn, roleSessionName: sessionName, durationSeconds: this.opts.sessionDurationSeconds, externalId: this.opts.externalIdFor?.(roleArn) },
          budget,
        );
        return { value: session, usableUntil: session.expiresAt - this.opts.refreshThresholdMs };
      } catch (e) {
        throw denialFor(step, e);
      }
    });
  }

  private async registry(r: RegistryRef, chain: ChainCredentials, budget: Budget): Promise<{ domains: string[]; token: RegistryToken }> {
    if (r.kind === 'personal') {
      const step: Step = { kind: 'personal', region: r.region, as: chain.as };
      const token = await this.token(`p|${r.region}|${chain.key}`, step, chain, () => personalToken(this.opts.caller, this.opts.endpoints.cr(r.region), chain.creds, budget));
      return { domains: r.domains, token };
    }
    const region = r.region ?? '';
    const endpoint = this.opts.endpoints.cr(region);
    const stepFor = (what: string, instanceId: string): Step => ({ kind: 'instance', what, instanceId, region, as: chain.as });
    let instanceId: string;
    if (r.kind === 'instance-name') {
      const found = await this.meta(`name|${region}|${r.instanceName}|${chain.key}`, stepFor('looking up the instance by name', r.instanceName), async () => {
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
        : this.meta(`domains|${region}|${instanceId}|${chain.key}`, stepFor('listing the domains', instanceId), () => instanceDomains(this.opts.caller, endpoint, chain.creds, instanceId, budget)),
      this.token(`i|${region}|${instanceId}|${chain.key}`, stepFor('getting a registry token', instanceId), chain, () =>
        getAuthorizationToken(this.opts.caller, endpoint, chain.creds, instanceId, budget),
      ),
    ]);
    return { domains, token };
  }

  /** A token never outlives the session that obtained it, whatever ExpireTime the registry gave it. */
  private token(key: string, step: Step, chain: ChainCredentials, load: () => Promise<RegistryToken>): Promise<RegistryToken> {
    return this.tokens.get(key, async () => {
      try {
        const loaded = await load();
        const token = loaded.expiresAt > chain.expiresAt ? { ...loaded, expiresAt: chain.expiresAt } : loaded;
        return { value: token, usableUntil: token.expiresAt - this.opts.refreshThresholdMs };
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
