// When the admission deadline passes, the denial names what was still being waited for. The handler owns the
// deadline; the Secret manager and the credential chain only say what they are waiting on.
import { beforeEach, describe, expect, it } from 'vitest';
import { handleAdmission } from '../../src/admission/handler.js';
import { servingRules } from '../../src/admission/plan.js';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { parseConfig } from '../../src/config/config.js';
import { PullSecretManager } from '../../src/pull-secrets/manager.js';
import { DenialError, type Budget } from '../../src/pull-secrets/types.js';
import { MemorySecretStore } from '../../src/pull-secrets/memory-store.js';
import { fixture } from '../support/fixtures.js';
import { FakeClock, FakeTokens } from '../kube/support/fixtures.js';

// Built before each test, not at collection time: Stryker then credits each test with the code it runs
// (code run while a file loads counts as static and would be tested against every test).
let rules!: ReturnType<typeof servingRules>;
beforeEach(() => {
  rules = servingRules(parseConfig({ defaultRegion: 'cn-hangzhou' }, { ownNamespace: 'acr-pull-webhook' }), 'acr-pull-webhook');
});

async function review(opts: { writeLatencyMs?: number; tokensHang?: boolean }, ms = 300) {
  const clock = new FakeClock(Date.now());
  const store = new MemorySecretStore({ writeLatencyMs: opts.writeLatencyMs ?? 0 });
  await store.start();
  const tokens = new FakeTokens(clock);
  tokens.hang = opts.tokensHang ?? false;
  const manager = new PullSecretManager({ store, tokens });
  const started = Date.now();
  const outcome = await handleAdmission(parseAdmissionReview(fixture('pod-cross-account-chain')), { deadline: Date.now() + ms }, { rules: () => rules, secrets: manager });
  return { response: outcome.review.response, ms: Date.now() - started };
}

describe('the admission deadline', () => {
  it('a Secret write the API server does not answer in time is named as the Secret write, with what to check', async () => {
    const { response, ms } = await review({ writeLatencyMs: 3000 });
    expect(ms).toBeLessThan(1000);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(503);
    expect(response.status?.message).toMatch(
      /^acr-pull-webhook timed out writing pull Secret team-a\/acr-pull-[0-9a-f]{20}: the Kubernetes API server did not answer in time\. Check the API server's health and load, and the webhook's network path to it$/,
    );
  });

  it('registry credentials that do not arrive in time are not blamed on the Secret write', async () => {
    const { response, ms } = await review({ tokensHang: true });
    expect(ms).toBeLessThan(1000);
    expect(response.status?.code).toBe(503);
    expect(response.status?.message).not.toContain('writing pull Secret');
    expect(response.status?.message).toContain('timed out obtaining registry credentials');
  });

  it('the provider gets the review\'s deadline and a progress record: the step it is still in names the timeout', async () => {
    const seen: Budget[] = [];
    const secrets = {
      ensure: (_spec: unknown, budget: Budget) => {
        seen.push(budget);
        budget.progress?.enter({ label: 'token', timedOut: () => new DenialError('acr-pull-webhook timed out in the step under test', 503, 'ServiceUnavailable') });
        return new Promise<'cold'>(() => {});
      },
      ready: () => true,
    };
    const deadline = Date.now() + 200;
    const outcome = await handleAdmission(parseAdmissionReview(fixture('pod-cross-account-chain')), { deadline }, { rules: () => rules, secrets });
    expect(seen.map((b) => b.deadline)).toEqual([deadline]);
    expect(outcome.review.response.status).toEqual({ code: 503, message: 'acr-pull-webhook timed out in the step under test', reason: 'ServiceUnavailable' });
  });
});
