// OIDC tokens for AssumeRoleWithOIDC (RRSA). RAM trusts an OIDC provider by its issuer URL and the keys that
// issuer publishes (its JWKS): the emulator's provider holds those keys, and a token passes only with a
// signature by one of them, the provider's issuer, one of its client IDs as audience, and a time window
// that includes now. The role's trust policy conditions (oidc:sub, oidc:aud) are checked by sts.ts.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
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

/** JWS algorithms RRSA accepts: asymmetric only (an HMAC "signature" would need a shared secret). */
const ALGORITHMS: Record<string, { hash: string; kty: 'RSA' | 'EC'; pss?: boolean; crv?: string }> = {
  RS256: { hash: 'sha256', kty: 'RSA' },
  RS384: { hash: 'sha384', kty: 'RSA' },
  RS512: { hash: 'sha512', kty: 'RSA' },
  PS256: { hash: 'sha256', kty: 'RSA', pss: true },
  PS384: { hash: 'sha384', kty: 'RSA', pss: true },
  PS512: { hash: 'sha512', kty: 'RSA', pss: true },
  ES256: { hash: 'sha256', kty: 'EC', crv: 'P-256' },
  ES384: { hash: 'sha384', kty: 'EC', crv: 'P-384' },
  ES512: { hash: 'sha512', kty: 'EC', crv: 'P-521' },
};

/** Tolerated clock difference for nbf, like most JWT verifiers (the real value is undocumented). */
const NBF_LEEWAY_MS = 60_000;

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

/** Throws on a JWKS that RAM would not accept as a provider's keys (test set-up mistakes surface early). */
export function checkJwks(jwks: unknown, where: string): void {
  const keys = (jwks as { keys?: unknown } | undefined)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${where}: jwks.keys must list at least one public key`);
  for (const k of keys as JsonWebKey[]) {
    if ((k as { d?: unknown }).d !== undefined) throw new Error(`${where}: jwks holds a private key`);
    try {
      createPublicKey({ key: k, format: 'jwk' });
    } catch (e) {
      throw new Error(`${where}: jwks key ${JSON.stringify((k as { kid?: unknown }).kid ?? '(no kid)')} is not a usable public key: ${(e as Error).message}`);
    }
  }
}

function signatureValid(alg: string, kid: unknown, signingInput: string, signature: Buffer, provider: OidcProviderSpec): boolean {
  const a = ALGORITHMS[alg]!;
  const candidates = provider.jwks.keys.filter(
    (k) =>
      k.kty === a.kty &&
      (kid === undefined || (k as { kid?: unknown }).kid === kid) &&
      ((k as { alg?: unknown }).alg === undefined || (k as { alg?: unknown }).alg === alg) &&
      (a.crv === undefined || k.crv === a.crv),
  );
  for (const jwk of candidates) {
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const options = a.pss
      ? { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -1 /* RSA_PSS_SALTLEN_DIGEST */ }
      : a.kty === 'EC'
        ? { key, dsaEncoding: 'ieee-p1363' as const }
        : key;
    if (verify(a.hash, Buffer.from(signingInput), options, signature)) return true;
  }
  return false;
}

/** Validates `token` against `provider` at `nowMs`; returns its claims or throws the STS error. */
export function verifyOidcToken(token: string, provider: OidcProviderSpec, nowMs: number): OidcClaims {
  if (!token) throw errors.oidcInvalid('The OIDCToken can not empty.');
  const parts = token.split('.');
  if (parts.length !== 3) throw errors.oidcInvalid("The number of Jwt field should be divided into 3 parts with '.' .");
  const header = decodePart(parts[0]!);
  const payload = decodePart(parts[1]!);
  const alg = typeof header.alg === 'string' ? header.alg : '';
  if (!Object.hasOwn(ALGORITHMS, alg)) throw errors.oidcInvalid(`The algorithm ${alg} that be specified in Jwt header is unknown.`);
  // Signature first: nothing a forger wrote is looked at before the issuer's key vouches for it.
  if (!/^[A-Za-z0-9_-]*$/.test(parts[2]!) || !signatureValid(alg, header.kid, `${parts[0]}.${parts[1]}`, Buffer.from(parts[2]!, 'base64url'), provider)) {
    throw errors.oidcSignature();
  }
  const { iss, sub, exp, iat, nbf } = payload;
  const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : undefined;
  if (typeof iss !== 'string' || typeof sub !== 'string' || !sub || typeof exp !== 'number' || !aud?.every((a) => typeof a === 'string')) {
    throw errors.oidcInvalid('The Jwt content is invalid that cannot be recognized.');
  }
  if (iss !== provider.issuer) throw errors.oidcIssuer();
  if (!aud.some((a) => provider.clientIds.includes(a as string))) throw errors.oidcAudience();
  if (exp * 1000 <= nowMs) throw errors.oidcExpired();
  if (typeof nbf === 'number' && nbf * 1000 > nowMs + NBF_LEEWAY_MS) throw errors.oidcInvalid('The Jwt is not yet valid.');
  return { iss, sub, aud: aud as string[], exp, ...(typeof iat === 'number' ? { iat } : {}) };
}

/** An issuer's signing key for tests and the demo; `jwk` is its public half, as the issuer's JWKS publishes it. */
export interface OidcSigningKey {
  kid: string;
  alg: 'ES256' | 'RS256';
  /** PKCS#8 PEM, so a world stays plain data. */
  privateKeyPem: string;
  jwk: JsonWebKey;
}

/** ES256 by default (generated in about a millisecond); RS256 is what Kubernetes API servers use. */
export function createOidcSigningKey(kid: string, alg: 'ES256' | 'RS256' = 'ES256'): OidcSigningKey {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid,
    alg,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
  };
}

/** A JWT shaped like a Kubernetes service-account token, signed with `key`. */
export function makeOidcToken(
  claims: { iss: string; sub: string; aud: string | string[]; exp: number; iat?: number; nbf?: number; [claim: string]: unknown },
  key: OidcSigningKey,
): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const iat = claims.iat ?? claims.exp - 3600;
  const input = `${enc({ alg: key.alg, kid: key.kid, typ: 'JWT' })}.${enc({ ...claims, iat })}`;
  const privateKey: KeyObject = createPrivateKey(key.privateKeyPem);
  const signature = sign('sha256', Buffer.from(input), key.alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey);
  return `${input}.${signature.toString('base64url')}`;
}
