// STS temporary credentials. Like the real SecurityToken, ours is self-contained: it carries the
// session (including its secret) encrypted under a key only this emulator holds, so the gateway can
// validate any STS AccessKeyId from the token alone. Standard base64 (with + / =) on purpose: clients
// must encode it correctly in form bodies, query strings and headers.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { randomAlnum } from './ids.js';

const PREFIX = 'CAIS';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What an STS session is; everything the gateway and RAM checks need later. */
export interface SessionClaims {
  /** STS AccessKeyId (`STS.` + 28 alphanumerics). */
  ak: string;
  /** Its AccessKeySecret. */
  sk: string;
  /** Expiry, epoch ms (whole seconds). */
  exp: number;
  /** Issue time, epoch ms. */
  iat: number;
  /** Account that owns the assumed role. */
  acct: string;
  /** Role ARN with the role's stored name. */
  role: string;
  roleId: string;
  /** RoleSessionName. */
  sess: string;
  /** Who assumed the role (user/session ARN, or `oidc:<provider arn>:<sub>`). */
  src: string;
}

export interface IssuedCredentials {
  AccessKeyId: string;
  AccessKeySecret: string;
  SecurityToken: string;
  /** UTC ISO-8601 without milliseconds. */
  Expiration: string;
}

export class SecurityTokenCodec {
  private readonly key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.key = key;
  }

  encode(claims: SessionClaims): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(claims), 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** Undefined when the token is not one this emulator issued (the gateway's "Malformed"). */
  decode(token: string): SessionClaims | undefined {
    if (!token.startsWith(PREFIX)) return undefined;
    const raw = token.slice(PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw)) return undefined;
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const json = Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      return JSON.parse(json.toString('utf8')) as SessionClaims;
    } catch {
      return undefined;
    }
  }

  /** New session credentials; expiry rounded down to the second so `Expiration` states it exactly. */
  issue(
    now: number,
    durationSeconds: number,
    session: Omit<SessionClaims, 'ak' | 'sk' | 'exp' | 'iat'>,
  ): { credentials: IssuedCredentials; claims: SessionClaims } {
    const iat = Math.floor(now / 1000) * 1000;
    const claims: SessionClaims = {
      ak: `STS.${randomAlnum(28)}`,
      sk: randomAlnum(44),
      exp: iat + durationSeconds * 1000,
      iat,
      ...session,
    };
    return {
      claims,
      credentials: {
        AccessKeyId: claims.ak,
        AccessKeySecret: claims.sk,
        SecurityToken: this.encode(claims),
        Expiration: new Date(claims.exp).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    };
  }
}
