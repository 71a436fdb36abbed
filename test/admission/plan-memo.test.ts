// The hot path's shortcuts: the memo key, the shared patch, and the synchronous answer. Each must give the same
// answer as doing the work afresh.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handleAdmission, type Outcome } from '../../src/admission/handler.js';
import { memoKey, planAdmission, servingRules, type Plan } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import { decodePatch, fixture } from '../support/fixtures.js';

/** The plan as a mutation; a test failure (not a silent pass) when it is anything else. */
function mutation(plan: Plan): Extract<Plan, { action: 'mutate' }> {
  if (plan.action !== 'mutate') throw new Error(`expected a mutation, got ${JSON.stringify(plan)}`);
  return plan;
}

const freshRules = () => servingRules(parseConfig({}, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');

describe('memo key', () => {
  it('differs whenever kind, namespace, vendor annotations or images differ, whatever characters they hold', () => {
    const part = fc.string({ unit: 'binary', maxLength: 12 });
    const input = fc.tuple(fc.constantFrom('Pod', 'ImageCache'), part, part, fc.array(part, { maxLength: 4 }));
    fc.assert(
      fc.property(input, input, (a, b) => {
        const same = JSON.stringify(a) === JSON.stringify(b);
        expect(memoKey(...a) === memoKey(...b)).toBe(same);
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps apart inputs that a plain join would merge', () => {
    expect(memoKey('Pod', 'ns', '', ['ab', 'c'])).not.toBe(memoKey('Pod', 'ns', '', ['a', 'bc']));
    expect(memoKey('Pod', 'n', 's', [])).not.toBe(memoKey('Pod', 'ns', '', []));
    expect(memoKey('Pod', 'ns', '1:x', [])).not.toBe(memoKey('Pod', 'ns', '', ['x']));
  });
});

describe('patch shared between Pods of one workload', () => {
  it('is reused when the Pod lists no pull Secret of its own, and built afresh when it does', () => {
    const rules = freshRules();
    const bare = parseAdmissionReview(fixture('pod-default-domain-service-arn'));
    const first = planAdmission(bare, rules);
    const second = planAdmission(parseAdmissionReview(fixture('pod-default-domain-service-arn')), rules);
    expect(mutation(second).patch).toBe(mutation(first).patch);
    const name = mutation(first).specs[0]!.name;
    expect(mutation(first).patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name }] }]);

    // Same annotations and images, but the Pod already names a Secret: the patch appends instead.
    const doc = fixture('pod-default-domain-service-arn');
    doc.request.object.spec.imagePullSecrets = [{ name: 'mine' }];
    const own = mutation(planAdmission(parseAdmissionReview(doc), rules));
    expect(own.patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name } }]);
    // The shared patch was not changed by the Pod with its own list.
    expect(mutation(first).patch).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name }] }]);
  });

  it('encodes to the same answer as a freshly built patch', async () => {
    const cached = freshRules();
    const secrets = { ensure: async () => 'cached' as const, fresh: () => true, ready: () => true };
    const deps = { rules: () => cached, secrets };
    const req = () => parseAdmissionReview(fixture('pod-cross-account-chain'));
    await handleAdmission(req(), { deadline: Date.now() + 5000 }, deps);
    const warm = await handleAdmission(req(), { deadline: Date.now() + 5000 }, deps);
    const cold = await handleAdmission(req(), { deadline: Date.now() + 5000 }, { rules: freshRules, secrets });
    expect(warm.review.response.patch).toBe(cold.review.response.patch);
    expect(decodePatch(warm.review)).toHaveLength(1);
  });
});

describe('synchronous answers', () => {
  it('answers without a promise when nothing has to be written, and with one when a Secret must be', async () => {
    const rules = freshRules();
    const budget = { deadline: Date.now() + 5000 };
    const fresh = { ensure: async () => 'cached' as const, fresh: () => true, ready: () => true };
    const stale = { ensure: async () => 'cold' as const, fresh: () => false, ready: () => true };
    const noAnnotation = handleAdmission(parseAdmissionReview(fixture('pod-no-annotations')), budget, { rules: () => rules, secrets: stale });
    expect(noAnnotation).not.toBeInstanceOf(Promise);
    const denied = handleAdmission(parseAdmissionReview(fixture('deny-bad-arn')), budget, { rules: () => rules, secrets: stale });
    expect(denied).not.toBeInstanceOf(Promise);
    const warm = handleAdmission(parseAdmissionReview(fixture('pod-cross-account-chain')), budget, { rules: () => rules, secrets: fresh });
    expect(warm).not.toBeInstanceOf(Promise);
    expect((warm as Outcome).path).toBe('cached');
    const cold = handleAdmission(parseAdmissionReview(fixture('pod-cross-account-chain')), budget, { rules: () => rules, secrets: stale });
    expect(cold).toBeInstanceOf(Promise);
    expect((await cold).path).toBe('cold');
  });
});
