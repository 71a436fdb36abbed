// The plain-HTTP /metrics listener (src/metrics-server.ts) on 127.0.0.1 with a port from the system.
import { request, type Server } from 'node:http';
import { Server as NetServer, createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Metrics } from '../../src/metrics.js';
import { startMetricsServer } from '../../src/metrics-server.js';

let server: Server | undefined;
let taken: import('node:net').Server | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await new Promise((r) => (taken ? taken.close(r) : r(undefined)));
  server = undefined;
  taken = undefined;
});

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

const portOf = (s: Server) => (s.address() as { port: number }).port;

describe('startMetricsServer', () => {
  it('listens on the given address and answers GET /metrics with the registry in Prometheus text', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.refreshThreshold.set(900);
    server = await startMetricsServer(metrics, 0, '127.0.0.1');
    expect(server.address()).toMatchObject({ address: '127.0.0.1', family: 'IPv4' });
    expect(server.listening).toBe(true);
    expect(server.requestTimeout).toBe(10_000);
    const r = await get(portOf(server), '/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toMatch(/^# HELP acr_webhook_refresh_threshold_seconds /m);
    expect(r.body).toMatch(/^acr_webhook_refresh_threshold_seconds 900$/m);
  });

  it('without an address: asks for all interfaces, 0.0.0.0 (the test listens on loopback instead)', async () => {
    const asked: unknown[][] = [];
    const listen = NetServer.prototype.listen;
    vi.spyOn(NetServer.prototype, 'listen').mockImplementation(function (this: NetServer, ...args: unknown[]) {
      asked.push(args.slice(0, 2));
      return (listen as (...a: unknown[]) => NetServer).apply(this, [args[0], '127.0.0.1', ...args.slice(2)]);
    });
    server = await startMetricsServer(new Metrics({ defaultMetrics: false }), 0);
    expect(asked).toEqual([[0, '0.0.0.0']]);
    expect((await get(portOf(server), '/metrics')).status).toBe(200);
  });

  it('ignores the query string', async () => {
    server = await startMetricsServer(new Metrics({ defaultMetrics: false }), 0, '127.0.0.1');
    const r = await get(portOf(server), '/metrics?name[]=up');
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^acr_webhook_refresh_threshold_seconds 0$/m);
  });

  it.each([
    ['GET', '/'],
    ['GET', '/metricsx'],
    ['GET', '/metrics/'],
    ['GET', '/healthz'],
    ['POST', '/metrics'],
    ['HEAD', '/metrics'],
  ])('%s %s: 404 not found', async (method, path) => {
    server = await startMetricsServer(new Metrics({ defaultMetrics: false }), 0, '127.0.0.1');
    const r = await get(portOf(server), path, method);
    expect(r.status).toBe(404);
    expect(r.type).toBe('text/plain');
    expect(r.body).toBe(method === 'HEAD' ? '' : 'not found\n');
  });

  it('a registry that fails: 500 metrics unavailable', async () => {
    const failing = { registry: { contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: () => Promise.reject(new Error('collect failed')) } } as unknown as Metrics;
    server = await startMetricsServer(failing, 0, '127.0.0.1');
    const r = await get(portOf(server), '/metrics');
    expect(r).toEqual({ status: 500, type: 'text/plain', body: 'metrics unavailable\n' });
  });

  it('a port already taken: rejects with EADDRINUSE', async () => {
    taken = createServer();
    await new Promise<void>((r) => taken!.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    await expect(startMetricsServer(new Metrics({ defaultMetrics: false }), port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE', port, address: '127.0.0.1' });
  });
});
