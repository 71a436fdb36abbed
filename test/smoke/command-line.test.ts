// The server entry point's own flags, on the compiled output as users run it (`node dist/src/main.js`, the image's
// command): --help and --version answer and exit without serving; anything else is refused.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const MAIN = resolve('dist/src/main.js');
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
// An environment that would otherwise fail start-up (bad port): a flag must answer before it is read.
const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH, PORT: 'not-a-port' } });

describe('node dist/src/main.js', () => {
  it.each(['--version', '-v'])('%s prints the package version and exits 0', (flag) => {
    const r = run(flag);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(['--help', '-h'])('%s prints the usage and exits 0', (flag) => {
    const r = run(flag);
    expect(r.stdout).toMatch(/^Usage: acr-pull-webhook server/);
    for (const setting of ['PORT', 'METRICS_PORT', 'TLS_CERT_FILE', 'CONFIG_FILE', 'ACR_PULL_WEBHOOK_MODE']) expect(r.stdout).toContain(setting);
    expect(r.status).toBe(0);
  });

  it('refuses an unknown argument with exit code 2 and the usage', () => {
    const r = run('--port=8443');
    expect(r.stderr).toContain('unknown argument "--port=8443"');
    expect(r.stderr).toContain('Usage:');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(2);
  });

  it('without arguments it starts, reading the environment (here: a bad PORT stops it)', () => {
    const r = run();
    expect(r.stderr).toContain('PORT must be a port number');
    expect(r.status).toBe(1);
  });
});
