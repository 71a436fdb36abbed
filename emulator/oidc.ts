// OIDC tokens for AssumeRoleWithOIDC (RRSA). The emulator checks structure, algorithm family, iss,
// aud, sub and exp against the provider; it does not verify the JWT signature (it has no JWKS).
import { errors } from './errors.js';
import type { OidcProviderSpec } from './model.js';

export interface OidcClaims {
  iss: string;
  sub: string;
  aud: string[];
  /** Epoch seconds. */
  exp: number;
  iat?: number;
}

const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$/;

function decodePart(part: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(part)) throw errors.oidcInvalid('Cannot decode base64 encoded response(format invalided).');
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw errors.oidcInvalid('Cannot decode base64 encoded response(format invalided).');
}

/** Validates `token` against `provider` at `nowMs`; returns its claims or throws the STS error. */
export function verifyOidcToken(token: string, provider: OidcProviderSpec, nowMs: number): OidcClaims {
  if (!token) throw errors.oidcInvalid('The OIDCToken can not empty.');
  const parts = token.split('.');
  if (parts.length !== 3) throw errors.oidcInvalid("The number of Jwt field should be divided into 3 parts with '.' .");
  const header = decodePart(parts[0]!);
  const payload = decodePart(parts[1]!);
  const alg = typeof header.alg === 'string' ? header.alg : '';
  if (!ASYMMETRIC.test(alg)) throw errors.oidcInvalid(`The algorithm ${alg} that be specified in Jwt header is unknown.`);
  const { iss, sub, exp, iat } = payload;
  const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : undefined;
  if (typeof iss !== 'string' || typeof sub !== 'string' || !sub || typeof exp !== 'number' || !aud?.every((a) => typeof a === 'string')) {
    throw errors.oidcInvalid('The Jwt content is invalid that cannot be recognized.');
  }
  if (iss !== provider.issuer) throw errors.oidcIssuer();
  if (!aud.some((a) => provider.clientIds.includes(a as string))) throw errors.oidcAudience();
  if (exp * 1000 <= nowMs) throw errors.oidcExpired();
  return { iss, sub, aud: aud as string[], exp, ...(typeof iat === 'number' ? { iat } : {}) };
}

/**
 * A JWT shaped like a Kubernetes service-account token, for tests and the demo. The signature part
 * is random filler: nothing in the emulator verifies it.
 */
export function makeOidcToken(claims: { iss: string; sub: string; aud: string | string[]; exp: number; iat?: number }): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const iat = claims.iat ?? claims.exp - 3600;
  return `${enc({ alg: 'RS256', kid: 'emulator' })}.${enc({ ...claims, iat })}.${Buffer.from('emulator-unsigned').toString('base64url')}`;
}
