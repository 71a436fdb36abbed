// One plugin execution in-process: run({ argv, env, readStdin, now }) against the emulator, with a configuration
// file and a cache directory of its own per test. Exact answers (the response text, exit codes, stderr lines) for
// where the configuration comes from, bad requests, node and workload identity, the disk cache, discovery and
// failures. bin.test.ts runs the bundled plugin the same way the kubelet does.
import diagnostics from 'node:diagnostics_channel';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startEmulator, TEMP_USERNAME, roleArn, DEMO_OWNER_ACCOUNT_ID, type Emulator } from '../../emulator/index.js';
import type { RunIO, RunResult } from '../../src/credential-provider/run.js';
import { emulatorEnv } from '../support/webhook-process.js';
import { DISCOVERING_NODE_KEY, NODE_KEY, providerWorld, request, saToken, STARTING_INSTANCE, type ProviderWorld } from './world.js';

// V8's compile cache is observed through its one entry point (Node 20 has no such API to observe).
const compileCache = vi.hoisted(() => ({ enable: vi.fn<(dir: () => string | undefined) => void>() }));
vi.mock('../../src/credential-provider/compile-cache.js', () => ({ enableCompileCache: compileCache.enable }));
// Which default configuration files "exist" (the real ones are under /etc).
const fsHook = vi.hoisted(() => ({ existing: undefined as string[] | undefined, asked: [] as string[] }));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const existsSync = (p: import('node:fs').PathLike): boolean => {
    if (fsHook.existing === undefined) return actual.existsSync(p);
    fsHook.asked.push(String(p));
    return fsHook.existing.includes(String(p));
  };
  return { ...actual, existsSync, default: { ...actual, existsSync } };
});

type Key = { id: string; secret: string };
const HZ = 'demo-registry.cn-hangzhou.cr.aliyuncs.com';
const HZ_VPC = 'demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com';
const BJ = 'demo-owner-registry.cn-beijing.cr.aliyuncs.com';
const SVC = 'k8s.aliyun.com/acr-service-arns';
const V1 = 'credentialprovider.kubelet.k8s.io/v1';
const USAGE = 'usage: acr-credential-provider [--config <file>]   (a CredentialProviderRequest on stdin, as the kubelet sends it)';
const EXTERNAL_ID = 'ext-0123456789';
const MINUTE = 60_000;
const DAY = 24 * 3600_000;

let w: ProviderWorld;
let emu: Emulator;
/** A role of the owner account that only the service role may assume, and only with EXTERNAL_ID. */
let externalRole: string;
let run: (io: RunIO) => Promise<RunResult>;
let dir: string;
let cacheDir: string;
let configFile: string;
/** The plugin's clock and the emulator's: whole seconds, a little in the past. */
let T: number;

beforeAll(async () => {
  w = providerWorld();
  const [workload, owner] = w.world.accounts;
  workload!.users!.find((u) => u.name === 'node')!.permissions!.assumeRole = [w.serviceRole];
  owner!.roles!.push({ name: 'acr-pull-ext', trust: [{ role: w.serviceRole, externalId: EXTERNAL_ID }], permissions: { crGetAuthorizationToken: '*', crReadInstance: '*' } });
  externalRole = roleArn(DEMO_OWNER_ACCOUNT_ID, 'acr-pull-ext');
  emu = await startEmulator({ world: w.world });
});
afterAll(() => emu.close());
beforeEach(async () => {
  // A fresh module graph per test, as in a new plugin process: what run.ts and its modules compute at load
  // (the default files, the usage, the API versions, the cache names) is then part of every test, and the
  // cloud client is not loaded yet.
  vi.resetModules();
  ({ run } = await import('../../src/credential-provider/run.js'));
  emu.reset();
  T = Math.floor(Date.now() / 1000) * 1000 - 5000;
  emu.clock.set(T);
  dir = mkdtempSync(join(tmpdir(), 'acr-cp-run-'));
  cacheDir = join(dir, 'cache');
  configFile = join(dir, 'config.json');
  writeConfig({});
  compileCache.enable.mockReset();
  fsHook.existing = undefined;
  fsHook.asked = [];
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** The node's configuration: the cn-hangzhou instance with its two default domains, the cache dir and the RRSA provider, then `over`. */
function writeConfig(over: Record<string, unknown>, file = configFile): string {
  const body = {
    registries: [{ instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ, HZ_VPC] }],
    credentialProvider: { cacheDir, oidcProviderArn: w.providerArn },
    ...over,
  };
  writeFileSync(file, JSON.stringify(body));
  return file;
}

interface Call {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** The node's AccessKey (in the environment, where @alicloud/credentials reads it). */
  key?: Key;
  now?: (() => number) | null;
}

/** The environment the kubelet gives the plugin here: the configuration file, the emulator's endpoints, the node's AccessKey. */
function nodeEnv(key: Key = NODE_KEY): NodeJS.ProcessEnv {
  vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_ID', key.id);
  vi.stubEnv('ALIBABA_CLOUD_ACCESS_KEY_SECRET', key.secret);
  return { ACR_CREDENTIAL_PROVIDER_CONFIG: configFile, ...emulatorEnv(emu, { accessKeyId: key.id, accessKeySecret: key.secret }) };
}

function provide(stdin: Record<string, unknown> | string | Error, c: Call = {}): Promise<RunResult> {
  const text = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
  return run({
    argv: c.argv ?? [],
    env: c.env ?? nodeEnv(c.key),
    readStdin: () => (stdin instanceof Error ? Promise.reject(stdin) : Promise.resolve(text)),
    ...(c.now === null ? {} : { now: c.now ?? (() => T) }),
  });
}

/** The answer the kubelet gets for a registry token. */
const answer = (host: string, password: string, seconds: number, apiVersion = V1) =>
  `{"kind":"CredentialProviderResponse","apiVersion":"${apiVersion}","cacheKeyType":"Registry","cacheDuration":"${seconds}s","auth":{"${host}":{"username":"${TEMP_USERNAME}","password":"${password}"}}}`;
/** The empty answer: no credentials from this plugin, not cached by the kubelet. */
const empty = (apiVersion = V1) => `{"kind":"CredentialProviderResponse","apiVersion":"${apiVersion}","cacheKeyType":"Registry","cacheDuration":"0s"}`;
const passwordOf = (r: RunResult, host: string): string => (JSON.parse(r.stdout) as { auth: Record<string, { password: string }> }).auth[host]!.password;
const issued = (password: string) => emu.state.registryTokens.get(password);
/** Messages with the cloud's request IDs (random) replaced. */
const lines = (r: RunResult) => r.stderr.map((l) => l.replace(/\(request ID [0-9A-F-]{36}\)/, '(request ID <id>)'));
const NOT_SERVED = (host: string) => `no credentials for ${host}: ${host} is not a registry this node is configured to serve and the ServiceAccount has no ACR annotations`;

describe('where the configuration comes from', () => {
  it('--config <file>, --config=<file>, else ACR_CREDENTIAL_PROVIDER_CONFIG; --config wins', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"registries": 5}');
    const refused = { code: 2, stdout: '', stderr: [`${bad}: registries: expected a list`] };
    const env = { ...nodeEnv(), ACR_CREDENTIAL_PROVIDER_CONFIG: configFile };
    expect(await provide(request('nginx'), { argv: ['--config', bad], env })).toEqual(refused);
    expect(await provide(request('nginx'), { argv: [`--config=${bad}`], env })).toEqual(refused);
    expect(await provide(request('nginx'), { env: { ...env, ACR_CREDENTIAL_PROVIDER_CONFIG: bad } })).toEqual(refused);
    expect(await provide(request('nginx'), { argv: ['--config', configFile], env: { ...env, ACR_CREDENTIAL_PROVIDER_CONFIG: bad } })).toEqual({ code: 0, stdout: empty(), stderr: [NOT_SERVED('docker.io')] });
    expect(await provide(request('nginx'), { argv: [`--config=${configFile}`], env: { ...env, ACR_CREDENTIAL_PROVIDER_CONFIG: bad } })).toEqual({ code: 0, stdout: empty(), stderr: [NOT_SERVED('docker.io')] });
    // The last --config wins.
    expect(await provide(request('nginx'), { argv: ['--config', configFile, `--config=${bad}`], env })).toEqual(refused);
  });

  it('refuses any other argument, and a --config without its file, with the usage, before reading stdin', async () => {
    const readStdin = vi.fn(() => Promise.resolve(JSON.stringify(request('nginx'))));
    const env = nodeEnv();
    for (const [argv, arg] of [
      [['--verbose'], '"--verbose"'],
      [['--config'], '"--config"'],
      [['--config', configFile, 'extra'], '"extra"'],
      [['-c', configFile], '"-c"'],
      [['--config:x'], '"--config:x"'],
    ] as const) {
      expect(await run({ argv: [...argv], env, readStdin, now: () => T })).toEqual({ code: 2, stdout: '', stderr: [`unknown argument ${arg}; ${USAGE}`] });
    }
    expect(readStdin).not.toHaveBeenCalled();
  });

  it('reads the first default file that exists when neither names one (config.json, then config.yaml)', async () => {
    const env = { ...nodeEnv(), ACR_CREDENTIAL_PROVIDER_CONFIG: '' };
    fsHook.existing = ['/etc/acr-credential-provider/config.yaml'];
    expect(await provide(request('nginx'), { env })).toEqual({
      code: 2,
      stdout: '',
      stderr: ['/etc/acr-credential-provider/config.yaml: (file): cannot read /etc/acr-credential-provider/config.yaml: ENOENT'],
    });
    expect(fsHook.asked).toEqual(['/etc/acr-credential-provider/config.json', '/etc/acr-credential-provider/config.yaml']);
    fsHook.existing = ['/etc/acr-credential-provider/config.json', '/etc/acr-credential-provider/config.yaml'];
    expect((await provide(request('nginx'), { env })).stderr).toEqual(['/etc/acr-credential-provider/config.json: (file): cannot read /etc/acr-credential-provider/config.json: ENOENT']);
  });

  it('runs on the defaults without any file: nothing configured to serve, and the region from ALIBABA_CLOUD_REGION_ID', async () => {
    fsHook.existing = [];
    const { ACR_CREDENTIAL_PROVIDER_CONFIG: _, ...env } = nodeEnv();
    expect(await provide(request(`${HZ}/a`), { env })).toEqual({ code: 0, stdout: empty(), stderr: [NOT_SERVED(HZ)] });
    expect(await provide(request(`${HZ}/a`), { env: { ...env, ALIBABA_CLOUD_REGION_ID: 'hangzhou' } })).toEqual({
      code: 2,
      stdout: '',
      stderr: ['defaults: defaultRegion (from ALIBABA_CLOUD_REGION_ID): "hangzhou" is not a region ID such as cn-hangzhou'],
    });
    expect(emu.calls.count({})).toBe(0);
  });

  it("takes the default region from ALIBABA_CLOUD_REGION_ID for a file's discovery regions", async () => {
    writeConfig({ registries: [], discovery: { enabled: true } });
    const missing = await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY });
    expect(missing).toEqual({ code: 2, stdout: '', stderr: [`${configFile}: discovery.regions: required: no defaultRegion in the file and ALIBABA_CLOUD_REGION_ID is not set`] });
    const env = { ...nodeEnv(DISCOVERING_NODE_KEY), ALIBABA_CLOUD_REGION_ID: 'cn-hangzhou' };
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { env })).toEqual({
      code: 0,
      stdout: empty(),
      stderr: ["no credentials for nosuch-registry.cn-hangzhou.cr.aliyuncs.com: discovery found no running ACR Enterprise instance named nosuch in cn-hangzhou in the account of the node's own identity"],
    });
  });

  it('takes the endpoints from the file, the environment first; a malformed one is refused with exit 2 when a cloud call is due', async () => {
    const { ALIBABA_CLOUD_STS_ENDPOINT: _s, ALIBABA_CLOUD_CR_ENDPOINT: _c, ...env } = nodeEnv();
    writeConfig({ endpoints: { sts: emu.stsEndpoint, cr: emu.crEndpointTemplate } });
    const r = await provide(request(`${HZ}/a`), { env });
    expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 2700), stderr: [] });
    expect(emu.calls.count({ action: 'GetAuthorizationToken', caller: NODE_KEY.id })).toBe(1);
    const malformed = { ...env, ALIBABA_CLOUD_CR_ENDPOINT: 'cr.example.com' };
    expect(await provide(request(`${HZ}/b`), { env: malformed })).toEqual({
      code: 2,
      stdout: '',
      stderr: ['ALIBABA_CLOUD_CR_ENDPOINT must be a full URL with scheme (https://...), got "cr.example.com"'],
    });
    // No cloud call due: the endpoints are not looked at.
    expect(await provide(request('nginx'), { env: malformed })).toEqual({ code: 0, stdout: empty(), stderr: [NOT_SERVED('docker.io')] });
  });
});

describe('the request', () => {
  it('exits 2 with the reason for a request it cannot read', async () => {
    const cases: Array<[Record<string, unknown> | string | Error, string]> = [
      ['not json', 'the request on stdin is not JSON (expected a CredentialProviderRequest from the kubelet)'],
      [{ ...request(`${HZ}/a`), apiVersion: 'credentialprovider.kubelet.k8s.io/v2' }, `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v2": set apiVersion ${V1} in the kubelet's CredentialProviderConfig`],
      [{ ...request(`${HZ}/a`), kind: 'Pod' }, 'expected kind CredentialProviderRequest, got "Pod"'],
      [new Error('no complete request on stdin within 10 s'), 'no complete request on stdin within 10 s'],
    ];
    for (const [stdin, message] of cases) expect(await provide(stdin)).toEqual({ code: 2, stdout: '', stderr: [message] });
    expect(emu.calls.count({})).toBe(0);
  });

  it('answers in the apiVersion the kubelet asked in (v1, v1beta1, v1alpha1), empty or not', async () => {
    for (const version of ['credentialprovider.kubelet.k8s.io/v1beta1', 'credentialprovider.kubelet.k8s.io/v1alpha1']) {
      expect(await provide({ ...request('nginx'), apiVersion: version })).toEqual({ code: 0, stdout: empty(version), stderr: [NOT_SERVED('docker.io')] });
      const r = await provide({ ...request(`${HZ}/a`), apiVersion: version });
      expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 2700, version), stderr: [] });
    }
  });

  it('exits 1 for a ServiceAccount token it cannot read, or one expired by its own clock', async () => {
    expect(await provide(request(`${HZ}/a`, { token: 'abc', annotations: { [SVC]: w.serviceRole } }))).toEqual({ code: 1, stdout: '', stderr: ['serviceAccountToken is not a JWT (three dot-separated parts)'] });
    const token = saToken(w, 'team-a', 'puller', { ttl: 3600 });
    const exp = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    expect(await provide(request(`${HZ}/a`, { token, annotations: { [SVC]: w.serviceRole } }), { now: () => exp })).toEqual({
      code: 1,
      stdout: '',
      stderr: ['serviceAccountToken has expired: check the node clock'],
    });
    expect(emu.calls.count({})).toBe(0);
  });

  it('exits 1 with the denial for annotations it refuses, or annotations without a token', async () => {
    const annotations = { [SVC]: w.serviceRole, 'k8s.aliyun.com/acr-user-arn': w.world.demo.userRoleArn };
    expect(await provide(request(`${BJ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations }))).toEqual({
      code: 1,
      stdout: '',
      stderr: ['ServiceAccount annotations: unknown annotation "k8s.aliyun.com/acr-user-arn": did you mean "k8s.aliyun.com/acr-user-arns"?'],
    });
    expect(await provide({ ...request(`${HZ}/a`), serviceAccountAnnotations: { [SVC]: w.serviceRole } })).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        "ServiceAccount annotations came without the ServiceAccount's token: set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig (feature gate KubeletServiceAccountTokenForCredentialProviders)",
      ],
    });
  });
});

describe("node identity (the node's AccessKey)", () => {
  it('answers with a token of the instance for as long as it lives minus the 15 min threshold; the VPC domain and later pulls from the disk cache', async () => {
    const r = await provide(request(`${HZ}/team/app:1.0`));
    const password = passwordOf(r, HZ);
    expect(r).toEqual({ code: 0, stdout: answer(HZ, password, 2700), stderr: [] });
    expect(issued(password)).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: `acs:ram::${w.world.accounts[0]!.id}:user/node`, expiresAt: T + 60 * MINUTE });
    expect(emu.calls.count({})).toBe(1);
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(readdirSync(cacheDir).filter((f) => f.startsWith('token-'))).toHaveLength(1);
    // 10 minutes on: the same token, for 10 minutes less.
    expect(await provide(request(`${HZ_VPC}/team/app`), { now: () => T + 10 * MINUTE })).toEqual({ code: 0, stdout: answer(HZ_VPC, password, 2100), stderr: [] });
    expect(emu.calls.count({})).toBe(1);
    // 45 minutes on (expiry minus the threshold): a new token.
    emu.clock.set(T + 45 * MINUTE);
    const renewed = await provide(request(`${HZ}/team/app:1.0`), { now: () => T + 45 * MINUTE });
    expect(renewed).toEqual({ code: 0, stdout: answer(HZ, passwordOf(renewed, HZ), 2700), stderr: [] });
    expect(passwordOf(renewed, HZ)).not.toBe(password);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(2);
  });

  it("uses the wall clock when given none", async () => {
    const r = await provide(request(`${HZ}/a`), { now: null });
    expect(r.code).toBe(0);
    // The emulator's clock is 5 s behind the wall clock here: the token has 5 s less left.
    const seconds = Number(/"cacheDuration":"(\d+)s"/.exec(r.stdout)![1]);
    expect(seconds).toBeGreaterThanOrEqual(2685);
    expect(seconds).toBeLessThanOrEqual(2695);
  });

  it("takes credentials.refreshThreshold off the token's life", async () => {
    writeConfig({ credentials: { refreshThreshold: '50m' } });
    const r = await provide(request(`${HZ}/a`));
    expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 600), stderr: [] });
  });

  it("runs a configured registry's chain (service role, then a user role with its external ID) for credentials.sessionDurationSeconds", async () => {
    const bj = { instanceId: w.world.demo.beijingInstanceId, region: 'cn-beijing', domains: [BJ], serviceArn: w.serviceRole, userArn: externalRole };
    writeConfig({ registries: [bj], credentials: { sessionDurationSeconds: 900, refreshThreshold: '5m', externalIds: { [externalRole]: EXTERNAL_ID } } });
    const r = await provide(request(`${BJ}/team/app:1`));
    // The token lives as long as the 15 min session it was issued to.
    expect(r).toEqual({ code: 0, stdout: answer(BJ, passwordOf(r, BJ), 600), stderr: [] });
    expect(issued(passwordOf(r, BJ))).toMatchObject({ instanceId: w.world.demo.beijingInstanceId, accountId: DEMO_OWNER_ACCOUNT_ID, expiresAt: T + 15 * MINUTE });
    expect(issued(passwordOf(r, BJ))!.principal).toMatch(/^acs:ram::6543210987654321:role\/acr-pull-ext\//);
    expect(emu.calls.count({ action: 'AssumeRole' })).toBe(2);
    expect(emu.calls.count({ action: 'AssumeRole', caller: NODE_KEY.id })).toBe(1);
    // Without the external ID the user role refuses.
    rmSync(cacheDir, { recursive: true });
    writeConfig({ registries: [bj], credentials: { sessionDurationSeconds: 900, refreshThreshold: '5m' } });
    expect(lines(await provide(request(`${BJ}/team/app:1`)))).toEqual([
      `acr-pull-webhook failed assuming user role ${externalRole} with service role ${w.serviceRole}: NoPermission (request ID <id>). The user role's trust policy must name the service role as a RAM principal (${w.serviceRole}), and the service role needs sts:AssumeRole on it`,
    ]);
  });

  it('asks each configured instance listed without domains in turn, and answers with the first whose domains have the host', async () => {
    const bj = { instanceId: w.world.demo.beijingInstanceId, region: 'cn-beijing', serviceArn: w.serviceRole, userArn: w.world.demo.userRoleArn };
    const hz = { instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou' };
    writeConfig({ registries: [bj, hz] });
    const r = await provide(request('registry.example.com/team/app:1'));
    expect(r).toEqual({ code: 0, stdout: answer('registry.example.com', passwordOf(r, 'registry.example.com'), 2700), stderr: [] });
    expect(issued(passwordOf(r, 'registry.example.com'))!.instanceId).toBe(w.world.demo.hangzhouInstanceId);
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(2);
    expect(emu.calls.count({ action: 'ListInstanceEndpoint', caller: NODE_KEY.id })).toBe(1);
    // None of them has this one.
    expect(await provide(request('other.example.com/a'))).toEqual({
      code: 0,
      stdout: empty(),
      stderr: ['no credentials for other.example.com: it is not among the domains of the instances this node is configured to serve'],
    });
  });

  it('denies with the reason when the cloud refuses, after the warnings so far', async () => {
    writeConfig({ registries: [{ instanceId: w.world.demo.beijingInstanceId, region: 'cn-beijing', domains: [BJ] }] });
    mkdirSync(cacheDir, { mode: 0o755 });
    chmodSync(cacheDir, 0o755);
    expect(await provide(request(`${BJ}/a`)).then((r) => ({ ...r, stderr: lines(r) }))).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        `not using the on-disk cache: ${cacheDir} has mode 755; it must be 0700`,
        `acr-pull-webhook failed getting a registry token for ACR instance ${w.world.demo.beijingInstanceId} in cn-beijing as the node's own identity: NoPermission (request ID <id>). Grant cr:GetAuthorizationToken on the instance to that identity in RAM, and cr:PullRepository for the pull itself (the webhook's README lists every action under "RAM permissions")`,
      ],
    });
  });

  it("puts the cache's warnings first on stderr, whatever the answer", async () => {
    mkdirSync(cacheDir, { mode: 0o755 });
    chmodSync(cacheDir, 0o755);
    const warning = `not using the on-disk cache: ${cacheDir} has mode 755; it must be 0700`;
    const served = await provide(request(`${HZ}/a`));
    expect(served).toEqual({ code: 0, stdout: answer(HZ, passwordOf(served, HZ), 2700), stderr: [warning] });
    writeConfig({ registries: [{ instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou' }] });
    expect(await provide(request('other.example.com/a'))).toEqual({
      code: 0,
      stdout: empty(),
      stderr: [warning, 'no credentials for other.example.com: it is not among the domains of the instances this node is configured to serve'],
    });
    writeConfig({ registries: [], discovery: { enabled: true, regions: ['cn-hangzhou'] } });
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY })).toEqual({
      code: 0,
      stdout: empty(),
      stderr: [warning, "no credentials for nosuch-registry.cn-hangzhou.cr.aliyuncs.com: discovery found no running ACR Enterprise instance named nosuch in cn-hangzhou in the account of the node's own identity"],
    });
    // Nothing was stored: every run asked the cloud.
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('gives up 45 s after it started (the kubelet kills it after a minute)', async () => {
    const hang = emu.injectHang({ action: 'GetAuthorizationToken' });
    const started = Date.now();
    try {
      const r = await provide(request(`${HZ}/a`), { now: () => Date.now() - 44_000 });
      expect({ ...r, stderr: lines(r) }).toEqual({
        code: 1,
        stdout: '',
        stderr: [
          `acr-pull-webhook timed out getting a registry token for ACR instance ${w.world.demo.hangzhouInstanceId} in cn-hangzhou as the node's own identity: Container Registry (${emu.crEndpoint('cn-hangzhou')}) did not answer before the admission deadline. Check that the webhook reaches that endpoint (network policy, proxy, VPC endpoint settings). Controllers (Deployments, Jobs, ...) create the Pod again by themselves; a Pod created directly can be created again`,
        ],
      });
    } finally {
      hang.remove();
    }
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('closes its connections to the cloud before it returns, rather than keep them alive for another call', async () => {
    // Every client socket opened during the run, as Node announces them.
    const opened: Socket[] = [];
    const onSocket = (m: unknown) => opened.push((m as { socket: Socket }).socket);
    diagnostics.subscribe('net.client.socket', onSocket);
    try {
      expect((await provide(request(`${HZ}/a`))).code).toBe(0);
    } finally {
      diagnostics.unsubscribe('net.client.socket', onSocket);
    }
    expect(emu.calls.count({ action: 'GetAuthorizationToken', caller: NODE_KEY.id })).toBe(1);
    // One connection to Container Registry, destroyed (a kept-alive one would still be open, idle in its agent).
    expect(opened.map((socket) => socket.destroyed)).toEqual([true]);
  });

  it("takes the node's identity for a ServiceAccount token without ACR annotations (the kubelet sends tokens for every image)", async () => {
    const r = await provide(request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { 'other.example.com/x': 'y' } }));
    expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 2700), stderr: [] });
    expect(issued(passwordOf(r, HZ))).toMatchObject({ principal: `acs:ram::${w.world.accounts[0]!.id}:user/node` });
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(0);
  });

  it('reports an unexpected failure by its name only, exit 1', async () => {
    let calls = 0;
    const now = () => {
      if (++calls > 1) throw new RangeError('not a secret, but never shown');
      return T;
    };
    expect(await provide(request(`${HZ}/a`), { now })).toEqual({ code: 1, stdout: '', stderr: ['internal error: RangeError'] });
  });

  it('calls a thrown value without a name (not an Error at all) an Error, exit 1', async () => {
    for (const thrown of [{ message: 'never shown' }, undefined, null]) {
      let calls = 0;
      const now = () => {
        if (++calls > 1) throw thrown;
        return T;
      };
      expect(await provide(request(`${HZ}/a`), { now })).toEqual({ code: 1, stdout: '', stderr: ['internal error: Error'] });
    }
  });
});

describe('workload identity (the ServiceAccount token)', () => {
  it('assumes the annotated service role with the token, and keeps its session for that ServiceAccount only (namespace, name and UID)', async () => {
    const annotations = { [SVC]: w.serviceRole };
    const r = await provide(request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations }));
    expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 2700), stderr: [] });
    expect(issued(passwordOf(r, HZ))).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: `acs:ram::${w.world.accounts[0]!.id}:role/acr-pull/acr-pull@team-a` });
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(1);
    expect(emu.calls.count({ caller: NODE_KEY.id })).toBe(0);
    // Another Pod of the same ServiceAccount: its own token, the same session and registry token from the disk cache.
    expect(await provide(request(`${HZ}/b`, { token: saToken(w, 'team-a', 'puller'), annotations }))).toEqual(r);
    expect(emu.calls.count({})).toBe(2);
    // The ServiceAccount deleted and made again (another UID): not the same identity.
    const recreated = await provide(request(`${HZ}/b`, { token: saToken(w, 'team-a', 'puller', { uid: 'recreated' }), annotations }));
    expect(recreated.code).toBe(0);
    expect(emu.calls.count({ action: 'AssumeRoleWithOIDC' })).toBe(2);
    expect(passwordOf(recreated, HZ)).not.toBe(passwordOf(r, HZ));
  });

  it("says when the host is none of the annotated instance's domains, once they are listed", async () => {
    // Not configured: its domains are unknown until listed (with the service role).
    writeConfig({ registries: [] });
    const annotations = { 'k8s.aliyun.com/acr-instance-id': `cn-hangzhou:${w.world.demo.hangzhouInstanceId}`, [SVC]: w.serviceRole };
    expect(await provide(request('other.example.com/a', { token: saToken(w, 'team-a', 'by-id'), annotations }))).toEqual({
      code: 0,
      stdout: empty(),
      stderr: ["no credentials for other.example.com: it is not among the domains of the instances the ServiceAccount's annotations name"],
    });
    expect(emu.calls.count({ action: 'ListInstanceEndpoint' })).toBe(1);
  });

  it('denies a role that does not trust the ServiceAccount, with the fix', async () => {
    const r = await provide(request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.untrustedRole } }));
    expect({ ...r, stderr: lines(r) }).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        `acr-pull-webhook failed assuming service role ${w.untrustedRole} with the token of ServiceAccount team-a/puller (AssumeRoleWithOIDC): AuthenticationFail.NoPermission (request ID <id>). ` +
          `The role's trust policy must allow the OIDC provider ${w.providerArn} with the conditions oidc:sub = system:serviceaccount:team-a:puller and oidc:aud = sts.aliyuncs.com, and that provider must exist in the role's account`,
      ],
    });
  });
});

describe('Enterprise discovery', () => {
  const discovery = { enabled: true, regions: ['cn-hangzhou'], interval: '2m', missInterval: '7s' };
  const stored = () =>
    readdirSync(cacheDir)
      .filter((f) => f.startsWith('discovery-'))
      .map((f) => JSON.parse(readFileSync(join(cacheDir, f), 'utf8')) as Record<string, unknown>);

  beforeEach(() => {
    writeConfig({ registries: [], discovery });
  });

  it("looks up the instance a default domain names with the node's identity, serves it, and keeps it on disk for discovery.interval", async () => {
    const r = await provide(request(`${HZ}/team/app:1`), { key: DISCOVERING_NODE_KEY });
    const password = passwordOf(r, HZ);
    expect(r).toEqual({ code: 0, stdout: answer(HZ, password, 2700), stderr: [] });
    expect(issued(password)).toMatchObject({ instanceId: w.world.demo.hangzhouInstanceId, principal: `acs:ram::${w.world.accounts[0]!.id}:user/node-discovery` });
    const instance = { instanceId: w.world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: [HZ_VPC, HZ, 'registry.example.com'] };
    expect(stored()).toEqual([{ v: 1, cache: 'discovery', key: 'cn-hangzhou|demo', usableUntil: T + 2 * MINUTE + DAY, value: { instance, checkAfter: T + 2 * MINUTE } }]);
    const calls = emu.calls.count({});
    // Until then, the VPC domain is served from the disk cache.
    expect(await provide(request(`${HZ_VPC}/a`), { key: DISCOVERING_NODE_KEY, now: () => T + 2 * MINUTE - 1 })).toEqual({ code: 0, stdout: answer(HZ_VPC, password, 2580), stderr: [] });
    expect(emu.calls.count({})).toBe(calls);
    // Then it is looked up again; when that fails, what was found is served, with a warning.
    const fault = emu.injectServerError(503, { action: 'ListInstance' });
    try {
      expect(await provide(request(`${HZ}/a`), { key: DISCOVERING_NODE_KEY, now: () => T + 2 * MINUTE })).toEqual({
        code: 0,
        stdout: answer(HZ, password, 2580),
        stderr: ['re-checking ACR instance demo in cn-hangzhou failed (ServiceUnavailable); serving it as discovered before'],
      });
    } finally {
      fault.remove();
    }
    expect(emu.calls.count({ action: 'ListInstance' })).toBeGreaterThan(1);
  });

  it('looks up again when its file on disk is unreadable, and writes it anew', async () => {
    await provide(request(`${HZ}/a`), { key: DISCOVERING_NODE_KEY });
    const [file] = readdirSync(cacheDir).filter((f) => f.startsWith('discovery-'));
    writeFileSync(join(cacheDir, file!), '{"v":1,"cache":"discov', { mode: 0o600 });
    const r = await provide(request(`${HZ}/a`), { key: DISCOVERING_NODE_KEY });
    expect(r).toEqual({ code: 0, stdout: answer(HZ, passwordOf(r, HZ), 2700), stderr: [] });
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(2);
    expect(stored()).toHaveLength(1);
    expect(stored()[0]!.key).toBe('cn-hangzhou|demo');
  });

  it('gives an empty answer for a name with no running instance, and looks it up again after discovery.missInterval', async () => {
    const none = (name: string) => ({
      code: 0,
      stdout: empty(),
      stderr: [`no credentials for ${name}-registry.cn-hangzhou.cr.aliyuncs.com: discovery found no running ACR Enterprise instance named ${name} in cn-hangzhou in the account of the node's own identity`],
    });
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY })).toEqual(none('nosuch'));
    expect(await provide(request(`${STARTING_INSTANCE.name}-registry.cn-hangzhou.cr.aliyuncs.com/a`), { key: DISCOVERING_NODE_KEY })).toEqual(none(STARTING_INSTANCE.name));
    expect(stored().find((e) => e.key === 'cn-hangzhou|nosuch')).toEqual({ v: 1, cache: 'discovery', key: 'cn-hangzhou|nosuch', usableUntil: T + 7000, value: { instance: null, checkAfter: T + 7000 } });
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY, now: () => T + 6999 })).toEqual(none('nosuch'));
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(2);
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY, now: () => T + 7000 })).toEqual(none('nosuch'));
    expect(emu.calls.count({ action: 'ListInstance' })).toBe(3);
    expect(emu.calls.count({ action: 'GetAuthorizationToken' })).toBe(0);
  });

  it('denies with the RAM permissions discovery needs when the node may not list instances', async () => {
    const r = await provide(request(`${HZ}/a`));
    expect({ ...r, stderr: lines(r) }).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        "acr-pull-webhook failed looking up ACR instance demo in cn-hangzhou (discovery) as the node's own identity: NoPermission (request ID <id>). Grant cr:ListInstance (on instance/*), cr:ListInstanceEndpoint and cr:GetInstanceVpcEndpoint to that identity in RAM, or turn discovery off and list the instance under registries",
      ],
    });
  });

  it('fails as a whole, by name only, on an unexpected error during discovery', async () => {
    let calls = 0;
    const now = () => {
      if (++calls > 1) throw new TypeError('never shown');
      return T;
    };
    expect(await provide(request('nosuch-registry.cn-hangzhou.cr.aliyuncs.com/a'), { key: DISCOVERING_NODE_KEY, now })).toEqual({ code: 1, stdout: '', stderr: ['internal error: TypeError'] });
  });
});

describe("V8's compile cache", () => {
  it('is turned on once per run on the way to the first cloud call, in the cache directory; not for an answer from the disk cache', async () => {
    // The module graph is fresh (beforeEach): pop-core not loaded yet, as in a new plugin process.
    expect((await provide(request(`${HZ}/a`))).code).toBe(0);
    expect(compileCache.enable).toHaveBeenCalledTimes(1);
    const where = compileCache.enable.mock.calls[0]![0];
    expect(where()).toBe(join(cacheDir, 'compile-cache'));
    expect(statSync(join(cacheDir, 'compile-cache')).mode & 0o777).toBe(0o700);
    // From the disk cache: no cloud client loaded, nothing turned on.
    expect((await provide(request(`${HZ}/b`))).code).toBe(0);
    expect(compileCache.enable).toHaveBeenCalledTimes(1);
    // Another cloud call in a later run (pop-core already loaded in this process): turned on for the identity.
    emu.clock.set(T + 45 * MINUTE);
    expect((await provide(request(`${HZ}/c`), { now: () => T + 45 * MINUTE })).code).toBe(0);
    expect(compileCache.enable).toHaveBeenCalledTimes(2);
  });

  it('is not turned on in a new process that answers from the disk cache: the cloud client is not even loaded', async () => {
    expect((await provide(request(`${HZ}/a`))).code).toBe(0);
    expect(compileCache.enable).toHaveBeenCalledTimes(1);
    // The next pull's process: a new module graph, the token on disk.
    vi.resetModules();
    ({ run } = await import('../../src/credential-provider/run.js'));
    compileCache.enable.mockReset();
    const calls = emu.calls.count({});
    expect((await provide(request(`${HZ}/b`))).code).toBe(0);
    expect(emu.calls.count({})).toBe(calls);
    expect(compileCache.enable).not.toHaveBeenCalled();
  });

  it("is turned on before the cloud client loads when the node's identity is not needed (a ServiceAccount token)", async () => {
    const r = await provide(request(`${HZ}/a`, { token: saToken(w, 'team-a', 'puller'), annotations: { [SVC]: w.serviceRole } }));
    expect(r.code).toBe(0);
    expect(compileCache.enable).toHaveBeenCalledTimes(1);
    expect(existsSync(join(cacheDir, 'compile-cache'))).toBe(false);
    expect(compileCache.enable.mock.calls[0]![0]()).toBe(join(cacheDir, 'compile-cache'));
  });
});
