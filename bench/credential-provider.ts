// `npm run bench:credential-provider`: the start-up cost of acr-credential-provider, which the kubelet runs
// once per image pull. The built plugin (the package bin, dist/bin/acr-credential-provider.cjs) is executed N times
// per scenario through a symlink, as the kubelet does (the request written to a pipe on stdin, the answer on
// stdout), against the emulator in this process (no added latency). Scenarios take turns run by run, so that a
// change in the machine's load hits them all alike:
//   - node -e 0: the runtime's own start; the plugin's own cost is its CPU time above this one's;
//   - warm: the on-disk cache holds the answer (the common case: the kubelet asks for every new image);
//   - cold: the cache entries are removed before every run (as when they expire: the kubelet asks again when its
//     own copy, which lives as long, runs out), so each run loads the cloud clients and calls STS/CR (1 call in
//     node identity mode; 6 for the cross-account chain in workload identity mode). The V8 compile cache that the
//     plugin keeps in the same directory on Node 22+ stays, as it does on a node.
// Prints a table (wall and CPU time: median, and the minimum, the quietest moment) and writes
// bench/results/credential-provider.json. Everything stays on 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createOidcSigningKey, demoState, makeOidcToken, oidcProviderArn, startEmulator } from '../emulator/index.js';

const N = Number(process.env.BENCH_RUNS ?? 20);
const GOAL_MS = 150;
/** ACR_BENCH_PLUGIN: another build of the plugin, to compare. */
const PLUGIN = resolve(process.env.ACR_BENCH_PLUGIN ?? 'dist/bin/acr-credential-provider.cjs');

interface Sample {
  ms: number;
  /** CPU time (user + system) of the program, from the shell's `times`: less sensitive to other load than wall time. */
  cpuMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` under bash, which pipes the request to it (a pipe, as the kubelet's os/exec gives; Node's own spawn
 * would give a socket) and reports its children's CPU time after it exits. Wall time includes bash's ~3 ms.
 */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<Sample> {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn('bash', ['--norc', '--noprofile', '-c', 'printf %s "$ACR_BENCH_REQUEST" | "$@"; rc=$?; times >&2; exit $rc', 'bash', cmd, ...args], {
      env: { ...env, ACR_BENCH_REQUEST: input },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // `times`: the shell's user and system time, then its children's: "0m0.081s 0m0.012s".
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(stderr);
      const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : NaN;
      done({ ms, cpuMs, code, stdout, stderr: stderr.replace(/(\d+m[\d.]+s \d+m[\d.]+s\s*){2}$/, '') });
    });
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main(): Promise<void> {
  const world = demoState();
  const account = world.accounts[0]!;
  const issuerKey = createOidcSigningKey('bench');
  const providerArn = oidcProviderArn(account.id, 'bench');
  account.oidcProviders!.push({ name: 'bench', issuer: 'https://kubernetes.default.svc', clientIds: ['sts.aliyuncs.com'], jwks: { keys: [issuerKey.jwk] } });
  account.roles!.find((r) => r.name === 'acr-pull')!.trust.push({ oidcProvider: providerArn, subjects: ['system:serviceaccount:team-a:puller'] });
  const nodeKey = { id: 'LTAI5tBenchNodeIdentity01', secret: 'bench-node-identity-secret-00000001' };
  account.users!.push({ name: 'node', accessKeys: [{ id: nodeKey.id, secret: nodeKey.secret }], permissions: { crGetAuthorizationToken: '*' } });
  const emu = await startEmulator({ world });

  const dir = mkdtempSync(join(tmpdir(), 'acr-cp-bench-'));
  const bin = join(dir, 'acr-credential-provider');
  symlinkSync(PLUGIN, bin);
  const cacheDir = join(dir, 'cache');
  const config = {
    registries: [{ instanceId: world.demo.hangzhouInstanceId, region: 'cn-hangzhou', domains: ['demo-registry.cn-hangzhou.cr.aliyuncs.com'] }],
    credentialProvider: { cacheDir, oidcProviderArn: providerArn },
  };
  const configYaml = [
    'registries:',
    `  - instanceId: ${world.demo.hangzhouInstanceId}`,
    '    region: cn-hangzhou',
    '    domains: [demo-registry.cn-hangzhou.cr.aliyuncs.com]',
    'credentialProvider:',
    `  cacheDir: ${cacheDir}`,
    `  oidcProviderArn: ${providerArn}`,
    '',
  ].join('\n');
  const env = (configFile: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    ACR_CREDENTIAL_PROVIDER_CONFIG: configFile,
    ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
    ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
    ALIBABA_CLOUD_ACCESS_KEY_ID: nodeKey.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: nodeKey.secret,
  });
  const nodeRequest = () => JSON.stringify({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1', kind: 'CredentialProviderRequest', image: 'demo-registry.cn-hangzhou.cr.aliyuncs.com/team/app:1' });
  const workloadRequest = () => {
    const now = Math.floor(Date.now() / 1000);
    const token = makeOidcToken(
      { iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:team-a:puller', aud: ['sts.aliyuncs.com'], exp: now + 3600, 'kubernetes.io': { serviceaccount: { name: 'puller', uid: 'u1' } } },
      issuerKey,
    );
    return JSON.stringify({
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      kind: 'CredentialProviderRequest',
      image: 'demo-owner-registry.cn-beijing.cr.aliyuncs.com/team/app:1',
      serviceAccountToken: token,
      serviceAccountAnnotations: { 'k8s.aliyun.com/acr-service-arns': world.demo.serviceRoleArn, 'k8s.aliyun.com/acr-user-arns': world.demo.userRoleArn },
    });
  };

  // Each scenario its own cache directory (and config file), so that they can take turns.
  const configFor = (name: string, yaml: boolean): string => {
    const cache = join(dir, `cache-${name}`);
    const file = join(dir, `config-${name}.${yaml ? 'yaml' : 'json'}`);
    writeFileSync(file, yaml ? configYaml.replace(cacheDir, cache) : JSON.stringify({ ...config, credentialProvider: { ...config.credentialProvider, cacheDir: cache } }));
    return file;
  };
  const scenarios: { name: string; cold: boolean; cache?: string; run: () => Promise<Sample> }[] = [
    { name: 'node -e 0 (the runtime alone)', cold: false, run: () => exec(process.execPath, ['-e', '0'], { PATH: process.env.PATH }, '') },
  ];
  const plugin = (name: string, cold: boolean, yaml: boolean, request: () => string) => {
    const file = configFor(String(scenarios.length), yaml);
    scenarios.push({ name, cold, cache: join(dir, `cache-${scenarios.length}`), run: () => exec(bin, [], env(file), request()) });
  };
  plugin('warm cache, node identity, JSON config', false, false, nodeRequest);
  plugin('warm cache, workload identity (cross-account chain), JSON config', false, false, workloadRequest);
  plugin('warm cache, node identity, YAML config', false, true, nodeRequest);
  plugin('cold cache, node identity (1 cloud call)', true, false, nodeRequest);
  plugin('cold cache, workload identity (6 cloud calls)', true, false, workloadRequest);
  const expire = (cache: string) => {
    for (const f of readdirSync(cache)) if (f.endsWith('.json')) rmSync(join(cache, f));
  };

  const load = loadavg();
  const samples = scenarios.map(() => ({ times: [] as number[], cpu: [] as number[], calls: 0 }));
  try {
    for (const s of scenarios) if (s.cache) await s.run(); // fills the cache (and the OS file cache, and V8's)
    for (let i = 0; i < N; i++) {
      for (const [k, s] of scenarios.entries()) {
        if (s.cold) expire(s.cache!);
        const calls = emu.calls.count({});
        const r = await s.run();
        if (r.code !== 0 || (s.cache && !r.stdout.includes('"auth"'))) throw new Error(`${s.name}: run ${i + 1} failed (exit ${r.code}): ${r.stderr}`);
        samples[k]!.times.push(r.ms);
        samples[k]!.cpu.push(r.cpuMs);
        samples[k]!.calls += emu.calls.count({}) - calls;
      }
    }
  } finally {
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = scenarios.map((s, k) => {
    const times = [...samples[k]!.times].sort((a, b) => a - b);
    const cpu = [...samples[k]!.cpu].sort((a, b) => a - b);
    return {
      scenario: s.name,
      runs: N,
      medianMs: Math.round(pct(times, 50)),
      p90Ms: Math.round(pct(times, 90)),
      minMs: Math.round(times[0]!),
      maxMs: Math.round(times[times.length - 1]!),
      cpuMedianMs: Math.round(pct(cpu, 50)),
      cpuMinMs: Math.round(cpu[0]!),
      cloudCallsPerRun: samples[k]!.calls / N,
    };
  });
  const runtime = rows[0]!;

  console.log(`acr-credential-provider start-up, ${N} runs per scenario, taking turns; Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, load average ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end`);
  console.log('scenario (ms per run: wall median/p90/min/max; CPU median/min, and median above node -e 0)'.padEnd(68), 'median', '  p90', '  min', '  max', '  cpu', 'cpumin', '+cpu', ' calls/run');
  for (const r of rows) {
    console.log(
      r.scenario.padEnd(68),
      `${r.medianMs}`.padStart(6),
      `${r.p90Ms}`.padStart(5),
      `${r.minMs}`.padStart(5),
      `${r.maxMs}`.padStart(5),
      `${r.cpuMedianMs}`.padStart(5),
      `${r.cpuMinMs}`.padStart(6),
      `${r === runtime ? '' : r.cpuMedianMs - runtime.cpuMedianMs}`.padStart(5),
      `${r.cloudCallsPerRun}`.padStart(10),
    );
  }
  const warm = rows.find((r) => r.scenario.startsWith('warm cache, node identity, JSON'))!;
  const cold = rows.find((r) => r.scenario.startsWith('cold cache, node identity'))!;
  for (const [what, r] of [['answered from the disk cache', warm], ['cold (cloud call)', cold]] as const) {
    console.log(`goal: a plugin start ${what} in < ${GOAL_MS} ms: median ${r.medianMs} ms (${r.medianMs < GOAL_MS ? 'MET' : 'MISS'}), quietest ${r.minMs} ms; its own CPU ${r.cpuMedianMs - runtime.cpuMedianMs} ms above the runtime's ${runtime.cpuMedianMs} ms`);
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/credential-provider.json', JSON.stringify({ node: process.version, cpus: cpus().length, loadAtStart: load, loadAtEnd: loadavg(), runs: N, rows }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
