// Keeps the registry index (src/acr/served-registries.ts) current: domains of configured Enterprise entries that
// list none, and, with discovery on, the account's own instances (ListInstance, paginated, then
// ListInstanceEndpoint + GetInstanceVpcEndpoint) in the configured regions. Refreshed on an interval and, rate
// limited, when a review meets an Enterprise default domain of a discovery region that is not known yet.
// A failed call keeps what the previous refresh knew about that region or instance: discovery failing never
// takes a registry away, and never touches Pods whose images are on other hosts.
import { buildRegistryIndex, instanceKey, type DiscoveredInstance, type RegistryIndex } from '../acr/served-registries.js';
import type { RegistryConfig, WebhookConfig } from '../config/config.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import { DenialError, type Budget } from '../pull-secrets/types.js';
import { instanceDomains, listInstances, SERVING_INSTANCE_STATES } from './acr.js';
import type { Endpoints } from './endpoints.js';
import { CloudError } from './errors.js';
import type { CloudCaller, Credentials } from './rpc.js';
import type { AcrTokenSource } from './token-source.js';

export type DiscoveryStep = 'list' | 'endpoints' | 'domains';

export interface RegistryDiscoveryOptions {
  config: WebhookConfig;
  caller: CloudCaller;
  endpoints: Endpoints;
  /** Chain credentials (the webhook's own identity for discovery; a configured entry's chain for its domains). */
  tokens: Pick<AcrTokenSource, 'credentialsFor'>;
  /** RoleSessionName suffix for configured chains (the webhook's own namespace). */
  requester: string;
  /** Called with every new index. */
  onIndex: (index: RegistryIndex) => void;
  logger?: Logger;
  metrics?: {
    discovered(count: number): void;
    error(step: DiscoveryStep, code: string): void;
    success(atMs: number): void;
  };
  /** Budget of one refresh (default 30 s). */
  timeoutMs?: number;
  /** Least time between refreshes caused by misses; default the configuration's discovery.missInterval. */
  missIntervalMs?: number;
  now?: () => number;
}

const LOOKUP_CONCURRENCY = 4;

export class RegistryDiscovery {
  private config: WebhookConfig;
  private readonly lookedUp = new Map<string, string[]>();
  /** Discovered instances by region: a failed region keeps its previous list. */
  private readonly byRegion = new Map<string, DiscoveredInstance[]>();
  private index: RegistryIndex;
  private inFlight?: Promise<void>;
  private lastStart = Number.NEGATIVE_INFINITY;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(private readonly opts: RegistryDiscoveryOptions) {
    this.config = opts.config;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.index = this.build();
  }

  get current(): RegistryIndex {
    return this.index;
  }

  /** Whether anything needs the cloud: discovery on, or a configured Enterprise entry without domains. */
  get active(): boolean {
    return this.config.discovery.enabled || this.config.registries.some((r) => r.edition === 'enterprise' && !r.domains);
  }

  /** A reloaded configuration: rebuilt at once from what is known, refreshed when it asks for more. */
  setConfig(config: WebhookConfig): void {
    const before = this.config;
    this.config = config;
    this.publish();
    if (before.discovery.intervalMs !== config.discovery.intervalMs && this.timer) this.schedule();
    if (this.active) void this.refresh();
  }

  start(): void {
    this.schedule();
    if (this.active) void this.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One refresh at a time; callers arriving meanwhile share it. */
  refresh(): Promise<void> {
    this.inFlight ??= this.run().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /**
   * A review met a host that may be an instance discovery has not seen. Joins the refresh in flight or starts one
   * if none started within `missIntervalMs`, and waits for it no longer than the review's budget allows. True when
   * a refresh completed (the caller then re-plans with the new index).
   */
  async refreshForMiss(budget: Budget): Promise<boolean> {
    if (!this.config.discovery.enabled) return false;
    if (!this.inFlight && this.now() - this.lastStart < (this.opts.missIntervalMs ?? this.config.discovery.missIntervalMs)) return false;
    const wait = budget.deadline - Date.now() - 300;
    if (wait <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.refresh().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), wait))),
    ]).finally(() => clearTimeout(timer));
    return done;
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.active) void this.refresh();
    }, this.config.discovery.intervalMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.lastStart = this.now();
    const config = this.config;
    const budget: Budget = { deadline: Date.now() + (this.opts.timeoutMs ?? 30_000) };
    let failures = 0;
    const fail = (step: DiscoveryStep, e: unknown, detail: object) => {
      failures++;
      const code = e instanceof CloudError ? e.code : e instanceof DenialError ? 'Denied' : 'Unknown';
      this.opts.metrics?.error(step, code);
      // Messages of DenialError are built from codes and ARNs only (denials.ts); CloudError's from codes.
      this.logger.warn({ ...detail, step, code, error: e instanceof Error ? e.message : String(e) }, 'registry discovery call failed; keeping what was known');
    };

    const lookups = config.registries.filter((r): r is Extract<RegistryConfig, { edition: 'enterprise' }> => r.edition === 'enterprise' && !r.domains);
    await pool(lookups, LOOKUP_CONCURRENCY, async (r) => {
      try {
        const creds = await this.opts.tokens.credentialsFor(r.chain, this.opts.requester, budget);
        this.lookedUp.set(instanceKey(r.region, r.instanceId), await instanceDomains(this.opts.caller, this.opts.endpoints.cr(r.region), creds, r.instanceId, budget));
      } catch (e) {
        fail('domains', e, { instanceId: r.instanceId, region: r.region });
      }
    });

    if (config.discovery.enabled) {
      let own: Credentials | undefined;
      try {
        own = await this.opts.tokens.credentialsFor({}, this.opts.requester, budget);
      } catch (e) {
        fail('list', e, {});
      }
      for (const region of own ? config.discovery.regions : []) {
        const endpoint = this.opts.endpoints.cr(region);
        let instances;
        try {
          instances = (await listInstances(this.opts.caller, endpoint, own!, budget)).filter((i) => SERVING_INSTANCE_STATES.has(i.status));
        } catch (e) {
          fail('list', e, { region });
          continue;
        }
        const previous = new Map((this.byRegion.get(region) ?? []).map((d) => [d.instanceId, d]));
        const found: DiscoveredInstance[] = [];
        await pool(instances, LOOKUP_CONCURRENCY, async (i) => {
          try {
            found.push({ instanceId: i.instanceId, region, domains: await instanceDomains(this.opts.caller, endpoint, own!, i.instanceId, budget) });
          } catch (e) {
            fail('endpoints', e, { instanceId: i.instanceId, region });
            const known = previous.get(i.instanceId);
            if (known) found.push(known);
          }
        });
        found.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
        this.byRegion.set(region, found);
      }
    }
    this.publish();
    if (failures === 0) this.opts.metrics?.success(this.now());
  }

  private build(): RegistryIndex {
    const { registries, discovery } = this.config;
    // Only what the current configuration still asks for.
    const wanted = new Set(registries.flatMap((r) => (r.edition === 'enterprise' ? [instanceKey(r.region, r.instanceId)] : [])));
    for (const k of this.lookedUp.keys()) if (!wanted.has(k)) this.lookedUp.delete(k);
    const discovered = discovery.enabled ? discovery.regions.flatMap((r) => this.byRegion.get(r) ?? []) : [];
    return buildRegistryIndex({
      configured: registries,
      lookedUp: this.lookedUp,
      discovered,
      ...(discovery.enabled ? { discovery: { regions: discovery.regions, personalEdition: discovery.personalEdition } } : {}),
    });
  }

  private publish(): void {
    this.index = this.build();
    const discovered = [...this.index.byInstance.values()].filter((r) => r.origin === 'discovered').length;
    this.opts.metrics?.discovered(discovered);
    this.opts.onIndex(this.index);
  }
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}
