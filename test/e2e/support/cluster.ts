// A real control plane on loopback for the end-to-end suite: embedded etcd, kube-apiserver and
// kube-controller-manager from the binary test/e2e/build-control-plane.sh builds. Every process listens on
// 127.0.0.1 only and is stopped (process group) at the end, also when a test fails.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface Cluster {
  server: string;
  kubeconfig: string;
  workDir: string;
  /** etcd's client URL (its JSON gateway answers /v3/kv/... on it). */
  etcd: string;
  /** Stops kube-apiserver (etcd keeps running), runs `whileDown`, starts it again on the same port and waits for it. */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** CA, API server serving certificate (127.0.0.1), service-account key pair, admin token. */
function makeCredentials(dir: string): { token: string } {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=e2e-ca', '-keyout', p('ca.key'), '-out', p('ca.crt')]);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', p('apiserver.key'), '-out', p('apiserver.csr')]);
  writeFileSync(p('apiserver.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n');
  openssl(['x509', '-req', '-in', p('apiserver.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('apiserver.ext'), '-out', p('apiserver.crt')]);
  openssl(['genrsa', '-out', p('sa.key'), '2048']);
  openssl(['rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
  const token = `e2e-${Math.random().toString(36).slice(2)}${Date.now()}`;
  writeFileSync(p('tokens.csv'), `${token},e2e-admin,e2e-admin,system:masters\n`, { mode: 0o600 });
  return { token };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gone = exited();
    if (gone) throw new Error(`${what}: ${gone}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

export interface ClusterOptions {
  /** Extra kube-controller-manager flags (the cluster bench raises its client QPS). */
  controllerManagerArgs?: string[];
}

export async function startCluster(binary: string, workDir: string, opts: ClusterOptions = {}): Promise<Cluster> {
  mkdirSync(workDir, { recursive: true });
  const pki = join(workDir, 'pki');
  const { token } = makeCredentials(pki);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = join(workDir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: e2e, cluster: {server: "' + server + '", certificate-authority: "' + join(pki, 'ca.crt') + '"}}]',
      'users: [{name: admin, user: {token: "' + token + '"}}]',
      'contexts: [{name: e2e, context: {cluster: e2e, user: admin}}]',
      'current-context: e2e',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  const procs: ChildProcess[] = [];
  const exitedNote: Record<string, string> = {};
  const run = (name: string, args: string[]) => {
    const log = createWriteStream(join(workDir, `${name}.log`));
    // detached: its own process group, so stop() can take down anything it started.
    const child = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // Two streams into one file: neither may end it.
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    child.on('exit', (code, signal) => (exitedNote[name] = `exited (${code ?? signal}); see ${join(workDir, `${name}.log`)}`));
    procs.push(child);
    return child;
  };

  const stop = async () => {
    for (const p of [...procs].reverse()) {
      if (p.exitCode !== null || p.pid === undefined) continue;
      try {
        process.kill(-p.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && procs.some((p) => p.exitCode === null && p.signalCode === null)) await new Promise((r) => setTimeout(r, 100));
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  };
  const onExit = () => void stop();
  process.once('exit', onExit);

  const apiserverArgs = [
    'apiserver',
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    '--endpoint-reconciler-type=none',
    `--token-auth-file=${join(pki, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    `--client-ca-file=${join(pki, 'ca.crt')}`,
    `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
    `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allow-privileged=true',
    // On by default, named so it stays on: the ServiceAccount admission plugin defaults spec.serviceAccountName
    // (which the webhook reads for ServiceAccount annotations) and copies a ServiceAccount's imagePullSecrets
    // into Pods that list none, which is how the credential helper's Secrets reach Pods.
    '--enable-admission-plugins=ServiceAccount',
    '--enable-priority-and-fairness=false',
    '--profiling=false',
  ];
  const waitForApiServer = () =>
    waitFor(
      'kube-apiserver',
      async () => {
        const r = execFileSync('curl', ['-s', '--max-time', '2', '--cacert', join(pki, 'ca.crt'), '-H', `Authorization: Bearer ${token}`, `${server}/readyz`], { encoding: 'utf8' });
        return r.trim() === 'ok';
      },
      120_000,
      () => exitedNote.apiserver ?? exitedNote.etcd,
    );
  const stopOne = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await exited;
  };

  try {
    run('etcd', ['etcd', '--data-dir', join(workDir, 'etcd'), '--listen-client', `http://127.0.0.1:${etcdClient}`, '--listen-peer', `http://127.0.0.1:${etcdPeer}`]);
    run('apiserver', apiserverArgs);
    await waitForApiServer();
    const ca = join(pki, 'ca.crt');
    run('controller-manager', [
      'controller-manager',
      `--kubeconfig=${kubeconfig}`,
      // serviceaccount-controller creates each new namespace's `default` ServiceAccount (through admission, so the
      // webhook's ServiceAccount mutation sees it); no token controller is needed (tokens are projected).
      '--controllers=serviceaccount-controller,deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller',
      '--leader-elect=false',
      `--service-account-private-key-file=${join(pki, 'sa.key')}`,
      `--root-ca-file=${ca}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      ...(opts.controllerManagerArgs ?? []),
    ]);
    // Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    await waitFor(
      'kube-controller-manager',
      async () => execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('default'),
      90_000,
      () => exitedNote['controller-manager'],
    );
  } catch (e) {
    await stop();
    throw e;
  }
  let apiserver = procs.find((p) => p.spawnargs[1] === 'apiserver')!;
  return {
    server,
    kubeconfig,
    workDir,
    etcd: `http://127.0.0.1:${etcdClient}`,
    restartApiServer: async (whileDown) => {
      await stopOne(apiserver);
      await whileDown?.();
      delete exitedNote.apiserver;
      apiserver = run('apiserver', apiserverArgs);
      await waitForApiServer();
    },
    stop: async () => {
      process.removeListener('exit', onExit);
      await stop();
    },
  };
}
