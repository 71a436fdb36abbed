// The whole local stack for an end-to-end file or the cluster bench: the control plane, the cloud emulator in
// this process, the local overlay applied (webhooks by URL to 127.0.0.1:<port>) and webhooks run on the host in
// cluster mode. Metrics of both the webhook and kube-apiserver, as Prometheus text.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoState, startEmulator, type DemoWorld, type Emulator } from '../../../emulator/index.js';
import { controlPlaneBinary } from '../../support/go-tools.js';
import { freePort, startCluster, type Cluster, type ClusterOptions } from './cluster.js';
import { Kubectl, ROOT, startWebhook, type WebhookProcess } from './harness.js';

export interface Stack {
  cluster: Cluster;
  k: Kubectl;
  emu: Emulator;
  world: DemoWorld;
  work: string;
  /** The port the webhook configurations point at. */
  port: number;
  ca: Buffer;
  /** Starts a webhook on `port` (or another) with the stack's certificate, emulator and `config` (YAML lines). */
  webhook(name: string, opts?: { config?: string[]; env?: NodeJS.ProcessEnv; port?: number }): Promise<WebhookProcess & { metricsPort: number; configFile: string }>;
  stop(): Promise<void>;
}

/** The control plane main's tests use (test/support/go-tools.ts), with what to run when it is missing. */
function builtControlPlane(): string {
  const binary = controlPlaneBinary(ROOT);
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run test/e2e/build-control-plane.sh (npm run e2e does)`);
  return binary;
}

export async function startStack(name: string, opts: { world?: DemoWorld; emulator?: Omit<Parameters<typeof startEmulator>[0], 'world'>; cluster?: ClusterOptions } = {}): Promise<Stack> {
  const work = join(ROOT, 'test/e2e/.work', `${name}-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  const cluster = await startCluster(builtControlPlane(), join(work, 'cluster'), opts.cluster);
  const k = new Kubectl(cluster.kubeconfig);
  const world = opts.world ?? demoState();
  const emu = await startEmulator({ ...opts.emulator, world });
  const port = await freePort();
  execFileSync('bash', ['certs/gen-certs.sh', '--local', '--port', String(port), '--out', join(work, 'certs')], { stdio: 'ignore', cwd: ROOT });
  await k.ok(['apply', '-k', 'manifests/overlays/local']);
  const ca = readFileSync(join(work, 'certs/ca.crt'));
  const started: WebhookProcess[] = [];
  let configs = 0;
  return {
    cluster,
    k,
    emu,
    world,
    work,
    port,
    ca,
    async webhook(wname, o = {}) {
      const config = join(work, `config-${++configs}.yaml`);
      writeFileSync(config, [...(o.config ?? ['defaultRegion: cn-hangzhou']), ''].join('\n'));
      const w = await startWebhook({
        name: wname,
        workDir: work,
        env: {
          KUBECONFIG: cluster.kubeconfig,
          PORT: String(o.port ?? port),
          METRICS_PORT: '0',
          TLS_CERT_FILE: join(work, 'certs/local/tls.crt'),
          TLS_KEY_FILE: join(work, 'certs/local/tls.key'),
          CONFIG_FILE: config,
          ALIBABA_CLOUD_STS_ENDPOINT: emu.stsEndpoint,
          ALIBABA_CLOUD_CR_ENDPOINT: emu.crEndpointTemplate,
          ALIBABA_CLOUD_RAM_ENDPOINT: emu.ramEndpoint,
          ALIBABA_CLOUD_ACCESS_KEY_ID: world.demo.accessKeyId,
          ALIBABA_CLOUD_ACCESS_KEY_SECRET: world.demo.accessKeySecret,
          ...o.env,
        },
      });
      started.push(w);
      const line = w.log().split('\n').find((l) => l.includes('"msg":"acr-pull-webhook serving"'))!;
      return Object.assign(w, { metricsPort: Number(JSON.parse(line).metricsPort), configFile: config });
    },
    async stop() {
      await Promise.allSettled(started.map((w) => w.stop()));
      await cluster.stop();
      await emu.close();
      if (process.env.E2E_KEEP !== '1') rmSync(work, { recursive: true, force: true });
    },
  };
}

/** The sum of a metric's samples whose labels include every `labels` pair, from Prometheus text. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))) {
    const set = m[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[2]);
  }
  return sum;
}

export async function webhookMetrics(metricsPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
}

export async function apiserverMetrics(k: Kubectl): Promise<string> {
  return k.ok(['get', '--raw', '/metrics']);
}
