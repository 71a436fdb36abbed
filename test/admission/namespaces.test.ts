// Which namespaces the webhook serves (README "Security": never its own namespace, kube-system or opted-out
// namespaces, whatever the annotations say; the configuration's include and exclude globs).
import { describe, expect, it } from 'vitest';
import { OPT_OUT_LABEL, planAdmission, servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import { fixture } from '../support/fixtures.js';

const OWN = 'acr-pull-system';

function plan(namespace: string, config: Record<string, unknown> = {}, labels: Record<string, Record<string, string>> = {}) {
  const rules = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou', ...config }, { ownNamespace: OWN }), OWN, (ns) => labels[ns]);
  const doc = fixture('pod-cross-account-chain');
  doc.request.namespace = namespace;
  return planAdmission(parseAdmissionReview(doc), rules);
}

const ignored = (ns: string) => ({
  action: 'allow',
  reason: 'excluded-namespace',
  warnings: [`ACR annotations ignored: acr-pull-webhook does not serve namespace ${ns}`],
});

describe('served namespaces', () => {
  it('never serves the webhook\'s own namespace (whatever it is called) nor kube-system', () => {
    expect(plan(OWN)).toEqual(ignored(OWN));
    expect(plan('kube-system')).toEqual(ignored('kube-system'));
    // The default name is not special when the webhook runs elsewhere.
    expect(plan('acr-pull-webhook').action).toBe('mutate');
    expect(plan('team-a').action).toBe('mutate');
  });

  it('never serves a namespace labelled with the opt-out label set to "true"', () => {
    const labels = { quiet: { [OPT_OUT_LABEL]: 'true' }, loud: { [OPT_OUT_LABEL]: 'false' } };
    expect(OPT_OUT_LABEL).toBe('acr-pull-webhook.k8s.aliyun.com/ignore');
    expect(plan('quiet', {}, labels)).toEqual(ignored('quiet'));
    expect(plan('loud', {}, labels).action).toBe('mutate');
  });

  it('excludes by glob, and with an include list serves only what it matches', () => {
    expect(plan('sandbox-7', { namespaces: { exclude: ['sandbox-*'] } })).toEqual(ignored('sandbox-7'));
    expect(plan('team-a', { namespaces: { exclude: ['sandbox-*'] } }).action).toBe('mutate');
    expect(plan('team-a', { namespaces: { include: ['team-?'] } }).action).toBe('mutate');
    expect(plan('team-ab', { namespaces: { include: ['team-?'] } })).toEqual(ignored('team-ab'));
    expect(plan('team-a', { namespaces: { include: ['team-?'], exclude: ['team-a'] } })).toEqual(ignored('team-a'));
  });

  it('says nothing about a Pod without ACR annotations in an excluded namespace', () => {
    const rules = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou' }, { ownNamespace: OWN }), OWN);
    const doc = fixture('pod-no-annotations');
    doc.request.namespace = OWN;
    expect(planAdmission(parseAdmissionReview(doc), rules)).toEqual({ action: 'allow', reason: 'excluded-namespace', warnings: undefined });
  });
});
