#!/usr/bin/env node
// acr-credential-provider: the kubelet's image credential provider plugin for Alibaba Cloud Container Registry.
// The kubelet runs it once per image pull (a CredentialProviderRequest on stdin, the response on stdout). An
// entry file that always runs, also through a symlink: it is never imported.
import { run } from './run.js';

const LIMIT = 1 << 20;
const STDIN_TIMEOUT_MS = 10_000;

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // The kubelet writes the request and closes stdin; a writer that never closes must not hang the pull.
    const timer = setTimeout(() => reject(new Error('no complete request on stdin within 10 s')), STDIN_TIMEOUT_MS);
    timer.unref();
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      if (size > LIMIT) {
        clearTimeout(timer);
        reject(new Error(`the request on stdin exceeds ${LIMIT} bytes`));
        process.stdin.destroy();
        return;
      }
      chunks.push(c);
    });
    process.stdin.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    process.stdin.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const result = await run({ argv: process.argv.slice(2), env: process.env, readStdin });
if (result.stdout) process.stdout.write(`${result.stdout}\n`);
for (const line of result.stderr) process.stderr.write(`acr-credential-provider: ${line}\n`);
// Pipes are synchronous on Linux, so nothing written above is lost; exit now rather than wait for sockets.
process.exit(result.code);
