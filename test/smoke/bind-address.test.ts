// BIND_ADDRESS and METRICS_BIND_ADDRESS on the compiled server: each listener is reachable on its address only,
// and a bad value stops start-up with a message naming the setting.
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCompiledWebhook, startCompiledWebhook, type WebhookProcess } from '../support/webhook-process.js';

let w: WebhookProcess | undefined;
afterAll(() => w?.kill());

/** 'open' when a TCP connection is accepted, else the error code. */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

describe('listen addresses', () => {
  it('serves reviews on BIND_ADDRESS only and metrics on METRICS_BIND_ADDRESS only', async () => {
    // Two loopback addresses: the whole of 127.0.0.0/8 reaches this host, so each is "another local address" of the other.
    w = await startCompiledWebhook({ BIND_ADDRESS: '127.0.0.2', METRICS_BIND_ADDRESS: '127.0.0.1' });
    const serving = w.lines('acr-pull-webhook serving')[0]!;
    expect(serving).toMatchObject({ address: '127.0.0.2', metricsAddress: '127.0.0.1' });
    expect(await probe('127.0.0.2', w.port)).toBe('open');
    expect(await probe('127.0.0.1', w.port)).toBe('ECONNREFUSED');
    expect(await probe('127.0.0.1', w.metricsPort)).toBe('open');
    expect(await probe('127.0.0.2', w.metricsPort)).toBe('ECONNREFUSED');
    expect((await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).status).toBe(200);
    // The standalone banner points curl at the address it listens on.
    expect(w.output().stderr).toContain(`HTTPS on https://127.0.0.2:${w.port}`);
    expect(w.output().stderr).toContain(`curl -sk https://127.0.0.2:${w.port}/mutate`);
  });

  it('refuses a value that is not an IP address, and an address this host does not have', async () => {
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ BIND_ADDRESS: 'localhost' }, /BIND_ADDRESS must be an IP address to listen on \(0\.0\.0\.0 for all interfaces, 127\.0\.0\.1, ::\), got "localhost"/],
      [{ METRICS_BIND_ADDRESS: '0.0.0.0:9090' }, /METRICS_BIND_ADDRESS must be an IP address/],
      // TEST-NET-2 (RFC 5737): never an address of this host.
      [{ BIND_ADDRESS: '198.51.100.7' }, /cannot listen for reviews on 198\.51\.100\.7:0 \(BIND_ADDRESS\/PORT\): EADDRNOTAVAIL: 198\.51\.100\.7 is not an address of this host/],
    ];
    for (const [env, message] of cases) {
      const p = spawnCompiledWebhook(env);
      try {
        const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
        expect(code, JSON.stringify(env)).toBe(1);
        expect(p.output().stderr).toMatch(message);
      } finally {
        p.kill();
      }
    }
  });
});
