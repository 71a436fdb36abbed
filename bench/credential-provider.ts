// `npm run bench:credential-provider`: the start-up cost of acr-credential-provider, which the kubelet runs
// once per image pull. The built plugin is executed N times per scenario through a symlink, as the kubelet
// does (request on stdin, answer on stdout), against the emulator in this process (no added latency):
//   - node -e 0: the runtime's own start, for scale;
//   - warm: the on-disk cache holds the answer (the common case: the kubelet asks for every new image);
//   - cold: the cache directory is removed before every run, so each run loads the cloud clients and calls
//     STS/CR (1 call in node identity mode; 6 for the cross-account chain in workload identity mode).
// Prints a table and writes bench/results/credential-provider.json. Everything stays on 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createOidcSigningKey, demoState, makeOidcToken, oidcProviderArn, startEmulator } from '../emulator/index.js';

const N = Number(process.env.BENCH_RUNS ?? 20);
const GOAL_MS = 150;
const PLUGIN = resolve('dist/src/credential-provider/main.js');

interface Sample {
  ms: number;
  /** CPU time (user + system) of the program, from the shell's `times`: less sensitive to other load than wall time. */
  cpuMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` under bash, which reports its children's CPU time after it exits (wall time includes bash's ~3 ms). */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<Sample> {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn('bash', ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'bash', cmd, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
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
    child.stdin.end(input);
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
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      'registries:',
      `  - instanceId: ${world.demo.hangzhouInstanceId}`,
      '    region: cn-hangzhou',
      '    domains: [demo-registry.cn-hangzhou.cr.aliyuncs.com]',
      'credentialProvider:',
      `  cacheDir: ${cacheDir}`,
      `  oidcProviderArn: ${providerArn}`,
      '',
    ].join('\n'),
  );
  const env = (configFile: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    ACR_CREDENTIAL_PROVIDER_CONFIG: join(dir, configFile),
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

  const scenarios: { name: string; cold: boolean; run: () => Promise<Sample> }[] = [
    { name: 'node -e 0 (the runtime alone)', cold: false, run: () => exec(process.execPath, ['-e', '0'], { PATH: process.env.PATH }, '') },
    { name: 'warm cache, node identity, JSON config', cold: false, run: () => exec(bin, [], env('config.json'), nodeRequest()) },
    { name: 'warm cache, workload identity (cross-account chain), JSON config', cold: false, run: () => exec(bin, [], env('config.json'), workloadRequest()) },
    { name: 'warm cache, node identity, YAML config', cold: false, run: () => exec(bin, [], env('config.yaml'), nodeRequest()) },
    { name: 'cold cache, node identity (1 cloud call)', cold: true, run: () => exec(bin, [], env('config.json'), nodeRequest()) },
    { name: 'cold cache, workload identity (6 cloud calls)', cold: true, run: () => exec(bin, [], env('config.json'), workloadRequest()) },
  ];

  const load = loadavg();
  const rows: { scenario: string; runs: number; medianMs: number; p90Ms: number; minMs: number; maxMs: number; cpuMedianMs: number; cloudCallsPerRun: number }[] = [];
  try {
    for (const s of scenarios) {
      rmSync(cacheDir, { recursive: true, force: true });
      mkdirSync(cacheDir, { mode: 0o700 });
      if (!s.cold) await s.run(); // fills the cache (and the OS file cache)
      const calls = emu.calls.count({});
      const times: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < N; i++) {
        if (s.cold) {
          rmSync(cacheDir, { recursive: true, force: true });
          mkdirSync(cacheDir, { mode: 0o700 });
        }
        const r = await s.run();
        if (r.code !== 0 || (s.name.startsWith('warm') || s.cold ? !r.stdout.includes('"auth"') : false)) {
          throw new Error(`${s.name}: run ${i + 1} failed (exit ${r.code}): ${r.stderr}`);
        }
        times.push(r.ms);
        cpu.push(r.cpuMs);
      }
      times.sort((a, b) => a - b);
      cpu.sort((a, b) => a - b);
      rows.push({
        scenario: s.name,
        runs: N,
        medianMs: Math.round(pct(times, 50)),
        p90Ms: Math.round(pct(times, 90)),
        minMs: Math.round(times[0]!),
        maxMs: Math.round(times[times.length - 1]!),
        cpuMedianMs: Math.round(pct(cpu, 50)),
        cloudCallsPerRun: (emu.calls.count({}) - calls) / N,
      });
    }
  } finally {
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(`acr-credential-provider start-up, ${N} runs per scenario; Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, load average ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end`);
  console.log('scenario (wall ms per run; cpu: median CPU ms of the process)'.padEnd(68), 'median', '  p90', '  min', '  max', '  cpu', ' calls/run');
  for (const r of rows) {
    console.log(r.scenario.padEnd(68), `${r.medianMs}`.padStart(6), `${r.p90Ms}`.padStart(5), `${r.minMs}`.padStart(5), `${r.maxMs}`.padStart(5), `${r.cpuMedianMs}`.padStart(5), `${r.cloudCallsPerRun}`.padStart(10));
  }
  const warm = rows.find((r) => r.scenario.startsWith('warm cache, node identity, JSON'))!;
  console.log(`goal: a plugin start answered from the disk cache in < ${GOAL_MS} ms (median): ${warm.medianMs} ms, ${warm.medianMs < GOAL_MS ? 'MET' : 'MISS'}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/credential-provider.json', JSON.stringify({ node: process.version, cpus: cpus().length, loadAtStart: load, loadAtEnd: loadavg(), runs: N, rows }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
