// Reading requests and writing answers.
import type { IncomingMessage, ServerResponse } from 'node:http';

export class BodyTooLarge extends Error {}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Decodes `application/x-www-form-urlencoded` (also used for query strings), decoding once.
 * A literal `+` is a space, as every form decoder (and the gateway's servlet stack) reads it;
 * pop-core never sends one: its encoder writes `+` as %2B and space as %20, so values round-trip.
 * A repeated name keeps its first value, like a servlet's getParameter.
 */
export function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(text)) if (!(name in out)) out[name] = value;
  return out;
}

export function isFormBody(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

/** Header values as single strings (Node joins repeats with ', ', which is what a signer would see too). */
export function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  send(res, status, JSON.stringify(body), 'application/json;charset=utf-8', requestId);
}

export function send(res: ServerResponse, status: number, body: string, contentType: string, requestId: string): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'x-acs-request-id': requestId,
  });
  res.end(body);
}
