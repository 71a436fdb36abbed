// Progress: which step a timeout denial names, across followed records, nesting bounds and ties. Clocks injected.
import { describe, expect, it } from 'vitest';
import { Progress, type Wait } from '../../src/pull-secrets/progress.js';
import { DenialError } from '../../src/pull-secrets/types.js';

const wait = (label: string): Wait => ({ label, timedOut: () => new DenialError(`timed out ${label}`, 503, 'Timeout') });

/** Records a finished step of `ms` on `p` (whose clock is `clock`). */
function finished(p: Progress, clock: { t: number }, label: string, ms: number): void {
  const leave = p.enter(wait(label));
  clock.t += ms;
  leave();
}

describe('Progress: finished steps', () => {
  it('keeps the slowest finished step, the first of equal ones, and says exactly what took the time', () => {
    const clock = { t: 0 };
    const p = new Progress(() => clock.t);
    finished(p, clock, 'fast', 300);
    finished(p, clock, 'slow', 2000);
    finished(p, clock, 'as slow', 2000);
    const d = p.timedOut('fallback');
    expect(d.message).toBe(
      'acr-pull-webhook timed out: slow took 2.0 s, and no time was left before the admission deadline. ' +
        "Controllers create the Pod again by themselves; if this repeats, check that step's latency from the webhook",
    );
    expect(d.code).toBe(503);
    expect(d.reason).toBe('Timeout');
  });

  it('the fallback denial is a 503 Timeout', () => {
    const d = new Progress(() => 0).timedOut('waiting for the Secret');
    expect(d.message).toBe('acr-pull-webhook timed out waiting for the Secret');
    expect(d.code).toBe(503);
    expect(d.reason).toBe('Timeout');
  });

  it('step() leaves the step when the work settles, resolved or rejected', async () => {
    const clock = { t: 0 };
    const p = new Progress(() => clock.t);
    await expect(
      p.step(wait('calling the registry'), async () => {
        clock.t += 1200;
        return 7;
      }),
    ).resolves.toBe(7);
    expect(p.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: calling the registry took 1\.2 s,/);
    await expect(
      p.step(wait('writing the Secret'), async () => {
        clock.t += 2500;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(p.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: writing the Secret took 2\.5 s,/);
  });

  it('a followed record counts: its slower step wins, a faster or equal one does not, an empty one changes nothing', () => {
    const clock = { t: 0 };
    const review = new Progress(() => clock.t);
    const flight = new Progress(() => clock.t);
    const empty = new Progress(() => clock.t);
    review.follow(empty);
    review.follow(flight);
    finished(review, clock, 'own', 1000);
    expect(review.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: own took 1\.0 s,/);
    finished(flight, clock, 'followed, faster', 400);
    expect(review.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: own took 1\.0 s,/);
    finished(flight, clock, 'followed, as slow', 1000);
    expect(review.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: own took 1\.0 s,/);
    finished(flight, clock, 'followed, slower', 3000);
    expect(review.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: followed, slower took 3\.0 s,/);
  });

  it('a followed record counts when the record itself has no finished step', () => {
    const clock = { t: 0 };
    const review = new Progress(() => clock.t);
    const flight = new Progress(() => clock.t);
    review.follow(flight);
    finished(flight, clock, 'followed', 1500);
    expect(review.timedOut('x').message).toMatch(/^acr-pull-webhook timed out: followed took 1\.5 s,/);
  });

  it('follows records four levels deep, not five, and survives records that follow each other', () => {
    const clock = { t: 0 };
    const chain = Array.from({ length: 6 }, () => new Progress(() => clock.t));
    for (let i = 0; i < 5; i++) chain[i]!.follow(chain[i + 1]!);
    finished(chain[5]!, clock, 'five deep', 900);
    expect(chain[0]!.timedOut('none').message).toBe('acr-pull-webhook timed out none');
    finished(chain[4]!, clock, 'four deep', 800);
    expect(chain[0]!.timedOut('none').message).toMatch(/^acr-pull-webhook timed out: four deep took 0\.8 s,/);

    const a = new Progress(() => clock.t);
    const b = new Progress(() => clock.t);
    a.follow(b);
    b.follow(a);
    finished(b, clock, 'in b', 100);
    expect(a.timedOut('none').message).toMatch(/^acr-pull-webhook timed out: in b took 0\.1 s,/);
  });
});

describe('Progress: steps in flight', () => {
  it('names the step entered last, even when it was entered before under the same wait', () => {
    const p = new Progress(() => 0);
    const a = wait('A');
    const b = wait('B');
    p.enter(a);
    p.enter(b);
    expect(p.timedOut('x').message).toBe('timed out B');
    p.enter(a); // entered again: now the newest, though first in the map
    expect(p.timedOut('x').message).toBe('timed out A');
  });

  it('compares its own steps with a followed record\'s by the order they were entered', () => {
    const review = new Progress(() => 0);
    const flight = new Progress(() => 0);
    const empty = new Progress(() => 0);
    review.follow(empty);
    review.follow(flight);
    flight.enter(wait('followed, older'));
    review.enter(wait('own, newer'));
    expect(review.timedOut('x').message).toBe('timed out own, newer');
    flight.enter(wait('followed, newest'));
    expect(review.timedOut('x').message).toBe('timed out followed, newest');
  });

  it('follows in-flight steps four levels deep, not five, and survives records that follow each other', () => {
    const chain = Array.from({ length: 6 }, () => new Progress(() => 0));
    for (let i = 0; i < 5; i++) chain[i]!.follow(chain[i + 1]!);
    chain[5]!.enter(wait('five deep'));
    expect(chain[0]!.timedOut('none').message).toBe('acr-pull-webhook timed out none');
    chain[4]!.enter(wait('four deep'));
    expect(chain[0]!.timedOut('none').message).toBe('timed out four deep');

    const a = new Progress(() => 0);
    const b = new Progress(() => 0);
    a.follow(b);
    b.follow(a);
    b.enter(wait('in b'));
    expect(a.timedOut('none').message).toBe('timed out in b');
  });
});
