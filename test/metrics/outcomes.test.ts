// Metrics.observeOutcome: every review in the histogram, and denials after a failed cloud call counted by status.
import { describe, expect, it } from 'vitest';
import type { Outcome } from '../../src/admission/handler.js';
import { Metrics } from '../../src/metrics.js';
import { DenialError } from '../../src/pull-secrets/types.js';

const outcome = (o: Partial<Outcome>): Outcome => ({ review: {} as Outcome['review'], kind: 'Pod', result: 'patched', path: 'cold', plan: {} as Outcome['plan'], ...o });

describe('Metrics.observeOutcome', () => {
  it('counts denials after a cloud call by their status code, and nothing else as one', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.observeOutcome(outcome({ result: 'denied', error: new DenialError('throttled', 503, 'ServiceUnavailable') }), 0.2);
    m.observeOutcome(outcome({ result: 'denied', error: new DenialError('throttled', 503, 'ServiceUnavailable') }), 0.2);
    m.observeOutcome(outcome({ result: 'denied', error: new DenialError('role refused', 403, 'Forbidden') }), 0.1);
    // Not cloud denials: an annotation mistake (decided without a call), an internal error, a success.
    m.observeOutcome(outcome({ result: 'denied', path: 'no-annotation' }), 0.0001);
    m.observeOutcome(outcome({ result: 'error', error: new Error('boom') }), 0.3);
    m.observeOutcome(outcome({}), 0.4);
    const text = await m.registry.metrics();
    expect(text).toContain('acr_webhook_admission_cloud_denials_total{code="503"} 2');
    expect(text).toContain('acr_webhook_admission_cloud_denials_total{code="403"} 1');
    expect(text.match(/^acr_webhook_admission_cloud_denials_total\{/gm)).toHaveLength(2);
    expect(text).toContain('acr_webhook_admission_duration_seconds_count{kind="Pod",result="denied",path="cold"} 3');
    expect(text).toContain('acr_webhook_admission_duration_seconds_count{kind="Pod",result="error",path="cold"} 1');
  });
});
