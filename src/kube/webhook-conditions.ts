// The leader keeps the default webhook's generated matchCondition (src/admission/match-conditions.ts) current in
// its own MutatingWebhookConfiguration: one entry, named `needs-acr-pull-webhook`, added, replaced or removed by a
// JSON patch that tests what it changes, so the static conditions of the manifests and anything an operator adds
// stay as they are. `kubectl apply` and `helm upgrade` leave an entry they do not declare alone; one that resets the
// whole list is repaired at the next check. Without an entry (not computed yet, or not expressible) the API server
// sends every object without ACR annotations, as the manifests ship: the fail-open webhook is the safety net.
// RBAC: get and patch of that one configuration, by name.
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { SEND_CONDITION, type MatchCondition } from '../admission/match-conditions.js';
import type { Leadership } from '../pull-secrets/leadership.js';
import { silentLogger, type Logger } from '../pull-secrets/logger.js';
import { describeApiError, requestTimeout } from './api-util.js';

/** `unknown` while the inputs are not all known yet (caches syncing): the configuration is left as it is. */
export type Desired = MatchCondition | undefined | 'unknown';

export interface WebhookConditionsOptions {
  kubeConfig: KubeConfig;
  /** The MutatingWebhookConfiguration's name (the chart's release-dependent name, or acr-pull-webhook). */
  configuration: string;
  /** The entry within it whose conditions are kept. */
  webhook: string;
  leader: Leadership;
  desired: () => Desired;
  logger?: Logger;
  /** How often the desired condition is compared with what was written (cheap: memoized by the caller). */
  intervalMs?: number;
  /** How often the configuration is read back, to repair an entry someone else removed. */
  recheckMs?: number;
  requestTimeoutMs?: number;
  /** Called after each successful write or check with whether a condition is in force. */
  onState?: (state: 'condition' | 'send-all' | 'no-webhook') => void;
}

interface Op {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** The JSON patch from the configuration's current webhooks to the desired entry; [] when already there. */
export function conditionPatch(webhooks: readonly { name?: string; matchConditions?: readonly MatchCondition[] }[], webhook: string, desired: MatchCondition | undefined): Op[] | 'no-webhook' {
  const i = webhooks.findIndex((w) => w.name === webhook);
  if (i < 0) return 'no-webhook';
  const base = `/webhooks/${i}`;
  const conditions = webhooks[i]!.matchConditions;
  const j = conditions?.findIndex((c) => c.name === SEND_CONDITION) ?? -1;
  const guard: Op[] = [{ op: 'test', path: `${base}/name`, value: webhook }];
  if (desired === undefined) {
    if (j < 0) return [];
    return [...guard, { op: 'test', path: `${base}/matchConditions/${j}/name`, value: SEND_CONDITION }, { op: 'remove', path: `${base}/matchConditions/${j}` }];
  }
  if (j >= 0) {
    if (conditions![j]!.expression === desired.expression) return [];
    return [
      ...guard,
      { op: 'test', path: `${base}/matchConditions/${j}/name`, value: SEND_CONDITION },
      { op: 'replace', path: `${base}/matchConditions/${j}/expression`, value: desired.expression },
    ];
  }
  const entry = { name: desired.name, expression: desired.expression };
  if (conditions === undefined) return [...guard, { op: 'add', path: `${base}/matchConditions`, value: [entry] }];
  return [...guard, { op: 'add', path: `${base}/matchConditions/-`, value: entry }];
}

export class WebhookConditionsSync {
  private readonly api: AdmissionregistrationV1Api;
  private readonly o: Required<Pick<WebhookConditionsOptions, 'intervalMs' | 'recheckMs' | 'requestTimeoutMs'>> & WebhookConditionsOptions;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** What was last written or found in place (its expression, or '' for none), and when it was checked. */
  private written: string | undefined;
  private checkedAt = 0;
  private failures = 0;
  private missingLogged = false;

  constructor(opts: WebhookConditionsOptions) {
    this.o = { intervalMs: 500, recheckMs: 10_000, requestTimeoutMs: 10_000, ...opts };
    this.api = opts.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.log = opts.logger ?? silentLogger;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass (exported for tests): writes when the desired entry differs from what is in force. */
  async tick(): Promise<void> {
    if (this.busy || !this.o.leader.isLeader()) return;
    const desired = this.o.desired();
    if (desired === 'unknown') return;
    const key = desired?.expression ?? '';
    const now = Date.now();
    // After failures, wait longer between attempts (up to the recheck interval).
    const backoff = Math.min(this.o.recheckMs, this.o.intervalMs * 2 ** this.failures);
    if (this.failures > 0 && now - this.checkedAt < backoff) return;
    if (key === this.written && now - this.checkedAt < this.o.recheckMs) return;
    this.busy = true;
    try {
      const mwc = await this.api.readMutatingWebhookConfiguration({ name: this.o.configuration }, requestTimeout(this.o.requestTimeoutMs));
      const webhooks = (mwc.webhooks ?? []) as { name?: string; matchConditions?: MatchCondition[] }[];
      const ops = conditionPatch(webhooks, this.o.webhook, desired);
      this.checkedAt = Date.now();
      this.failures = 0;
      if (ops === 'no-webhook') {
        // The annotated-only install has no default webhook: nothing to keep.
        if (!this.missingLogged) this.log.info({ configuration: this.o.configuration, webhook: this.o.webhook }, 'no such webhook entry: its matchConditions are not managed');
        this.missingLogged = true;
        this.written = key;
        this.o.onState?.('no-webhook');
        return;
      }
      if (ops.length > 0) {
        const body = [...(mwc.metadata?.resourceVersion ? [{ op: 'test', path: '/metadata/resourceVersion', value: mwc.metadata.resourceVersion }] : []), ...ops];
        await this.api.patchMutatingWebhookConfiguration({ name: this.o.configuration, body, fieldManager: 'acr-pull-webhook' }, requestTimeout(this.o.requestTimeoutMs));
        this.log.info(
          { configuration: this.o.configuration, webhook: this.o.webhook, condition: desired ? SEND_CONDITION : 'none', bytes: desired ? Buffer.byteLength(desired.expression) : 0 },
          desired ? 'matchConditions updated: objects that need nothing are no longer sent' : 'matchConditions: generated condition removed, every object without ACR annotations is sent',
        );
      }
      this.written = key;
      this.o.onState?.(desired ? 'condition' : 'send-all');
    } catch (err) {
      this.failures++;
      this.checkedAt = Date.now();
      // A conflict (the configuration changed while read) is retried at once with the new version.
      if (this.failures === 1 || this.failures % 20 === 0) {
        this.log.warn({ configuration: this.o.configuration, err: describeApiError(err), failures: this.failures, check: 'RBAC: get and patch on mutatingwebhookconfigurations/' + this.o.configuration }, 'matchConditions could not be updated');
      }
    } finally {
      this.busy = false;
    }
  }
}
