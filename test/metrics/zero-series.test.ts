// Counters with a closed label set start at 0: Prometheus' increase() and rate() only see a series go up, so a
// series born at 1 (its first failure) would never raise the alert that watches it.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics.js';

describe('credential helper failures', () => {
  it('every stage is exported at 0 before any failure, and counts from there', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const before = await m.registry.getSingleMetricAsString('acr_webhook_credential_helper_failures_total');
    for (const stage of ['secret', 'patch', 'config']) expect(before).toContain(`acr_webhook_credential_helper_failures_total{stage="${stage}"} 0`);
    m.helperFailures.labels('config').inc();
    const after = await m.registry.getSingleMetricAsString('acr_webhook_credential_helper_failures_total');
    expect(after).toContain('acr_webhook_credential_helper_failures_total{stage="config"} 1');
    expect(after).toContain('acr_webhook_credential_helper_failures_total{stage="patch"} 0');
  });
});
