// A small HTTPS client for tests: sends raw bytes, trusts one CA, returns status and parsed JSON.
import { request } from 'node:https';

export interface HttpsReply {
  status: number;
  text: string;
  json: any;
}

export function httpsRequest(
  url: string,
  opts: { method?: string; body?: string | Buffer; ca?: Buffer | string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
        ca: opts.ca,
        rejectUnauthorized: true,
        headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
