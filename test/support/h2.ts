// An HTTP/2 client for tests (node:http2): one session, requests as streams on it, JSON answers.
import { connect, type ClientHttp2Session } from 'node:http2';

export interface H2Reply {
  status: number;
  headers: Record<string, unknown>;
  text: string;
  json: any;
}

export function h2Session(origin: string, ca: Buffer | string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(origin, { ca, servername: 'localhost' });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export function h2Request(session: ClientHttp2Session, path: string, opts: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': opts.body !== undefined ? 'POST' : 'GET',
      ':path': path,
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    });
    let headers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => stream.close(), opts.timeoutMs ?? 10_000);
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (headers[':status'] === undefined) return reject(new Error(`stream closed without an answer (code ${stream.rstCode})`));
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(headers[':status']), headers, text, json });
    });
    if (opts.body !== undefined) stream.end(opts.body);
    else stream.end();
  });
}
