// ROA signature (CR Personal Edition 2016-06-07), mirroring what @alicloud/pop-core's ROAClient signs:
//   METHOD\nAccept\nContent-MD5\nContent-Type\nDate\n + sorted `x-acs-*:value\n` + resource[?sorted k=v]
// with HMAC-SHA1 keyed by the bare secret (no "&", unlike RPC). Query values are signed decoded.
import { createHash, createHmac } from 'node:crypto';

export type HeaderBag = Readonly<Record<string, string | undefined>>;

/** `x-acs-*` headers (names lower-case), sorted, `name:value\n` with tab/CR/LF/FF turned into spaces and trimmed. */
export function canonicalizedAcsHeaders(headers: HeaderBag): string {
  return Object.keys(headers)
    .map((name) => name.toLowerCase())
    .filter((name) => name.startsWith('x-acs-'))
    .sort()
    .map((name) => `${name}:${(headerValue(headers, name) ?? '').replace(/[\t\n\r\f]/g, ' ').trim()}\n`)
    .join('');
}

/** The resource as signed: the API path (without the endpoint's own path) plus sorted raw `key=value`. */
export function canonicalizedResource(resourcePath: string, query: Readonly<Record<string, string>>): string {
  const keys = Object.keys(query).sort();
  if (keys.length === 0) return resourcePath;
  return `${resourcePath}?${keys.map((k) => `${k}=${query[k] ?? ''}`).join('&')}`;
}

export function roaStringToSign(
  method: string,
  resourcePath: string,
  headers: HeaderBag,
  query: Readonly<Record<string, string>>,
): string {
  const line = (name: string): string => headerValue(headers, name) ?? '';
  return (
    `${method.toUpperCase()}\n${line('accept')}\n${line('content-md5')}\n${line('content-type')}\n${line('date')}\n` +
    canonicalizedAcsHeaders(headers) +
    canonicalizedResource(resourcePath, query)
  );
}

/** base64(HMAC-SHA1(key = secret, stringToSign)). */
export function roaSignature(stringToSign: string, accessKeySecret: string): string {
  return createHmac('sha1', accessKeySecret).update(stringToSign, 'utf8').digest('base64');
}

/** base64(MD5(body)), the Content-MD5 ROA clients send (also for an empty body). */
export function contentMd5(body: Buffer | string): string {
  return createHash('md5').update(body).digest('base64');
}

function headerValue(headers: HeaderBag, lowerName: string): string | undefined {
  if (lowerName in headers) return headers[lowerName];
  const key = Object.keys(headers).find((k) => k.toLowerCase() === lowerName);
  return key === undefined ? undefined : headers[key];
}
