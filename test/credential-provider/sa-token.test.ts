// readServiceAccountToken (src/credential-provider/sa-token.ts): which claims make a usable ServiceAccount token,
// and exactly what is read from them. Every call runs inside a test (none at load), so that Stryker's mutants of
// this module are not static.
import { describe, expect, it } from 'vitest';
import { RequestError } from '../../src/credential-provider/protocol.js';
import { readServiceAccountToken } from '../../src/credential-provider/sa-token.js';

// 2027-01-15T08:00:00Z; the token expires ten minutes later.
const NOW = 1_800_000_000_000;
const EXP = 1_800_000_600;

const b64 = (text: string) => Buffer.from(text).toString('base64url');
/** A token whose payload is exactly `payload` (not necessarily JSON, not necessarily an object). */
const raw = (payload: string) => `${b64('{"alg":"RS256"}')}.${b64(payload)}.c2ln`;
const claims = (over: Record<string, unknown> = {}) => ({
  iss: 'https://kubernetes.default.svc',
  sub: 'system:serviceaccount:team-a:puller',
  aud: ['sts.aliyuncs.com'],
  exp: EXP,
  'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'puller', uid: 'uid-1' } },
  ...over,
});
const jwt = (over: Record<string, unknown> = {}) => raw(JSON.stringify(claims(over)));
const without = (name: string) => {
  const c: Record<string, unknown> = claims();
  delete c[name];
  return raw(JSON.stringify(c));
};

const refusal = (token: string): string => {
  try {
    readServiceAccountToken(token, NOW);
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    return (e as Error).message;
  }
  throw new Error('the token was accepted');
};

const UNREADABLE = 'serviceAccountToken has an unreadable payload';
const NO_ISSUER = 'serviceAccountToken has no usable issuer (iss)';
const NOT_SA = 'serviceAccountToken is not a ServiceAccount token (sub is not system:serviceaccount:<namespace>:<name>)';
const NO_AUDIENCE = 'serviceAccountToken has no usable audience (aud)';
const NO_EXPIRY = 'serviceAccountToken has no expiry (exp)';

describe('readServiceAccountToken', () => {
  it('reads issuer, subject, namespace, name, UID, audiences and the expiry in milliseconds', () => {
    expect(readServiceAccountToken(jwt(), NOW)).toEqual({
      issuer: 'https://kubernetes.default.svc',
      subject: 'system:serviceaccount:team-a:puller',
      namespace: 'team-a',
      name: 'puller',
      uid: 'uid-1',
      audiences: ['sts.aliyuncs.com'],
      expiresAt: 1_800_000_600_000,
    });
  });

  it.each([
    ['a number', '5'],
    ['a string', '"system:serviceaccount:team-a:puller"'],
    ['null', 'null'],
    ['an array', JSON.stringify([claims()])],
  ])('refuses a payload that is %s, not an object', (_what, payload) => {
    expect(refusal(raw(payload))).toBe(UNREADABLE);
  });

  it('refuses a payload that is not JSON with the same message', () => {
    expect(refusal(raw('{"iss":'))).toBe(UNREADABLE);
  });

  it.each([
    ['absent', without('iss')],
    ['a number', jwt({ iss: 12345 })],
    ['empty', jwt({ iss: '' })],
    ['with a space', jwt({ iss: 'has space' })],
    ['with a space after its first character', jwt({ iss: 'h ttps://kubernetes.default.svc' })],
    ['with a space before its last character', jwt({ iss: 'https://kubernetes.default.sv c' })],
    ['513 characters long', jwt({ iss: `https://${'k'.repeat(505)}` })],
  ])('refuses an issuer that is %s', (_what, token) => {
    expect(refusal(token)).toBe(NO_ISSUER);
  });

  it('accepts an issuer of 512 printable characters', () => {
    expect(readServiceAccountToken(jwt({ iss: `https://${'k'.repeat(504)}` }), NOW).issuer).toHaveLength(512);
  });

  it.each([
    ['absent', without('sub')],
    ['an array holding the subject', jwt({ sub: ['system:serviceaccount:team-a:puller'] })],
    ['preceded by other text', jwt({ sub: 'xsystem:serviceaccount:team-a:puller' })],
    ['followed by another component', jwt({ sub: 'system:serviceaccount:team-a:puller:extra' })],
    ['followed by an invalid character', jwt({ sub: 'system:serviceaccount:team-a:puller_' })],
    ['a user, not a ServiceAccount', jwt({ sub: 'alice' })],
  ])('refuses a subject that is %s', (_what, token) => {
    expect(refusal(token)).toBe(NOT_SA);
  });

  it('accepts a one-character namespace and a one-character name', () => {
    expect(readServiceAccountToken(jwt({ sub: 'system:serviceaccount:a:b' }), NOW)).toMatchObject({ subject: 'system:serviceaccount:a:b', namespace: 'a', name: 'b' });
  });

  it.each([
    ['absent', without('aud')],
    ['an empty list', jwt({ aud: [] })],
    ['a number in a list', jwt({ aud: [5] })],
    ['a list with one unusable audience after a good one', jwt({ aud: ['sts.aliyuncs.com', 'has space'] })],
    ['a list with one unusable audience before a good one', jwt({ aud: ['has space', 'sts.aliyuncs.com'] })],
  ])('refuses audiences that are %s', (_what, token) => {
    expect(refusal(token)).toBe(NO_AUDIENCE);
  });

  it('reads a single audience given as a string', () => {
    expect(readServiceAccountToken(jwt({ aud: 'sts.aliyuncs.com' }), NOW).audiences).toEqual(['sts.aliyuncs.com']);
  });

  it.each([
    ['absent', without('exp')],
    ['a string', jwt({ exp: String(EXP) })],
    // JSON has no Infinity, but a number too large for a double parses as one.
    ['infinite', raw(JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1e400'))],
  ])('refuses an expiry that is %s', (_what, token) => {
    expect(refusal(token)).toBe(NO_EXPIRY);
  });

  it('refuses a token that expired at or before now', () => {
    expect(refusal(jwt({ exp: 1_800_000_000 }))).toBe('serviceAccountToken has expired: check the node clock');
    expect(readServiceAccountToken(jwt({ exp: 1_800_000_001 }), NOW).expiresAt).toBe(1_800_000_001_000);
  });

  it.each([
    ['there is no kubernetes.io claim', { 'kubernetes.io': undefined }],
    ['kubernetes.io is null', { 'kubernetes.io': null }],
    ['kubernetes.io is a string', { 'kubernetes.io': 'team-a' }],
    ['kubernetes.io is a list', { 'kubernetes.io': [{ serviceaccount: { uid: 'uid-1' } }] }],
    ['serviceaccount is absent', { 'kubernetes.io': { namespace: 'team-a' } }],
    ['serviceaccount is null', { 'kubernetes.io': { serviceaccount: null } }],
    ['serviceaccount is a number', { 'kubernetes.io': { serviceaccount: 7 } }],
    ['serviceaccount is a list', { 'kubernetes.io': { serviceaccount: [{ uid: 'uid-1' }] } }],
    ['the uid is absent', { 'kubernetes.io': { serviceaccount: { name: 'puller' } } }],
    ['the uid is a number', { 'kubernetes.io': { serviceaccount: { uid: 42 } } }],
    ['the uid has a space', { 'kubernetes.io': { serviceaccount: { uid: 'uid 1' } } }],
  ])('reads the UID as "" when %s', (_what, over) => {
    expect(readServiceAccountToken(jwt(over), NOW)).toEqual({
      issuer: 'https://kubernetes.default.svc',
      subject: 'system:serviceaccount:team-a:puller',
      namespace: 'team-a',
      name: 'puller',
      uid: '',
      audiences: ['sts.aliyuncs.com'],
      expiresAt: 1_800_000_600_000,
    });
  });
});
