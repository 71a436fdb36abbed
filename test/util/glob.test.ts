import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../../src/util/glob.js';

describe('globToRegExp', () => {
  it('matches * as any run and ? as one character, anchored at both ends', () => {
    expect(globToRegExp('team-*').source).toBe('^team-.*$');
    expect(globToRegExp('team-*').test('team-a')).toBe(true);
    expect(globToRegExp('team-*').test('xteam-a')).toBe(false);
    expect(globToRegExp('ns-?').test('ns-1')).toBe(true);
    expect(globToRegExp('ns-?').test('ns-12')).toBe(false);
  });

  it('takes regular-expression characters literally', () => {
    expect(globToRegExp('a.b').source).toBe('^a\\.b$');
    expect(globToRegExp('a.b').test('a.b')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a+(b)').test('a+(b)')).toBe(true);
    expect(globToRegExp('a+(b)').test('aab')).toBe(false);
  });
});
