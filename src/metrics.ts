// Prometheus metrics (prom-client). Labels are closed sets (kind, result, path, API, error code), never
// names, ARNs or anything from a request, so cardinality stays bounded and nothing secret can leak.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from './admission/handler.js';
import { DenialError } from './pull-secrets/types.js';
import { packageVersion } from './version.js';

/** Sub-millisecond to 10 s: a webhook answers in microseconds when cached and seconds when cold. */
const WEBHOOK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly admissions = new AdmissionHistogram(this.registry);
  readonly cloudCalls = new Histogram({
    name: 'acr_webhook_cloud_call_duration_seconds',
    help: 'Alibaba Cloud API calls by API and outcome code ("ok" on success)',
    labelNames: ['api', 'code'] as const,
    buckets: WEBHOOK_BUCKETS,
    registers: [this.registry],
  });
  readonly cache = new Counter({
    name: 'acr_webhook_cache_total',
    help: 'Credential and token cache lookups: hit, miss, or join (a miss that shared an in-flight call)',
    labelNames: ['cache', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly secretWrites = new Counter({
    name: 'acr_webhook_secret_writes_total',
    help: 'Pull Secret writes by operation and outcome (ok, conflict, error)',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly refreshFailures = new Counter({
    name: 'acr_webhook_refresh_failures_total',
    help: 'Background renewals of managed Secrets that failed',
    registers: [this.registry],
  });
  readonly helperFailures = new Counter({
    name: 'acr_webhook_credential_helper_failures_total',
    help: 'Credential helper (acr-configuration) failures: stage "secret" (a ServiceAccount\'s pull Secret could not be prepared), "patch" (its imagePullSecrets could not be updated), "config" (the ConfigMap was refused)',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });
  readonly discoveredInstances = new Gauge({
    name: 'acr_webhook_discovered_instances',
    help: "Enterprise Edition instances of the webhook's own account found by discovery and served without annotations",
    registers: [this.registry],
  });
  readonly discoveryErrors = new Counter({
    name: 'acr_webhook_discovery_errors_total',
    help: 'Failed discovery and domain look-up calls by step (list, endpoints, domains) and error code',
    labelNames: ['step', 'code'] as const,
    registers: [this.registry],
  });
  /** By ALPN: the API server speaks HTTP/2 when offered it; `http/1.1` is the fallback (and clients without ALPN). */
  readonly connections = new Counter({
    name: 'acr_webhook_connections_total',
    help: 'TLS connections accepted on the admission port, by negotiated protocol (h2, http/1.1)',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly discoveryLastSuccess = new Gauge({
    name: 'acr_webhook_discovery_last_success_timestamp_seconds',
    help: 'When a discovery refresh last completed without any failed call (Unix time)',
    registers: [this.registry],
  });
  /** Set by the runtime: ms since epoch of the soonest managed token expiry, read at scrape time. */
  soonestTokenExpiry: () => number | undefined = () => undefined;
  readonly oldestTokenSeconds = (() => {
    const metrics = this;
    return new Gauge({
      name: 'acr_webhook_oldest_token_expiry_seconds',
      help: 'Seconds until the soonest-expiring managed token expires (negative when already expired)',
      registers: [this.registry],
      collect() {
        const at = metrics.soonestTokenExpiry();
        if (at === undefined) this.reset();
        else this.set((at - Date.now()) / 1000);
      },
    });
  })();

  /** The configured credentials.refreshThreshold: the alert on token expiry compares against it. */
  readonly refreshThreshold = new Gauge({
    name: 'acr_webhook_refresh_threshold_seconds',
    help: 'Managed tokens are renewed this long before they expire (credentials.refreshThreshold)',
    registers: [this.registry],
  });
  /** 5xx: the cloud or the webhook's own credentials failed (operator); 4xx: the annotation's roles or instances. */
  readonly cloudDenials = new Counter({
    name: 'acr_webhook_admission_cloud_denials_total',
    help: 'Reviews denied after an Alibaba Cloud call failed, by the denial status code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: 'acr_webhook_tls_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate in use expires (Unix time; updated when the certificate is reloaded)',
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'acr_webhook_build_info',
    help: 'Always 1; the labels say which version runs on which Node.js',
    labelNames: ['version', 'nodejs'] as const,
    registers: [this.registry],
  });

  /** Per-review observation (the hot path: one bucket search and three additions). */
  observeAdmission(kind: string, result: string, path: string, seconds: number): void {
    this.admissions.series(kind, result, path).observe(seconds);
  }

  /** observeAdmission, plus the denials after a failed cloud call (the only outcomes that carry a DenialError). */
  observeOutcome(o: Outcome, seconds: number): void {
    this.admissions.series(o.kind, o.result, o.path).observe(seconds);
    if (o.error instanceof DenialError) this.cloudDenials.labels(String(o.error.code)).inc();
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Exported at 0 from the start: increase() and rate() never see the first failure of a series born at 1, and
    // the credential helper alerts watch exactly that.
    for (const stage of ['secret', 'patch', 'config']) this.helperFailures.labels(stage).inc(0);
    for (const protocol of ['h2', 'http/1.1']) this.connections.labels(protocol).inc(0);
    this.buildInfo.labels(packageVersion(), process.versions.node).set(1);
  }
}

interface Series {
  labels: Record<string, string>;
  /** Per bucket, not cumulative; the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
  observe(seconds: number): void;
}

/**
 * The admission duration histogram, in prom-client's registry and exposition format but with series resolved
 * once: prom-client's Histogram validates and hashes the label set on every observe (about 1.5 µs, 3% of a
 * whole no-annotation review in `npm run bench`). Labels are closed sets, so the series are few.
 */
export class AdmissionHistogram {
  readonly name = 'acr_webhook_admission_duration_seconds';
  readonly help = 'Time to answer one AdmissionReview';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byKey = new Map<string, Map<string, Map<string, Series>>>();
  private readonly all: Series[] = [];

  constructor(registry: Registry) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  series(kind: string, result: string, path: string): Series {
    let byResult = this.byKey.get(kind);
    if (!byResult) this.byKey.set(kind, (byResult = new Map()));
    let byPath = byResult.get(result);
    if (!byPath) byResult.set(result, (byPath = new Map()));
    let s = byPath.get(path);
    if (!s) {
      const counts = new Array<number>(WEBHOOK_BUCKETS.length + 1).fill(0);
      const created: Series = {
        labels: { kind, result, path },
        counts,
        sum: 0,
        count: 0,
        observe(seconds) {
          let i = 0;
          while (i < WEBHOOK_BUCKETS.length && seconds > WEBHOOK_BUCKETS[i]!) i++;
          counts[i]!++;
          created.sum += seconds;
          created.count++;
        },
      };
      s = created;
      byPath.set(path, s);
      this.all.push(s);
    }
    return s;
  }

  /** prom-client's metric shape: cumulative `_bucket` lines per series, then `_sum` and `_count`. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values = [];
    for (const s of this.all) {
      let cumulative = 0;
      for (let i = 0; i <= WEBHOOK_BUCKETS.length; i++) {
        cumulative += s.counts[i]!;
        values.push({ labels: { le: i < WEBHOOK_BUCKETS.length ? WEBHOOK_BUCKETS[i]! : '+Inf', ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
