// The registry's token service: Docker registry token authentication (the protocol a registry configured with
// `auth.token`, such as CNCF distribution, sends clients to). A client that got `401` from an Enterprise instance's
// registry asks `GET <realm>?service=<service>&scope=repository:<ns>/<repo>:pull` with Basic `cr_temp_user` and
// the temporary password from GetAuthorizationToken, and gets a JWT the registry verifies with `jwks()`.
//
// The password must be a live token this emulator issued for the very instance behind `service` (expiry on the
// service clock). What the token grants is decided now by RAM, as ACR authorizes logins by RAM policy: `pull`
// needs cr:PullRepository, `push` cr:PushRepository, for the identity that asked for the token (a role session
// keeps its role's current permissions; revoking trust does not end it, it only stops new sessions).
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { isAllowed } from './caller.js';
import { TEMP_USERNAME } from './cr.js';
import { findInstance } from './directory.js';
import type { InstanceSpec } from './model.js';
import type { EmulatorState } from './state.js';

/** Path of the token endpoint (the realm is `https://<host>/auth`, the host being the test's choice). */
export const REGISTRY_TOKEN_PATH = '/auth';
/** `iss` of the JWTs (the registry's `auth.token.issuer`). */
export const REGISTRY_TOKEN_ISSUER = 'acr-emulator-token-service';
/** Bearer token lifetime before the temporary password's own expiry caps it. */
export const REGISTRY_BEARER_TTL_SECONDS = 300;

/** The `service` an instance's registry announces (its `auth.token.service`) and the JWT audience. */
export function registryServiceName(inst: Pick<InstanceSpec, 'id' | 'region'>): string {
  return `registry.aliyuncs.com:${inst.region}:${inst.id}`;
}

export interface Jwk {
  kty: 'RSA';
  n: string;
  e: string;
  kid: string;
  alg: 'RS256';
  use: 'sig';
}

/** RS256 key pair, made on first use (most emulators never sign a registry token). */
export class RegistryTokenSigner {
  private key: { privateKey: KeyObject; jwk: Jwk } | undefined;

  private ensure(): { privateKey: KeyObject; jwk: Jwk } {
    if (!this.key) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pub = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
      // kid = RFC 7638 thumbprint: what distribution computes for a key it trusts, so a certificate of this key in
      // `rootcertbundle` would match too.
      const kid = createHash('sha256').update(`{"e":"${pub.e}","kty":"RSA","n":"${pub.n}"}`).digest('base64url');
      this.key = { privateKey, jwk: { kty: 'RSA', n: pub.n, e: pub.e, kid, alg: 'RS256', use: 'sig' } };
    }
    return this.key;
  }

  /** The registry's `auth.token.jwks` file content. */
  jwks(): { keys: Jwk[] } {
    return { keys: [this.ensure().jwk] };
  }

  sign(claims: Record<string, unknown>): string {
    const { privateKey, jwk } = this.ensure();
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${enc({ typ: 'JWT', alg: 'RS256', kid: jwk.kid })}.${enc(claims)}`;
    return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  }
}

export interface TokenAnswer {
  status: number;
  body: Record<string, unknown>;
  /** ARN of the identity behind the password, when it was valid. */
  principal?: string;
  /** Error code of a refusal. */
  code?: string;
}

interface Scope {
  type: string;
  name: string;
  actions: string[];
}

/** `type[(class)]:name:actions`; the name may hold ':' (a registry port), so the type ends at the first ':' and the actions start after the last. */
function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first).replace(/\(.*\)$/, '');
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(',').filter((a) => a !== '');
  return name === '' ? undefined : { type, name, actions };
}

const refuse = (status: number, code: string, message: string): TokenAnswer => ({ status, code, body: { errors: [{ code, message, detail: null }] } });

/** Basic credentials, or undefined for an anonymous request; 'malformed' for an unreadable header. */
function basicCredentials(authorization: string | undefined): { username: string; password: string } | 'malformed' | undefined {
  if (authorization === undefined || authorization === '') return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})$/i.exec(authorization.trim());
  if (!m) return 'malformed';
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? 'malformed' : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Answers one token request. `query` is the raw query string (`scope` may repeat and may hold several scopes separated by spaces). */
export function handleRegistryToken(state: EmulatorState, signer: RegistryTokenSigner, method: string, query: string, authorization: string | undefined): TokenAnswer {
  if (method !== 'GET') return refuse(405, 'UNSUPPORTED', 'the token endpoint answers GET only');
  const params = new URLSearchParams(query);
  const service = params.get('service') ?? '';
  const m = /^registry\.aliyuncs\.com:([a-z0-9-]+):(cri-[a-z0-9]+)$/.exec(service);
  const inst = m ? findInstance(state.world, m[2]!) : undefined;
  if (!inst || inst.region !== m![1]) return refuse(400, 'INVALID_REQUEST', 'unknown service');
  const scopes: Scope[] = [];
  for (const text of params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '')) {
    const scope = parseScope(text);
    if (!scope) return refuse(400, 'INVALID_REQUEST', 'malformed scope');
    scopes.push(scope);
  }

  const creds = basicCredentials(authorization);
  if (creds === 'malformed') return refuse(400, 'INVALID_REQUEST', 'malformed Authorization header');
  const now = state.clock.now();
  let holder: { principal: string; allows: (action: string) => boolean; expiresAt: number } | undefined;
  if (creds) {
    const issued = state.registryTokens.get(creds.password);
    // One answer for every bad login (unknown, expired, another instance's, another edition's), as a login page gives.
    if (creds.username !== TEMP_USERNAME || !issued || issued.edition !== 'enterprise' || issued.instanceId !== inst.id || issued.expiresAt <= now) {
      return refuse(401, 'UNAUTHORIZED', 'incorrect username or password');
    }
    const permission = { pull: 'crPullRepository', push: 'crPushRepository' } as const;
    holder = {
      principal: issued.principal,
      expiresAt: issued.expiresAt,
      allows: (action) => action in permission && isAllowed(state.world, issued.holder, permission[action as keyof typeof permission], inst.id),
    };
  }

  // Every repository is private: an anonymous client gets a token that grants nothing, and the registry says 401.
  const access = scopes
    .filter((s) => s.type === 'repository')
    .map((s) => ({ type: s.type, name: s.name, actions: holder ? [...new Set(s.actions.filter((a) => holder.allows(a)))] : [] }))
    .filter((a) => a.actions.length > 0);
  // JWT times are wall-clock seconds (the registry checks them against its own clock); the lifetime is capped by
  // what is left of the temporary password on the service clock.
  const wallNow = Math.floor(Date.now() / 1000);
  const left = holder ? Math.floor((holder.expiresAt - now) / 1000) : REGISTRY_BEARER_TTL_SECONDS;
  const ttl = Math.max(1, Math.min(REGISTRY_BEARER_TTL_SECONDS, left));
  const token = signer.sign({
    iss: REGISTRY_TOKEN_ISSUER,
    sub: holder ? TEMP_USERNAME : '',
    aud: service,
    exp: wallNow + ttl,
    nbf: wallNow,
    iat: wallNow,
    jti: randomUUID(),
    access,
  });
  return {
    status: 200,
    body: { token, access_token: token, expires_in: ttl, issued_at: new Date(wallNow * 1000).toISOString() },
    ...(holder ? { principal: holder.principal } : {}),
  };
}
