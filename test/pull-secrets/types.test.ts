// DenialError: its defaults and name, which denials and logs show.
import { beforeEach, describe, expect, it, vi } from 'vitest';

type Types = typeof import('../../src/pull-secrets/types.js');
let t: Types;

beforeEach(async () => {
  vi.resetModules();
  t = await import('../../src/pull-secrets/types.js');
});

describe('DenialError', () => {
  it('defaults to a 500 InternalError', () => {
    const e = new t.DenialError('no credentials');
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('no credentials');
    expect(e.code).toBe(500);
    expect(e.reason).toBe('InternalError');
    expect(e.name).toBe('DenialError');
  });

  it('keeps the code and reason given', () => {
    const e = new t.DenialError('AssumeRole denied', 403, 'Forbidden');
    expect([e.code, e.reason]).toEqual([403, 'Forbidden']);
  });
});
