// Durations at the edges of the grammar: fractions of a millisecond round to the nearest whole one, and the
// pattern is the whole text, each part a number then a unit (test/config/config.test.ts has the everyday ones).
import { beforeEach, describe, expect, it, vi } from 'vitest';

let parseDuration: typeof import('../../src/config/duration.js')['parseDuration'];

beforeEach(async () => {
  // Loaded per test: the part pattern is built when the module loads.
  vi.resetModules();
  ({ parseDuration } = await import('../../src/config/duration.js'));
});

describe('parseDuration', () => {
  it('rounds to whole milliseconds, half up', () => {
    expect(parseDuration('1.5ms')).toBe(2);
    expect(parseDuration('2.4ms')).toBe(2);
    expect(parseDuration('0.0015s')).toBe(2);
    expect(parseDuration('0.4ms')).toBe(0);
  });

  it('adds up repeated and mixed parts, decimals with several digits', () => {
    expect(parseDuration('1m1m')).toBe(120_000);
    expect(parseDuration('12.25s')).toBe(12_250);
    expect(parseDuration('1d12h')).toBe(129_600_000);
    expect(parseDuration('10ms5s')).toBe(5010);
  });

  it.each(['x1h', ' 1h', '1h ', '1h30', '1.5.5s', '.5s', '1hh', '1H', '5sec', '1e3ms'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});
