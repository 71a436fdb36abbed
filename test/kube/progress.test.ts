// The record of what a review waits on, which names the step in a timeout denial.
import { describe, expect, it } from 'vitest';
import { Progress, type Wait } from '../../src/pull-secrets/progress.js';
import { DenialError } from '../../src/pull-secrets/types.js';

const wait = (label: string): Wait => ({ label, timedOut: () => new DenialError(`timed out ${label}`, 503, 'Timeout') });

describe('Progress', () => {
  it('names the innermost step in flight, in its own record or one it follows', () => {
    const review = new Progress();
    const flight = new Progress();
    const unfollow = review.follow(flight);
    const leaveOuter = flight.enter(wait('obtaining credentials'));
    const leaveInner = flight.enter(wait('assuming role X'));
    expect(review.timedOut('fallback').message).toBe('timed out assuming role X');
    leaveInner();
    expect(review.timedOut('fallback').message).toBe('timed out obtaining credentials');
    leaveOuter();
    unfollow();
    expect(review.timedOut('waiting').message).toBe('acr-pull-webhook timed out waiting');
  });

  it('when nothing is in flight any more, names the step that took the time', () => {
    let t = 0;
    const p = new Progress(() => t);
    const leaveSlow = p.enter(wait('assuming role X'));
    t += 1700;
    leaveSlow();
    const leaveFast = p.enter(wait('writing the Secret'));
    t += 20;
    leaveFast();
    const d = p.timedOut('fallback');
    expect(d.reason).toBe('Timeout');
    expect(d.code).toBe(503);
    expect(d.message).toContain('acr-pull-webhook timed out: assuming role X took 1.7 s, and no time was left before the admission deadline');
  });
});
