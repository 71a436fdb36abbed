#!/usr/bin/env node
// acr-credential-provider: the kubelet's image credential provider plugin for Alibaba Cloud Container Registry.
// The kubelet runs it once per image pull (a CredentialProviderRequest on stdin, the response on stdout). An
// entry file that always runs, also through a symlink: it is never imported. `npm run build` bundles it into
// dist/bin/acr-credential-provider.cjs, the package's bin (one file to compile instead of thirty modules to resolve).
// Reading stdin and writing the answer: ./stdio.ts; the work: ./run.ts.
import { run } from './run.js';
import { crash, finish, readStdin } from './stdio.js';

run({ argv: process.argv.slice(2), env: process.env, readStdin: () => readStdin() }).then(
  (result) => finish(result),
  (e: unknown) => crash(e),
);
