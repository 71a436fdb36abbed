// UsageMarks keeps the latest use per Secret.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Marks = typeof import('../../src/pull-secrets/usage-marks.js');
let M: Marks;

beforeEach(async () => {
  vi.resetModules();
  M = await import('../../src/pull-secrets/usage-marks.js');
});

describe('UsageMarks', () => {
  it('keeps the latest mark: an earlier one does not move it back', () => {
    const m = new M.UsageMarks();
    expect(m.size).toBe(0);
    m.mark('apps', 'acr-pull-a', 200);
    m.mark('apps', 'acr-pull-a', 100);
    expect(m.get('apps', 'acr-pull-a')).toBe(200);
    m.mark('apps', 'acr-pull-a', 300);
    expect(m.get('apps', 'acr-pull-a')).toBe(300);
    expect(m.size).toBe(1);
  });

  it('counts, lists and forgets marks per Secret', () => {
    const m = new M.UsageMarks();
    m.mark('apps', 'acr-pull-a', 1);
    m.mark('web', 'acr-pull-b', 2);
    expect(m.size).toBe(2);
    expect([...m.entries()]).toEqual([
      ['apps', 'acr-pull-a', 1],
      ['web', 'acr-pull-b', 2],
    ]);
    m.forget('apps', 'acr-pull-a');
    expect(m.size).toBe(1);
    expect(m.get('apps', 'acr-pull-a')).toBeUndefined();
  });
});
