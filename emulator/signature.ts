// RPC signature version 1.0 (HMAC-SHA1), exactly as the POP gateway computes it, so the emulator's
// verdict on a request matches the real one's. Exported for tests (published vector) and test clients.
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * RFC 3986 percent-encoding of UTF-8: A-Z a-z 0-9 - _ . ~ kept, everything else %XY upper-case
 * (space is %20, never +; `*` is %2A). encodeURIComponent leaves !'()* alone, hence the extra step.
 */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `name=value` pairs sorted by name (UTF-16 order, like the SDKs), `Signature` excluded, joined with `&`. */
export function canonicalizedQuery(params: Readonly<Record<string, string>>): string {
  return Object.keys(params)
    .filter((name) => name !== 'Signature')
    .sort()
    .map((name) => `${percentEncode(name)}=${percentEncode(params[name] ?? '')}`)
    .join('&');
}

/** `METHOD&%2F&encode(canonicalized query)`; the path never takes part in RPC signing. */
export function rpcStringToSign(method: string, params: Readonly<Record<string, string>>): string {
  return `${method.toUpperCase()}&${percentEncode('/')}&${percentEncode(canonicalizedQuery(params))}`;
}

/** base64(HMAC-SHA1(key = secret + "&", stringToSign)). */
export function rpcSignature(stringToSign: string, accessKeySecret: string): string {
  return createHmac('sha1', `${accessKeySecret}&`).update(stringToSign, 'utf8').digest('base64');
}

/** Signs a parameter set the way a client would; returns the params with `Signature` added. */
export function signRpcParams(
  method: string,
  params: Readonly<Record<string, string>>,
  accessKeySecret: string,
): Record<string, string> {
  const { Signature: _ignored, ...unsigned } = params;
  return { ...unsigned, Signature: rpcSignature(rpcStringToSign(method, unsigned), accessKeySecret) };
}

/** Constant-time string comparison (length leaks, which the signature's fixed length makes moot). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The RPC `Timestamp` format: `YYYY-MM-DDThh:mm:ssZ` UTC (milliseconds tolerated). Undefined when malformed. */
export function parseRpcTimestamp(value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?Z$/.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Reject dates Date.UTC silently rolled over (2024-02-31, 25:00:00).
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi) {
    return undefined;
  }
  return ms;
}

/** The format clients send: UTC without milliseconds. */
export function formatRpcTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
