// A small HTTPS client for tests: sends raw bytes, trusts one CA, returns status and parsed JSON.
import { Agent, request } from 'node:https';

export interface HttpsReply {
  status: number;
  text: string;
  json: any;
}

export function httpsRequest(
  url: string,
  opts: { method?: string; body?: string | Buffer; ca?: Buffer | string; headers?: Record<string, string>; timeoutMs?: number; agent?: Agent } = {},
): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
        ca: opts.ca,
        ...(opts.agent ? { agent: opts.agent } : {}),
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

/**
 * One kept-alive connection to `origin`, opened (with a GET /healthz) before any clock starts. The API server
 * reuses its connections; a test that times an answer against a deadline must not count a TLS handshake, which
 * on a loaded machine can eat the margin between the webhook's answer and the deadline.
 */
export async function warmAgent(origin: string, ca: Buffer | string): Promise<Agent> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const res = await httpsRequest(`${origin}/healthz`, { ca, agent });
  if (res.status !== 200) {
    agent.destroy();
    throw new Error(`GET ${origin}/healthz answered ${res.status}`);
  }
  return agent;
}
