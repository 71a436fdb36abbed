// The built plugin (dist/, run through a symlink as the kubelet finds it) against the emulator: node identity,
// workload identity (RRSA with ServiceAccount tokens), the disk cache, denials and the empty answer.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAcrAnnotations } from '../../src/acr/annotations.js';
import { startEmulator, TEMP_USERNAME, type Emulator } from '../../emulator/index.js';
import { DISCOVERING_NODE_KEY, makeNode, NODE_KEY, providerWorld, STARTING_INSTANCE, request, runPlugin, saToken, type Node, type ProviderWorld } from './world.js';

let emu: Emulator;
let w: ProviderWorld;
const nodes: Node[] = [];
/** Every secret seen in the test: none may appear on stderr. */
const secrets = new Set<string>([NODE_KEY.secret, DISCOVERING_NODE_KEY.secret]);
const stderrs: string[] = [];

const HZ = 'demo-registry.cn-hangzhou.cr.aliyuncs.com';
const BJ = 'demo-owner-registry.cn-beijing.cr.aliyuncs.com';
const PERSONAL = 'registry.cn-hangzhou.aliyuncs.com';
const SVC = 'k8s.aliyun.com/acr-service-arns';
const USR = 'k8s.aliyun.com/acr-user-arns';

function node(config?: Record<string, unknown>, yaml?: string): Node {
  const n = makeNode(emu, w, config, yaml);
  nodes.push(n);
  return n;
}

async function plugin(n: Node, body: Record<string, unknown> | string, env?: NodeJS.ProcessEnv, args?: string[]) {
  const r = await runPlugin(n, body, env, args);
  stderrs.push(r.stderr);
  for (const a of Object.values(r.response?.auth ?? {})) secrets.add(a.password);
  return r;
}

const issued = (password: string) => emu.state.registryTokens.get(password);
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);

beforeAll(async () => {
  w = providerWorld();
  emu = await startEmulator({ world: w.world });
});
beforeEach(() => emu.reset());
afterAll(async () => {
  await emu.close();
  for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
});

describe('node identity', () => {
  it("answers a configured registry with the node's own identity: auth keyed by the image's registry, cacheKeyType Registry, duration up to expiry minus the threshold", async () => {
    const n = node();
    const r = await plugin(n, request(`${HZ}/team/app:1.0`));
    expect(r.code).toBe(0);
    expect(r.response).toMatchObject({ kind: 'CredentialProviderResponse', apiVersion: 'credentialprovider.kubelet.k8s.io/v1', cacheKeyType: 'Registry' });
    expect(Object.keys(r.response!.auth!)).toEqual([HZ]);
    const auth = r.response!.auth![HZ]!;
    expect(auth.username).toBe(TEMP_USERNAME);
    const token = issued(auth.password)!;
    expect(token).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: `acs:ram::${w.world.accounts[0]!.id}:user/node` });
    // The emulator's token lives 1 h; the default refresh threshold is 15 min.
    const expected = (token.expiresAt - 15 * 60_000 - Date.now()) / 1000;
    expect(seconds(r.response!.cacheDuration)).toBeGreaterThan(expected - 30);
    expect(seconds(r.response!.cacheDuration)).toBeLessThanOrEqual(expected + 1);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(1);
    // The VPC domain of the same instance is the same token, from the disk cache.
    const vpc = await plugin(n, request(`demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/team/app`));
    expect(vpc.response!.auth!['demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com']!.password).toBe(auth.password);
    expect(emu.calls.count({})).toBe(1);
  });

  it('answers from the disk cache with no cloud call and without loading YAML, pop-core or @alicloud/credentials; files are 0600 in a 0700 directory', async () => {
    const n = node();
    const first = await plugin(n, request(`${HZ}/a:1`));
    const calls = emu.calls.count({});
    expect(calls).toBeGreaterThan(0);
    const hook = join(n.dir, 'modules.cjs');
    const loaded = join(n.dir, 'loaded.json');
    writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(loaded)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const warm = await plugin(n, request(`${HZ}/b:2`), { NODE_OPTIONS: `--require ${hook}` });
    expect(warm.code).toBe(0);
    expect(warm.response!.auth![HZ]).toEqual(first.response!.auth![HZ]);
    expect(emu.calls.count({})).toBe(calls);
    const modules = JSON.parse(readFileSync(loaded, 'utf8')) as string[];
    expect(modules.filter((m) => /node_modules\/(yaml|@alicloud)\//.test(m))).toEqual([]);
    expect(statSync(n.cacheDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(n.cacheDir);
    expect(files.length).toBeGreaterThan(0);
    // Entries are 0600; V8's compile cache (Node 22.1+) is a directory of its own, 0700 too.
    for (const f of files) expect(statSync(join(n.cacheDir, f)).mode & 0o777).toBe(f === 'compile-cache' ? 0o700 : 0o600);
  });

  it("turns V8's compile cache on inside its cache directory on the way to a cloud call (Node 22.1+; Node 20 has none), not for an answer from the disk cache", async () => {
    const supported = typeof (nodeModule as unknown as { enableCompileCache?: unknown }).enableCompileCache === 'function';
    const n = node();
    const compileCache = join(n.cacheDir, 'compile-cache');
    expect((await plugin(n, request(`${HZ}/a:1`))).code).toBe(0);
    expect(existsSync(compileCache)).toBe(supported);
    if (supported) expect(readdirSync(compileCache).length).toBeGreaterThan(0);
    expect(statSync(n.cacheDir).mode & 0o777).toBe(0o700);
    rmSync(compileCache, { recursive: true, force: true });
    const warm = await plugin(n, request(`${HZ}/b:2`));
    expect(warm.code).toBe(0);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(1);
    expect(existsSync(compileCache)).toBe(false);
    // The clean-up of expired entries leaves it alone.
    expect(readdirSync(n.cacheDir).every((f) => /^(sts|token)-[0-9a-f]{40}\.json$/.test(f))).toBe(true);
  });

  it('respects expiry: an entry past its usable time is not served, and is replaced', async () => {
    const n = node();
    const first = await plugin(n, request(`${HZ}/a`));
    const [file] = readdirSync(n.cacheDir).filter((f) => f.startsWith('token-'));
    const entry = JSON.parse(readFileSync(join(n.cacheDir, file!), 'utf8'));
    writeFileSync(join(n.cacheDir, file!), JSON.stringify({ ...entry, usableUntil: Date.now() - 1 }), { mode: 0o600 });
    const again = await plugin(n, request(`${HZ}/a`));
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(2);
    expect(again.response!.auth![HZ]!.password).not.toBe(first.response!.auth![HZ]!.password);
    expect(JSON.parse(readFileSync(join(n.cacheDir, file!), 'utf8')).usableUntil).toBeGreaterThan(Date.now());
  });

  it('refuses a cache directory others can read, and still answers (from the cloud)', async () => {
    const n = node();
    await plugin(n, request(`${HZ}/a`));
    chmodSync(n.cacheDir, 0o755);
    const r = await plugin(n, request(`${HZ}/a`));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`not using the on-disk cache: ${n.cacheDir} has mode 755; it must be 0700`);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(2);
  });

  it('lists the domains of a configured instance given without domains, with the node identity', async () => {
    const n = node({ registries: [{ instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou' }] });
    const r = await plugin(n, request('registry.example.com/team/app:1'));
    expect(r.code).toBe(0);
    expect(Object.keys(r.response!.auth!)).toEqual(['registry.example.com']);
    expect(issued(r.response!.auth!['registry.example.com']!.password)!.principal).toContain(':user/node');
    expect(emu.calls.count({ action: 'ListInstanceEndpoint', caller: NODE_KEY.id })).toBe(1);
    // Not one of its domains: an empty answer (its token was fetched alongside the list, and is cached).
    const other = await plugin(n, request('other.example.com/a'));
    expect(other.response!.auth).toBeUndefined();
    expect(other.stderr).toContain('no credentials for other.example.com');
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(1);
  });

  it('reads a YAML configuration too', async () => {
    const n = node({}, '');
    writeFileSync(
      n.configFile,
      [
        'registries:',
        `  - {instanceId: ${w.world.demo.hangzhouInstanceId}, region: cn-hangzhou, domains: [registry.example.com]}`,
        'credentials: {refreshThreshold: 50m}',
        `credentialProvider: {cacheDir: ${n.cacheDir}}`,
      ].join('\n'),
    );
    const r = await plugin(n, request('registry.example.com/x/y@sha256:' + 'a'.repeat(64)));
    expect(Object.keys(r.response!.auth!)).toEqual(['registry.example.com']);
    // 60 min token, 50 min threshold.
    expect(seconds(r.response!.cacheDuration)).toBeLessThanOrEqual(600);
    expect(seconds(r.response!.cacheDuration)).toBeGreaterThan(560);
  });

  it('gives an empty answer (no auth, not cached by the kubelet) for images it does not serve', async () => {
    const n = node();
    for (const image of ['nginx', 'docker.io/library/nginx:1.27', 'ghcr.io/org/app', 'registry.cn-beijing.aliyuncs.com/ns/app']) {
      const r = await plugin(n, request(image));
      expect(r.code).toBe(0);
      expect(r.response).toEqual({ kind: 'CredentialProviderResponse', apiVersion: 'credentialprovider.kubelet.k8s.io/v1', cacheKeyType: 'Registry', cacheDuration: '0s' });
      expect(r.stderr).toMatch(/no credentials for .*: .* is not a registry this node is configured to serve/);
    }
    expect(emu.calls.count({})).toBe(0);
  });

  it('answers in the apiVersion the kubelet asked in', async () => {
    const r = await plugin(node(), { ...request(`${HZ}/a`), apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1' });
    expect(r.response!.apiVersion).toBe('credentialprovider.kubelet.k8s.io/v1beta1');
  });

  it('exits 2 with a clear message on a bad request, argument or configuration', async () => {
    const n = node();
    const bad = [
      await plugin(n, 'not json'),
      await plugin(n, { ...request(`${HZ}/a`), apiVersion: 'credentialprovider.kubelet.k8s.io/v2' }),
      await plugin(n, { ...request(`${HZ}/a`), kind: 'Pod' }),
      await plugin(n, request(`${HZ}/a`), {}, ['--verbose']),
      await plugin(n, request(`${HZ}/a`), { ACR_CREDENTIAL_PROVIDER_CONFIG: join(n.dir, 'missing.yaml') }),
    ];
    expect(bad.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(bad.map((r) => r.stdout)).toEqual(['', '', '', '', '']);
    expect(bad[0]!.stderr).toContain('not JSON');
    expect(bad[1]!.stderr).toContain('unsupported apiVersion "credentialprovider.kubelet.k8s.io/v2"');
    expect(bad[2]!.stderr).toContain('expected kind CredentialProviderRequest');
    expect(bad[3]!.stderr).toContain('unknown argument "--verbose"');
    expect(bad[4]!.stderr).toMatch(/cannot read .*missing.yaml: ENOENT/);
    // --config wins over the environment.
    const viaArg = await plugin(n, request(`${HZ}/a`), { ACR_CREDENTIAL_PROVIDER_CONFIG: join(n.dir, 'missing.yaml') }, ['--config', n.configFile]);
    expect(viaArg.code).toBe(0);
  });
});

describe('the bin: one bundled file, standard input and output as the kubelet uses them', () => {
  /**
   * Spawns the plugin and lets the test feed its stdin: a pipe, as the kubelet (Go's os/exec) gives it, through
   * `bash -c 'exec plugin < <(cat)'`; or, with `socket`, the socket Node's child_process gives.
   */
  function spawnPlugin(n: Node, stdin: 'pipe' | 'socket', feed: (stdin: NodeJS.WritableStream) => void): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
    return new Promise((done, fail) => {
      const started = Date.now();
      const child =
        stdin === 'pipe'
          ? spawn('bash', ['--norc', '--noprofile', '-c', 'exec "$0" < <(exec cat 2>/dev/null)', n.bin], { env: n.env, stdio: ['pipe', 'pipe', 'pipe'] })
          : spawn(n.bin, [], { env: n.env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.stdin.on('error', () => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', fail);
      child.on('close', (code) => {
        clearTimeout(timer);
        // Lets a `cat` still waiting on the test's end go.
        child.stdin.destroy();
        stderrs.push(stderr);
        done({ code, stdout, stderr, ms: Date.now() - started });
      });
      feed(child.stdin);
    });
  }

  it('is the package bin: a bundle of the compiled sources that loads its dependencies from node_modules, never a copy of them', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.bin['acr-credential-provider']).toBe('dist/bin/acr-credential-provider.cjs');
    const text = readFileSync(pkg.bin['acr-credential-provider'], 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(pkg.bin['acr-credential-provider']).mode & 0o111).toBe(0o111);
    // rolldown marks every bundled module with its path: only the project's own compiled sources are inside.
    const bundled = [...text.matchAll(/^\/\/ (\S+\.[cm]?js)$/gm)].map((m) => m[1]!);
    expect(bundled).toContain('dist/src/credential-provider/main.js');
    // (\0rolldown/runtime.js: the bundler's own interop helpers.)
    expect(bundled.filter((f) => !f.startsWith('dist/src/') && f !== '\\0rolldown/runtime.js')).toEqual([]);
    // Loaded at run time, each only where it is needed: the identity chunk (with @alicloud/credentials), pop-core
    // and yaml (through createRequire).
    const required = new Set([...text.matchAll(/\brequire(?:\$\d+)?\("([^"]+)"\)|\.href\)\("([^"]+)"\)/g)].map((m) => m[1] ?? m[2]!));
    expect([...required].filter((r) => !r.startsWith('node:') && r !== 'url').sort()).toEqual(['./acr-credential-provider.identity.cjs', '@alicloud/pop-core', 'yaml']);
  });

  it.each(['pipe', 'socket'] as const)('reads a request that arrives late and in pieces on a %s, and writes the answer', async (kind) => {
    const n = node();
    const body = JSON.stringify(request(`${HZ}/team/app:1`));
    const r = await spawnPlugin(n, kind, (stdin) => {
      setTimeout(() => stdin.write(body.slice(0, 20)), 300);
      setTimeout(() => stdin.end(body.slice(20)), 600);
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).auth[HZ].username).toBe(TEMP_USERNAME);
    expect(r.stdout.endsWith('}\n')).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(600);
  });

  it.each(['pipe', 'socket'] as const)('refuses a request over 1 MiB, and gives up on a %s that never closes after 10 s (exit 2, never a hang)', async (kind) => {
    const n = node();
    const [big, open] = await Promise.all([
      spawnPlugin(n, kind, (stdin) => stdin.end(Buffer.alloc((1 << 20) + 10, 0x20))),
      spawnPlugin(n, kind, (stdin) => stdin.write('{"apiVersion":')),
    ]);
    expect(big.code).toBe(2);
    expect(big.stdout).toBe('');
    expect(big.stderr).toBe('acr-credential-provider: the request on stdin exceeds 1048576 bytes\n');
    expect(open.code).toBe(2);
    expect(open.stdout).toBe('');
    expect(open.stderr).toBe('acr-credential-provider: no complete request on stdin within 10 s\n');
    expect(open.ms).toBeGreaterThanOrEqual(9_900);
    expect(open.ms).toBeLessThan(20_000);
  }, 30_000);
});

describe('Enterprise discovery (node identity)', () => {
  const HZ_VPC = 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com';
  const discovery = { enabled: true, regions: ['cn-hangzhou', 'cn-beijing'], personalEdition: false, missInterval: '5s' };
  const discovering = { ALIBABA_CLOUD_ACCESS_KEY_ID: DISCOVERING_NODE_KEY.id, ALIBABA_CLOUD_ACCESS_KEY_SECRET: DISCOVERING_NODE_KEY.secret };
  const discoveryNode = () => node({ registries: [], discovery });

  it("looks up the instance an unknown default domain names (ListInstance by name, the node's identity), serves it, and keeps the finding for discovery.interval", async () => {
    const n = discoveryNode();
    const r = await plugin(n, request(`${HZ}/team/app:1`), discovering);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Object.keys(r.response!.auth!)).toEqual([HZ]);
    expect(issued(r.response!.auth![HZ]!.password)).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: `acs:ram::${w.world.accounts[0]!.id}:user/node-discovery` });
    expect(['ListInstance', 'ListInstanceEndpoint', 'GetInstanceVpcEndpoint', 'GetAuthorizationToken'].map((action) => emu.calls.count({ action, caller: DISCOVERING_NODE_KEY.id }))).toEqual([1, 1, 1, 1]);
    const calls = emu.calls.count({});
    // The VPC domain names the same instance: found in the disk cache, and so is its token.
    const vpc = await plugin(n, request(`${HZ_VPC}/team/app:1`), discovering);
    expect(vpc.response!.auth![HZ_VPC]!.password).toBe(r.response!.auth![HZ]!.password);
    expect(emu.calls.count({})).toBe(calls);
    // Custom domains name no instance: discovery does not find them (list the instance under registries).
    const custom = await plugin(n, request('registry.example.com/team/app:1'), discovering);
    expect(custom.response!.auth).toBeUndefined();
    expect(emu.calls.count({})).toBe(calls);
  });

  it("gives an empty answer for a name with no running instance in the node's account, and asks again only after discovery.missInterval", async () => {
    const n = discoveryNode();
    const images = ['nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a', `${STARTING_INSTANCE.name}-registry.cn-hangzhou.cr.aliyuncs.com/a`, `${BJ}/team/app:1`];
    const first = await plugin(n, request(images[0]!), discovering);
    // Remembered for missInterval (5 s here): no second lookup.
    const again = await plugin(n, request(images[0]!), discovering);
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(1);
    const [starting, otherAccount] = [await plugin(n, request(images[1]!), discovering), await plugin(n, request(images[2]!), discovering)];
    for (const r of [first, again, starting, otherAccount]) {
      expect(r.code).toBe(0);
      expect(r.response!.auth).toBeUndefined();
      expect(r.response!.cacheDuration).toBe('0s');
    }
    expect(first.stderr).toContain("no credentials for nosuch-registry.cn-hangzhou.cr.aliyuncs.com: discovery found no running ACR Enterprise instance named nosuch in cn-hangzhou in the account of the node's own identity");
    expect(again.stderr).toContain('no running ACR Enterprise instance named nosuch in cn-hangzhou');
    expect(starting.stderr).toContain(`no running ACR Enterprise instance named ${STARTING_INSTANCE.name} in cn-hangzhou`);
    // demo-owner is the owner account's: not the node's to discover.
    expect(otherAccount.stderr).toContain('no running ACR Enterprise instance named demo-owner in cn-beijing');
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(3);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(0);
    // A region outside discovery.regions is never looked up.
    expect((await plugin(n, request('x-registry.cn-shanghai.cr.aliyuncs.com/a'), discovering)).stderr).toContain('is not a registry this node is configured to serve');
    // Once missInterval has passed, the name is looked up again.
    const entries = readdirSync(n.cacheDir).filter((f) => f.startsWith('discovery-')).map((f) => JSON.parse(readFileSync(join(n.cacheDir, f), 'utf8')));
    const miss = entries.find((e) => e.key === 'cn-hangzhou|nosuch')!;
    expect(miss.value).toEqual({ instance: null, checkAfter: expect.any(Number) });
    expect(miss.value.checkAfter - Date.now()).toBeLessThanOrEqual(5000);
    await new Promise((r) => setTimeout(r, Math.max(0, miss.value.checkAfter - Date.now()) + 50));
    await plugin(n, request(images[0]!), discovering);
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(4);
  });

  it('keeps serving a discovered instance when its re-check fails, as the webhook keeps what discovery knew', async () => {
    const n = discoveryNode();
    const first = await plugin(n, request(`${HZ}/a`), discovering);
    const [file] = readdirSync(n.cacheDir).filter((f) => f.startsWith('discovery-'));
    const entry = JSON.parse(readFileSync(join(n.cacheDir, file!), 'utf8'));
    expect(entry.value.instance).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: expect.arrayContaining([HZ, HZ_VPC, 'registry.example.com']) });
    // discovery.interval (10m by default) has passed.
    writeFileSync(join(n.cacheDir, file!), JSON.stringify({ ...entry, value: { ...entry.value, checkAfter: Date.now() - 1 } }), { mode: 0o600 });
    const fault = emu.injectServerError(503, { action: 'ListInstance' });
    try {
      const r = await plugin(n, request(`${HZ}/a`), discovering);
      expect(r.code).toBe(0);
      expect(r.response!.auth![HZ]).toEqual(first.response!.auth![HZ]);
      expect(r.stderr).toContain('re-checking ACR instance demo in cn-hangzhou failed (');
      expect(r.stderr).toContain('serving it as discovered before');
    } finally {
      fault.remove();
    }
    // Only the first lookup was answered; the re-check (with the client's retries) met the fault.
    const lookups = emu.calls.list({ action: 'ListInstance' });
    expect(lookups.filter((c) => !c.fault)).toHaveLength(1);
    expect(lookups.length).toBeGreaterThan(1);
  });

  it('denies with the RAM permissions discovery needs when the node may not list instances', async () => {
    const r = await plugin(discoveryNode(), request(`${HZ}/a`));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("acr-pull-webhook failed looking up ACR instance demo in cn-hangzhou (discovery) as the node's own identity: NoPermission");
    expect(r.stderr).toContain('Grant cr:ListInstance (on instance/*), cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint to that identity in RAM, or turn discovery off and list the instance under registries');
  });

  it('leaves configured registries to their configuration: no discovery call for them', async () => {
    const r = await plugin(node({ discovery }), request(`${HZ}/a`));
    expect(r.code).toBe(0);
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(0);
  });
});

describe('workload identity (ServiceAccount token, RRSA)', () => {
  const chain = { [SVC]: '', [USR]: '' };
  beforeAll(() => {
    chain[SVC] = w.serviceRole;
    chain[USR] = w.world.demo.userRoleArn;
  });

  it('runs the cross-account chain from the ServiceAccount token: AssumeRoleWithOIDC (unsigned), AssumeRole, a token of the owner account', async () => {
    const n = node();
    const token = saToken(w, 'team-a', 'puller');
    secrets.add(token);
    const r = await plugin(n, request(`${BJ}/team/app:1`, { token, annotations: chain }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.response!.cacheKeyType).toBe('Registry');
    const auth = r.response!.auth![BJ]!;
    expect(issued(auth.password)).toMatchObject({
      instanceId: w.world.demo.beijingInstanceId,
      accountId: w.world.accounts[1]!.id,
      principal: `acs:ram::${w.world.accounts[1]!.id}:role/acr-pull-user/acr-pull@team-a`,
    });
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(1);
    expect(emu.calls.byCaller().anonymous).toBe(1);
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(1);
    expect(emu.calls.count({ action: 'AssumeRole', caller: NODE_KEY.id })).toBe(0);
    const calls = emu.calls.count({});

    // Another Pod of the same ServiceAccount (another token): its sessions and token come from the disk cache.
    const again = await plugin(n, request(`${BJ}/team/other:2`, { token: saToken(w, 'team-a', 'puller'), annotations: chain }));
    expect(again.response!.auth![BJ]).toEqual(auth);
    expect(emu.calls.count({})).toBe(calls);
  });

  it("never serves one ServiceAccount's cached sessions to another", async () => {
    const n = node();
    await plugin(n, request(`${BJ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: chain }));
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(1);
    const other = await plugin(n, request(`${BJ}/a`, { token: saToken(w, 'team-a', 'other'), annotations: chain }));
    expect(other.code).toBe(0);
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(2);
    // Same name, recreated ServiceAccount (another UID): not the same identity either.
    await plugin(n, request(`${BJ}/a`, { token: saToken(w, 'team-a', 'puller', { uid: 'recreated' }), annotations: chain }));
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(3);
  });

  it('serves an instance named by ID on its custom domain, listing its domains with the service role', async () => {
    const annotations = { 'k8s.aliyun.com/acr-instance-id': `cn-hangzhou:${w.world.demo.hangzhouInstanceId}`, [SVC]: w.serviceRole };
    const r = await plugin(node({ registries: [] }), request('registry.example.com/team/app:1', { token: saToken(w, 'team-a', 'by-id'), annotations }));
    expect(r.code).toBe(0);
    expect(Object.keys(r.response!.auth!)).toEqual(['registry.example.com']);
    expect(issued(r.response!.auth!['registry.example.com']!.password)).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: expect.stringContaining(':role/acr-pull/acr-pull@team-a') });
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(1);
    // A host that is not one of the instance's domains gets an empty answer, not that instance's token.
    const elsewhere = await plugin(node({ registries: [] }), request('other.example.com/app', { token: saToken(w, 'team-a', 'by-id'), annotations }));
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.response!.auth).toBeUndefined();
  });

  it('serves a Personal Edition host', async () => {
    const r = await plugin(node(), request(`${PERSONAL}/ns/app:1`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.serviceRole } }));
    expect(r.code).toBe(0);
    const auth = r.response!.auth![PERSONAL]!;
    expect(issued(auth.password)).toMatchObject({ edition: 'personal', region: 'cn-hangzhou' });
  });

  it('denies an untrusted role with the trust statement to add, and exit 1', async () => {
    const r = await plugin(node(), request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.untrustedRole } }));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`acr-pull-webhook failed assuming service role ${w.untrustedRole} with the token of ServiceAccount team-a/puller (AssumeRoleWithOIDC): AuthenticationFail.NoPermission`);
    expect(r.stderr).toContain(`trust policy must allow the OIDC provider ${w.providerArn} with the conditions oidc:sub = system:serviceaccount:team-a:puller and oidc:aud = sts.aliyuncs.com`);
  });

  it('denies a token with a foreign audience with the kubelet setting to change', async () => {
    const r = await plugin(node(), request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller', { aud: 'https://kubernetes.default.svc' }), annotations: { [SVC]: w.serviceRole } }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('AuthenticationFail.OIDCToken.AudienceNotMatch');
    expect(r.stderr).toContain("set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig");
  });

  it("denies bad annotations with the webhook's own message, naming the key", async () => {
    const annotations = { [SVC]: w.serviceRole, 'k8s.aliyun.com/acr-user-arn': w.world.demo.userRoleArn };
    const r = await plugin(node(), request(`${BJ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations }));
    expect(r.code).toBe(1);
    const webhook = parseAcrAnnotations(annotations);
    expect(webhook.kind).toBe('invalid');
    expect(r.stderr.trim()).toBe(`acr-credential-provider: ServiceAccount annotations: ${(webhook as { message: string }).message}`);
    expect(r.stderr).toContain('did you mean "k8s.aliyun.com/acr-user-arns"?');
  });

  it("applies the configuration's policy to the ServiceAccount's namespace", async () => {
    const policy = { rules: [{ name: 'team-a', namespaces: { names: ['team-a'] }, serviceArns: [w.serviceRole], instances: [`cn-hangzhou:${w.world.demo.hangzhouInstanceId}`] }] };
    const n = node({ policy });
    expect((await plugin(n, request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.serviceRole } }))).code).toBe(0);
    const denied = await plugin(n, request(`${BJ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: chain }));
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`forbidden by the acr-pull-webhook policy for namespace team-a (rules team-a apply): user role ${w.world.demo.userRoleArn} is not allowed`);
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(1);
  });

  it('denies an expired token, and a service ARN when no OIDC provider is configured', async () => {
    const expired = await plugin(node(), request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller', { ttl: -10 }), annotations: { [SVC]: w.serviceRole } }));
    expect(expired.code).toBe(1);
    expect(expired.stderr).toContain('serviceAccountToken has expired');
    const n = node();
    writeFileSync(n.configFile, JSON.stringify({ credentialProvider: { cacheDir: n.cacheDir } }));
    const noProvider = await plugin(n, request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.serviceRole } }));
    expect(noProvider.code).toBe(1);
    expect(noProvider.stderr).toContain('sets no credentialProvider.oidcProviderArn');
    expect(emu.calls.count({})).toBe(0);
  });

  it('serves an unannotated ServiceAccount like node mode (configured registries, node identity)', async () => {
    const r = await plugin(node(), request(`${HZ}/a`, { token: saToken(w, 'team-a', 'plain') }));
    expect(r.code).toBe(0);
    expect(issued(r.response!.auth![HZ]!.password)!.principal).toContain(':user/node');
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(0);
  });
});

describe('secrets', () => {
  it('never print a password, AccessKey secret, SecurityToken or ServiceAccount token', () => {
    // STS secrets are only in the cache files: collect them there.
    for (const n of nodes) {
      if (!existsSync(n.cacheDir)) continue;
      for (const f of readdirSync(n.cacheDir).filter((name) => name.endsWith('.json'))) {
        const { value } = JSON.parse(readFileSync(join(n.cacheDir, f), 'utf8'));
        for (const field of ['accessKeySecret', 'securityToken', 'password']) if (typeof value?.[field] === 'string') secrets.add(value[field]);
      }
    }
    expect(secrets.size).toBeGreaterThan(5);
    const all = stderrs.join('\n');
    for (const s of secrets) expect(all.includes(s), 'a secret reached stderr').toBe(false);
  });
});
