// What a Kubernetes ServiceAccount token says about who it speaks for. Read, not verified: the plugin has no
// copy of the cluster's signing keys, and needs none. STS verifies the token (AssumeRoleWithOIDC against the
// OIDC provider's keys and the role's oidc:sub condition) before any credential is issued for it. The claims
// choose the namespace the policy is checked for and the partition of the cached sessions; only the kubelet,
// which obtained the token from the API server, can hand the plugin a token at all.
import { RequestError } from './protocol.js';

export interface ServiceAccountToken {
  issuer: string;
  /** `system:serviceaccount:<namespace>:<name>` */
  subject: string;
  namespace: string;
  name: string;
  /** The ServiceAccount's UID (claim kubernetes.io.serviceaccount.uid), '' when absent. */
  uid: string;
  audiences: string[];
  /** ms since epoch */
  expiresAt: number;
}

// Function declarations, not module constants, so the tests that read a token also cover the patterns.
function subject(): RegExp {
  return /^system:serviceaccount:([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?):([a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?)$/;
}
/** Printable ASCII without spaces: the claims are echoed in messages and cache keys. */
function printable(): RegExp {
  return /^[\x21-\x7e]{1,512}$/;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function readServiceAccountToken(token: string, now: number): ServiceAccountToken {
  const parts = token.split('.');
  if (parts.length !== 3) throw new RequestError('serviceAccountToken is not a JWT (three dot-separated parts)');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw new RequestError('serviceAccountToken has an unreadable payload');
  }
  if (!isObject(claims)) throw new RequestError('serviceAccountToken has an unreadable payload');
  const { iss, sub, exp } = claims;
  const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  if (typeof iss !== 'string' || !printable().test(iss)) throw new RequestError('serviceAccountToken has no usable issuer (iss)');
  const m = typeof sub === 'string' ? subject().exec(sub) : null;
  if (!m) throw new RequestError('serviceAccountToken is not a ServiceAccount token (sub is not system:serviceaccount:<namespace>:<name>)');
  if (!Array.isArray(aud) || aud.length === 0 || !aud.every((a): a is string => typeof a === 'string' && printable().test(a))) {
    throw new RequestError('serviceAccountToken has no usable audience (aud)');
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new RequestError('serviceAccountToken has no expiry (exp)');
  if (exp * 1000 <= now) throw new RequestError('serviceAccountToken has expired: check the node clock');
  const k8s = isObject(claims['kubernetes.io']) ? claims['kubernetes.io'] : {};
  const sa = isObject(k8s.serviceaccount) ? k8s.serviceaccount : {};
  const uid = typeof sa.uid === 'string' && printable().test(sa.uid) ? sa.uid : '';
  return { issuer: iss, subject: sub as string, namespace: m[1]!, name: m[3]!, uid, audiences: aud, expiresAt: exp * 1000 };
}
