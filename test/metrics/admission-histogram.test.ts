// The admission histogram is our own accumulator in prom-client's registry: its exposition must be exactly what
// prom-client's own Histogram gives for the same observations.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AdmissionHistogram, Metrics } from '../../src/metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const observations: [string, string, string, number][] = [
  ['Pod', 'unchanged', 'no-annotation', 0.0001],
  ['Pod', 'unchanged', 'no-annotation', 0.0005], // on a bucket bound: counted in that bucket (le)
  ['Pod', 'patched', 'cached', 0.0012],
  ['Pod', 'patched', 'cold', 0.75],
  ['ImageCache', 'denied', 'cold', 10],
  ['ImageCache', 'error', 'cold', 42], // beyond the last bound: +Inf only
  ['Pod', 'patched', 'cached', 0.003],
];

describe('AdmissionHistogram', () => {
  it('exposes the same text as prom-client Histogram for the same observations', async () => {
    const ours = new Registry();
    const h = new AdmissionHistogram(ours);
    const theirs = new Registry();
    const reference = new Histogram({
      name: 'acr_webhook_admission_duration_seconds',
      help: 'Time to answer one AdmissionReview',
      labelNames: ['kind', 'result', 'path'] as const,
      buckets: BUCKETS,
      registers: [theirs],
    });
    for (const [kind, result, path, v] of observations) {
      h.series(kind, result, path).observe(v);
      reference.labels(kind, result, path).observe(v);
    }
    const lines = (text: string) => text.split('\n').filter(Boolean).sort();
    expect(lines(await ours.metrics())).toEqual(lines(await theirs.metrics()));
    expect(await ours.metrics()).toContain('acr_webhook_admission_duration_seconds_count{kind="Pod",result="patched",path="cached"} 2');
  });

  it('is what Metrics registers and observeAdmission feeds', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.observeAdmission('Pod', 'unchanged', 'no-annotation', 0.0002);
    m.observeAdmission('Pod', 'unchanged', 'no-annotation', 0.02);
    const text = await m.registry.metrics();
    expect(text).toContain('# TYPE acr_webhook_admission_duration_seconds histogram');
    expect(text).toContain('acr_webhook_admission_duration_seconds_bucket{le="0.0005",kind="Pod",result="unchanged",path="no-annotation"} 1');
    expect(text).toContain('acr_webhook_admission_duration_seconds_bucket{le="+Inf",kind="Pod",result="unchanged",path="no-annotation"} 2');
    m.admissions.reset();
    expect(await m.registry.metrics()).toContain('acr_webhook_admission_duration_seconds_count{kind="Pod",result="unchanged",path="no-annotation"} 0');
  });
});
