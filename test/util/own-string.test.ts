import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ownString } from '../../src/util/own-string.js';

describe('ownString', () => {
  it('returns exactly the same text, lone surrogates included (keys must not merge)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      expect(ownString(s)).toBe(s);
    }), { numRuns: 2000 });
    expect(ownString('x\ud800')).toBe('x\ud800');
    expect(ownString('x\ud800')).not.toBe('x\ufffd');
    expect(ownString('')).toBe('');
  });
});
