// Manual use: starts the emulator on demoState() and prints the endpoints (never the secret).
//   node dist/emulator/cli.js [--port N] [--host H] [--credentials-file PATH]
// Port also from ACR_EMULATOR_PORT. --credentials-file writes the demo AccessKey as KEY=value lines
// (mode 0600) for `set -a; . PATH` — the only way the secret leaves the process.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { demoState } from './demo.js';
import { startEmulator, type Emulator } from './server.js';

export interface CliOptions {
  port: number;
  host: string;
  credentialsFile?: string;
}

export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const opts: CliOptions = { port: 0, host: '127.0.0.1' };
  const portText = env.ACR_EMULATOR_PORT;
  if (portText) opts.port = parsePort(portText);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    if (name === '--port' || name === '-p') opts.port = parsePort(value());
    else if (name === '--host') opts.host = value();
    else if (name === '--credentials-file') opts.credentialsFile = value();
    else if (/^\d+$/.test(arg)) opts.port = parsePort(arg);
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port ${text}`);
  return port;
}

export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<Emulator> {
  const opts = parseCliArgs(argv, env);
  const world = demoState();
  const emulator = await startEmulator({ world, host: opts.host, port: opts.port });
  const d = world.demo;
  if (opts.credentialsFile) {
    const lines = [`ALIBABA_CLOUD_ACCESS_KEY_ID=${d.accessKeyId}`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET=${d.accessKeySecret}`];
    writeFileSync(opts.credentialsFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  }
  out(`ACR/STS emulator listening on ${emulator.url}`);
  out(`ALIBABA_CLOUD_STS_ENDPOINT=${emulator.stsEndpoint}`);
  out(`ALIBABA_CLOUD_CR_ENDPOINT=${emulator.crEndpointTemplate}`);
  out(`ALIBABA_CLOUD_RAM_ENDPOINT=${emulator.ramEndpoint}`);
  out(`service role: ${d.serviceRoleArn}`);
  out(`user role:    ${d.userRoleArn}`);
  out(`instances:    ${d.hangzhouInstanceId} (cn-hangzhou, demo, registry.example.com), ${d.beijingInstanceId} (cn-beijing)`);
  out(`personal:     ${d.personalRegion}`);
  out(opts.credentialsFile ? `user AccessKey written to ${opts.credentialsFile}` : 'user AccessKey: pass --credentials-file PATH to obtain it');
  return emulator;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  runCli(process.argv.slice(2), process.env, (line) => console.log(line))
    .then((emulator) => {
      const stop = (): void => {
        void emulator.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((err: unknown) => {
      console.error(`acr emulator: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    });
}
