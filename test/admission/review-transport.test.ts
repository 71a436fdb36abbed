// The raw review transport on its own: a body trickled past its deadline is cut in both protocols, and the
// `timeout` query parameter is read as the API server writes it (and survives malformed escapes).
import { createServer, type Server } from 'node:http';
import { connect, createServer as createH2Server, type Http2Server } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { reviewTransport, timeoutParam } from '../../src/review-transport.js';

const transport = reviewTransport({
  routes: { '/mutate': (body) => ({ status: 200, payload: { echo: body } }) },
  bodyLimit: 1024,
  bodyTimeoutMs: 300,
  onError: () => undefined,
});
const servers: (Server | Http2Server)[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});
const listen = (s: Server | Http2Server) =>
  new Promise<number>((r) => {
    servers.push(s);
    s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port));
  });

describe('review transport', () => {
  it('HTTP/1.1: a body still incomplete after its deadline loses the connection; a complete one is answered', async () => {
    const port = await listen(createServer((req, res) => transport.http1(req, res, transport.route(req.method, req.url)!)));
    const socket = netConnect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const t0 = Date.now();
    socket.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":');
    await new Promise((r) => socket.once('close', r));
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2500);
    const ok = await fetch(`http://127.0.0.1:${port}/mutate?timeout=5s`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await ok.json()).toEqual({ echo: { a: 1 } });
  });

  it('HTTP/2: a trickled stream is cancelled after its deadline, the session goes on', async () => {
    const server = createH2Server();
    server.on('stream', (stream, headers) => transport.http2(stream, headers, transport.route(headers[':method'], headers[':path'])!));
    const port = await listen(server);
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const t0 = Date.now();
      const stream = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
      stream.write('{"a":');
      stream.on('error', () => undefined);
      await new Promise((r) => stream.once('close', r));
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(stream.rstCode).toBe(8); // NGHTTP2_CANCEL
      const again = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
      let text = '';
      again.setEncoding('utf8');
      again.on('data', (d: string) => (text += d));
      await new Promise((r) => again.end('{"b":2}', () => again.once('end', r)));
      expect(JSON.parse(text)).toEqual({ echo: { b: 2 } });
    } finally {
      session.close();
    }
  });

  it.each([
    ['timeout=10s', '10s'],
    ['x=1&timeout=5s', '5s'],
    ['timeout=1%30s', '10s'],
    ['timeout=%', undefined],
    ['other=1', undefined],
  ])('timeout parameter of %s', (query, want) => {
    expect(timeoutParam(query)).toBe(want);
  });
});
