// What a scrape of the webhook's registry holds: every metric the Metrics class declares, the token-expiry gauge
// computed at scrape time, Node's default metrics unless turned off, and the admission histogram's bucket bounds.
// metrics.ts is loaded in beforeEach (after resetModules), so its module-level bucket list is exercised per test.
import { AggregatorRegistry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type MetricsModule = typeof import('../../src/metrics.js');
let mod: MetricsModule;

beforeEach(async () => {
  vi.resetModules();
  mod = await import('../../src/metrics.js');
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Metrics registry', () => {
  it('registers every metric it declares, and nothing else when default metrics are off', async () => {
    const m = new mod.Metrics({ defaultMetrics: false });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    expect(names).toEqual([
      'acr_webhook_admission_cloud_denials_total',
      'acr_webhook_admission_duration_seconds',
      'acr_webhook_build_info',
      'acr_webhook_cache_total',
      'acr_webhook_cloud_call_duration_seconds',
      'acr_webhook_connections_total',
      'acr_webhook_credential_helper_failures_total',
      'acr_webhook_discovered_instances',
      'acr_webhook_discovery_errors_total',
      'acr_webhook_discovery_last_success_timestamp_seconds',
      'acr_webhook_oldest_token_expiry_seconds',
      'acr_webhook_refresh_failures_total',
      'acr_webhook_refresh_threshold_seconds',
      'acr_webhook_secret_writes_total',
      'acr_webhook_tls_certificate_expiry_timestamp_seconds',
    ]);
  });

  it("collects Node's default metrics unless told not to", async () => {
    const withDefaults = new mod.Metrics();
    expect(withDefaults.registry.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    expect(withDefaults.registry.getSingleMetric('nodejs_eventloop_lag_seconds')).toBeDefined();
    const explicit = new mod.Metrics({ defaultMetrics: true });
    expect(explicit.registry.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    const without = new mod.Metrics({ defaultMetrics: false });
    expect(without.registry.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });
});

describe('oldest token expiry gauge', () => {
  it('is the seconds until the soonest expiry at scrape time, negative once past, and 0 without tokens', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const m = new mod.Metrics({ defaultMetrics: false });
    const read = async () => (await m.registry.getSingleMetric('acr_webhook_oldest_token_expiry_seconds')!.get()).values.map((v) => v.value);
    expect(await read()).toEqual([0]);
    let at: number | undefined = Date.parse('2026-01-01T00:01:30Z');
    m.soonestTokenExpiry = () => at;
    expect(await read()).toEqual([90]);
    vi.setSystemTime(new Date('2026-01-01T00:02:00Z'));
    expect(await read()).toEqual([-30]);
    at = undefined;
    expect(await read()).toEqual([0]);
  });
});

describe('admission histogram', () => {
  it('has the webhook bucket bounds from 0.5 ms to 10 s, then +Inf', async () => {
    const m = new mod.Metrics({ defaultMetrics: false });
    m.observeAdmission('Pod', 'patched', 'cold', 0.003);
    const les = m.admissions.get().values.filter((v) => v.metricName.endsWith('_bucket')).map((v) => v.labels.le);
    expect(les).toEqual([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, '+Inf']);
    const cloud = await m.registry.getSingleMetric('acr_webhook_cloud_call_duration_seconds')!.get();
    expect(cloud.values).toEqual([]);
    m.cloudCalls.labels('GetAuthorizationToken', 'ok').observe(0.2);
    const bounds = (await m.registry.getSingleMetric('acr_webhook_cloud_call_duration_seconds')!.get()).values
      .filter((v) => (v as { metricName?: string }).metricName?.endsWith('_bucket'))
      .map((v) => v.labels.le);
    expect(bounds).toEqual([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, '+Inf']);
  });

  it('adds up across cluster workers (aggregator sum)', async () => {
    const a = new mod.Metrics({ defaultMetrics: false });
    const b = new mod.Metrics({ defaultMetrics: false });
    a.observeAdmission('Pod', 'patched', 'cold', 0.003);
    b.observeAdmission('Pod', 'patched', 'cold', 0.2);
    b.observeAdmission('Pod', 'patched', 'cold', 0.004);
    const merged = AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const text = await merged.getSingleMetricAsString('acr_webhook_admission_duration_seconds');
    expect(text).toContain('acr_webhook_admission_duration_seconds_count{kind="Pod",result="patched",path="cold"} 3');
    expect(text).toContain('acr_webhook_admission_duration_seconds_bucket{le="0.005",kind="Pod",result="patched",path="cold"} 2');
  });
});
