import { describe, expect, it } from 'vitest';
import { quote } from '../../src/util/quote.js';

describe('quote', () => {
  it('quotes a short string as JSON and leaves printable ASCII alone', () => {
    expect(quote('abc')).toBe('"abc"');
    expect(quote('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it('renders a value that is not a string through String()', () => {
    expect(quote(42)).toBe('"42"');
    expect(quote(undefined)).toBe('"undefined"');
    expect(quote(null)).toBe('"null"');
  });

  it('escapes everything outside printable ASCII as a four-digit \\u escape', () => {
    expect(quote('é')).toBe('"\\u00e9"');
    expect(quote('a\u202eb')).toBe('"a\\u202eb"');
    expect(quote('x\ny')).toBe('"x\\ny"');
  });

  it('keeps a string of exactly the bound whole', () => {
    expect(quote('abc', 3)).toBe('"abc"');
    expect(quote('a'.repeat(80))).toBe(`"${'a'.repeat(80)}"`);
  });

  it('cuts a longer string at the bound and says how long it was', () => {
    expect(quote('abcdef', 3)).toBe('"abc..." (6 characters)');
    expect(quote(`${'a'.repeat(80)}b`)).toBe(`"${'a'.repeat(80)}..." (81 characters)`);
    expect(quote('ééé', 2)).toBe('"\\u00e9\\u00e9..." (3 characters)');
  });
});
