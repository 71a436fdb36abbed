// Prometheus metrics (prom-client). Labels are closed sets (kind, result, path, API, error code), never
// names, ARNs or anything from a request, so cardinality stays bounded and nothing secret can leak.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Sub-millisecond to 10 s: a webhook answers in microseconds when cached and seconds when cold. */
const WEBHOOK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly admissions = new Histogram({
    name: 'acr_webhook_admission_duration_seconds',
    help: 'Time to answer one AdmissionReview',
    labelNames: ['kind', 'result', 'path'] as const,
    buckets: WEBHOOK_BUCKETS,
    registers: [this.registry],
  });
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

  private readonly admissionSeries = new Map<string, { observe(v: number): void }>();

  /** Per-review observation; the labelled series is looked up once per combination, not hashed per call. */
  observeAdmission(kind: string, result: string, path: string, seconds: number): void {
    const key = `${kind}\u0000${result}\u0000${path}`;
    let series = this.admissionSeries.get(key);
    if (!series) {
      series = this.admissions.labels(kind, result, path);
      this.admissionSeries.set(key, series);
    }
    series.observe(seconds);
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
