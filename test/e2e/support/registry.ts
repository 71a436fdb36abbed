// A real OCI registry (CNCF distribution, built by npm run e2e) standing in for one ACR Enterprise instance:
// HTTPS on 127.0.0.1 with a certificate for the instance's domains, filesystem storage in a temp dir, and token
// authentication against the emulator's token service, like ACR's registry. Stopped (process group) at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { freePort } from './cluster.js';

export interface RegistryOptions {
  binary: string;
  workDir: string;
  /** The instance this registry serves (names files and logs). */
  instanceId: string;
  /** Token auth: where clients get tokens, the `service` this registry announces, the issuer and key it trusts. */
  realm: string;
  service: string;
  issuer: string;
  jwks: unknown;
  tls: { cert: string; key: string };
  caCert: string;
}

export interface Registry {
  /** 127.0.0.1:port, where the instance's domains are dialed. */
  address: string;
  stop(): Promise<void>;
}

/** The config file distribution reads (YAML is a superset of JSON). */
function config(o: RegistryOptions, port: number, dir: string): string {
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(o.jwks));
  return JSON.stringify({
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex'), tls: { certificate: o.tls.cert, key: o.tls.key } },
    auth: { token: { realm: o.realm, service: o.service, issuer: o.issuer, jwks: join(dir, 'jwks.json'), signingalgorithms: ['RS256'] } },
  });
}

/** GET /v2/ until the registry answers; it must challenge with our realm and service. */
function probe(port: number, ca: Buffer, servername: string): Promise<{ status: number; challenge: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v2/', servername, ca, timeout: 2000, headers: { host: servername } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate'] ?? '') });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export async function startRegistry(o: RegistryOptions, servername: string): Promise<Registry> {
  const dir = join(o.workDir, `registry-${o.instanceId}`);
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  const file = join(dir, 'config.yml');
  writeFileSync(file, config(o, port, dir));
  const log = createWriteStream(join(dir, 'registry.log'));
  const child: ChildProcess = spawn(o.binary, ['serve', file], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // No trace exporter: nothing to send spans to.
    env: { PATH: process.env.PATH, OTEL_TRACES_EXPORTER: 'none' },
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `registry ${o.instanceId} exited (${code ?? signal}); see ${join(dir, 'registry.log')}`));
  // Never outlive the test process, also when it dies.
  const onExit = () => {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  process.once('exit', onExit);
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const gone = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
    await gone;
    clearTimeout(timer);
  };
  const ca = readFileSync(o.caCert);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(exited);
    const r = await probe(port, ca, servername).catch(() => undefined);
    if (r) {
      if (r.status === 401 && r.challenge.includes(`realm="${o.realm}"`) && r.challenge.includes(`service="${o.service}"`)) break;
      await stop();
      throw new Error(`registry ${o.instanceId}: unexpected answer to GET /v2/: ${r.status} ${r.challenge}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`registry ${o.instanceId}: not serving after 30 s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { address: `127.0.0.1:${port}`, stop };
}
