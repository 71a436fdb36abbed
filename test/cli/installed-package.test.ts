// The `review` command as users get it: `npm pack` (prepack builds dist/), the tarball installed into an empty
// folder, and the bin run through node_modules/.bin; `npx acr-pull-webhook` inside the repo. The pack runs in a
// copy of the sources, so its build never rewrites the dist/ other test files are running from.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve('.');
const FIXTURES = join(REPO, 'test/fixtures/cli');
/** What a pack needs: package metadata, the sources tsconfig compiles, the README. */
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'src', 'emulator', 'bench', 'test/support', 'test/e2e/support'];

let work: string;
let consumer: string;
let packed: { files: { path: string }[]; filename: string };
let install: SpawnSyncReturns<string>;

const npm = (args: string[], cwd: string) =>
  spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 150_000, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'acr-pack-'));
  const src = join(work, 'src-copy');
  mkdirSync(src);
  for (const p of SOURCES) cpSync(join(REPO, p), join(src, p), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'), 'dir');
  const pack = npm(['pack', '--json', '--pack-destination', work], src);
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stdout}\n${pack.stderr}`);
  // prepack's build log goes to stdout before the JSON array.
  packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('\n[') + 1))[0];

  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // From the npm cache where it can (the repo's own `npm ci` filled it); package metadata may come from the registry.
  install = npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.filename)], consumer);
  if (install.status !== 0) throw new Error(`npm install of the tarball failed:\n${install.stdout}\n${install.stderr}`);
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const bin = (...args: string[]) =>
  spawnSync(join(consumer, 'node_modules/.bin/acr-pull-webhook'), args, { cwd: consumer, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, ALIBABA_CLOUD_REGION_ID: 'cn-hangzhou' } });

describe('the packed package', () => {
  it('holds the compiled program, the credential provider bundle, the README and package.json; no tests, bench, fixtures, emulator, sources or maps', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining(['package.json', 'README.md', 'dist/src/bin.js', 'dist/src/cli.js', 'dist/src/main.js', 'dist/bin/acr-credential-provider.cjs', 'dist/bin/acr-credential-provider.identity.cjs']),
    );
    const stray = paths.filter((p) => !/^dist\/src\/.+\.js$/.test(p) && !/^dist\/bin\/acr-credential-provider(\.[a-z-]+)?\.cjs$/.test(p) && !['package.json', 'README.md', 'LICENSE'].includes(p));
    expect(stray).toEqual([]);
  });

  it('installs on this Node without engine warnings', () => {
    const output = `${install.stdout}\n${install.stderr}`;
    expect(output).not.toMatch(/EBADENGINE|Unsupported engine/i);
    // Warnings about this machine's own npm configuration (e.g. a `nodedir` in ~/.npmrc that a newer npm no
    // longer knows) say nothing about the package; every other warning does.
    const warnings = output.split('\n').filter((l) => /npm warn/i.test(l) && !/Unknown (env|user|global|project|builtin) config/.test(l));
    expect(warnings).toEqual([]);
  });
});

describe('node_modules/.bin/acr-pull-webhook review, installed from the tarball', () => {
  it('exits 0 with a report for an allowed file', () => {
    const r = bin('review', '-f', join(FIXTURES, 'mixed.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Pod default/tool: ALLOWED: adds pull Secret(s) default/acr-pull-');
    expect(r.status).toBe(0);
  });

  it('exits 1 with the denial for a denied file', () => {
    const r = bin('review', '-f', join(FIXTURES, 'denied.yaml'));
    expect(r.stdout).toContain('Pod default/typo: DENIED: k8s.aliyun.com/acr-user-arns needs k8s.aliyun.com/acr-service-arns');
    expect(r.status).toBe(1);
  });

  it('exits 2 with the reason for an unreadable file', () => {
    const r = bin('review', '-f', join(FIXTURES, 'unreadable.yaml'));
    expect(r.stderr).toContain(`acr-pull-webhook review: ${join(FIXTURES, 'unreadable.yaml')}: document 1:`);
    expect(r.status).toBe(2);
  });
});

describe('node_modules/.bin/acr-credential-provider, installed from the tarball', () => {
  const provider = (request: Record<string, unknown>, config: Record<string, unknown>) => {
    const file = join(work, `provider-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ credentialProvider: { cacheDir: join(work, 'provider-cache') }, ...config }));
    return spawnSync(join(consumer, 'node_modules/.bin/acr-credential-provider'), ['--config', file], {
      cwd: consumer,
      encoding: 'utf8',
      timeout: 60_000,
      input: JSON.stringify({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1', kind: 'CredentialProviderRequest', ...request }),
      // Nothing listens on port 1: the cloud clients load from the installed node_modules, and the call fails fast.
      env: { PATH: process.env.PATH, ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI5tInstalledPackage01', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'installed-package-secret-0000001', ALIBABA_CLOUD_STS_ENDPOINT: 'http://127.0.0.1:1/sts', ALIBABA_CLOUD_CR_ENDPOINT: 'http://127.0.0.1:1/cr/{region}' },
    });
  };

  it('answers an image it does not serve with an empty answer', () => {
    const r = provider({ image: 'docker.io/library/nginx:1.27' }, {});
    expect(r.stdout).toBe('{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"0s"}\n');
    expect(r.status).toBe(0);
  });

  it('loads the cloud clients from the installed dependencies for a configured registry (the cloud is unreachable here: a denial, exit 1)', () => {
    const r = provider({ image: 'demo-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1' }, { registries: [{ instanceId: 'cri-installed000001', region: 'cn-hangzhou', domains: ['demo-registry.cn-hangzhou.cr.aliyuncs.com'] }] });
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('acr-credential-provider: acr-pull-webhook failed getting a registry token for ACR instance cri-installed000001 in cn-hangzhou');
    expect(r.stderr).not.toMatch(/Cannot find module|internal error/);
    expect(r.status).toBe(1);
  });
});

describe('npx acr-pull-webhook review inside the repository', () => {
  it('runs the repository\'s own bin', () => {
    // npx links the repository into its own cache and keeps that link: a cache of our own, so a link made by
    // an older checkout (to another bin file) cannot answer instead.
    const r = spawnSync('npx', ['--no', 'acr-pull-webhook', 'review', '-f', 'test/fixtures/cli/denied.yaml'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: join(work, 'npm-cache') },
    });
    expect(r.stdout).toContain('Pod default/typo: DENIED');
    expect(r.status).toBe(1);
  });
});
