// The POP gateway's checks, common to every signed RPC and ROA request: required parameters, signature
// method/version, clock skew, access key (permanent or STS + SecurityToken), signature, nonce replay.
// Order: syntax, time, key, signature, then the nonce (recorded only for correctly signed requests,
// so garbage cannot burn a client's nonces).
import { sessionArn, type Caller } from './caller.js';
import { findAccessKey } from './directory.js';
import { errors } from './errors.js';
import { contentMd5, roaSignature, roaStringToSign } from './roa-signature.js';
import { parseRpcTimestamp, rpcSignature, rpcStringToSign, safeEqual } from './signature.js';
import type { EmulatorState } from './state.js';

interface ResolvedKey {
  secret: string;
  caller: Exclude<Caller, { kind: 'anonymous' }>;
}

/** A token, when present, is validated first (it is what carries an STS key's secret). */
function resolveAccessKey(state: EmulatorState, accessKeyId: string, securityToken: string | undefined): ResolvedKey {
  if (securityToken) {
    const claims = state.securityTokens.decode(securityToken);
    if (!claims) throw errors.securityTokenMalformed();
    if (claims.ak !== accessKeyId) throw errors.securityTokenMismatch();
    if (claims.exp <= state.clock.now()) throw errors.securityTokenExpired();
    return {
      secret: claims.sk,
      caller: { kind: 'session', accountId: claims.acct, arn: sessionArn(claims.role, claims.sess), accessKeyId, session: claims },
    };
  }
  if (accessKeyId.startsWith('STS.')) throw errors.missingSecurityToken();
  const owner = findAccessKey(state.world, accessKeyId);
  if (!owner) throw errors.accessKeyNotFound();
  if ((owner.key.status ?? 'Active') !== 'Active') throw errors.accessKeyInactive();
  if (owner.kind === 'root') {
    return { secret: owner.key.secret, caller: { kind: 'root', accountId: owner.account.id, arn: `acs:ram::${owner.account.id}:root`, accessKeyId } };
  }
  return {
    secret: owner.key.secret,
    caller: {
      kind: 'user',
      accountId: owner.account.id,
      arn: `acs:ram::${owner.account.id}:user/${owner.user.name}`,
      accessKeyId,
      userName: owner.user.name,
      permissions: owner.user.permissions ?? {},
    },
  };
}

function checkSkew(state: EmulatorState, requestTime: number): void {
  if (Math.abs(state.clock.gatewayNow() - requestTime) > state.settings.timestampToleranceMs) throw errors.timestampExpired();
}

function checkNonce(state: EmulatorState, accessKeyId: string, nonce: string | undefined): void {
  if (nonce === undefined) return;
  if (state.nonces.checkAndRecord(accessKeyId, nonce, state.clock.gatewayNow())) throw errors.nonceUsed();
}

const RPC_REQUIRED = ['AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'Timestamp'] as const;

/**
 * Verifies a signed RPC request. `params` are all request parameters (query and form body merged,
 * decoded once). `allowAnonymous`: the action may be called unsigned (AssumeRoleWithOIDC); a request
 * that carries no AccessKeyId and no Signature is then anonymous.
 */
export function authenticateRpc(
  state: EmulatorState,
  method: string,
  params: Readonly<Record<string, string>>,
  allowAnonymous: boolean,
): Caller {
  if (allowAnonymous && params.AccessKeyId === undefined && params.Signature === undefined) return { kind: 'anonymous' };
  for (const name of RPC_REQUIRED) if (!params[name]) throw errors.missingParameter(name);
  if (params.SignatureMethod !== 'HMAC-SHA1') throw errors.invalidSignatureMethod();
  if (params.SignatureVersion !== '1.0') throw errors.invalidSignatureVersion();
  const time = parseRpcTimestamp(params.Timestamp!);
  if (time === undefined) throw errors.timestampFormat();
  checkSkew(state, time);
  const accessKeyId = params.AccessKeyId!;
  const { secret, caller } = resolveAccessKey(state, accessKeyId, params.SecurityToken);
  const stringToSign = rpcStringToSign(method, params);
  if (!safeEqual(rpcSignature(stringToSign, secret), params.Signature!)) throw errors.signatureMismatch(stringToSign);
  checkNonce(state, accessKeyId, params.SignatureNonce);
  return caller;
}

export interface RoaRequest {
  method: string;
  /** The API path as the client signed it (the endpoint's own path prefix removed), e.g. `/tokens`. */
  resource: string;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | undefined>>;
  /** Decoded query. */
  query: Readonly<Record<string, string>>;
  body: Buffer;
  /** Expected `x-acs-version`. */
  version: string;
}

/** Verifies a signed ROA request (`Authorization: acs <AK>:<signature>`). */
export function authenticateRoa(state: EmulatorState, req: RoaRequest): Caller {
  const h = req.headers;
  const authorization = h.authorization;
  if (!authorization) throw errors.missingAuthorization();
  const m = /^acs ([^:\s]+):(\S+)$/.exec(authorization);
  if (!m) throw errors.invalidAuthorization();
  const accessKeyId = m[1]!;
  const signature = m[2]!;
  if (!h.date) throw errors.missingParameter('Date');
  const time = Date.parse(h.date);
  if (Number.isNaN(time)) throw errors.timestampFormat();
  checkSkew(state, time);
  if (h['x-acs-signature-method'] !== undefined && h['x-acs-signature-method'] !== 'HMAC-SHA1') throw errors.invalidSignatureMethod();
  if (h['x-acs-signature-version'] !== undefined && h['x-acs-signature-version'] !== '1.0') throw errors.invalidSignatureVersion();
  if (!h['x-acs-version']) throw errors.missingParameter('Version');
  if (h['x-acs-version'] !== req.version) throw errors.invalidVersion();
  const token = h['x-acs-security-token'];
  // With STS credentials the SDK repeats the key in x-acs-accesskey-id; it must be the signing key.
  if (token && h['x-acs-accesskey-id'] !== undefined && h['x-acs-accesskey-id'] !== accessKeyId) throw errors.securityTokenMismatch();
  const { secret, caller } = resolveAccessKey(state, accessKeyId, token);
  if (h['content-md5'] !== undefined && h['content-md5'] !== contentMd5(req.body)) throw errors.contentMd5Mismatch();
  const stringToSign = roaStringToSign(req.method, req.resource, h, req.query);
  if (!safeEqual(roaSignature(stringToSign, secret), signature)) throw errors.signatureMismatch(stringToSign);
  checkNonce(state, accessKeyId, h['x-acs-signature-nonce']);
  return caller;
}
