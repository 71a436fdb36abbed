// The version users see in --version and the build_info metric: package.json's, read once. The image copies
// package.json next to dist/ (Dockerfile) and npm installs keep it. This file runs as dist/src/version.js and,
// under the tests, as src/version.ts: the nearest package.json above it is the project's either way.
import { existsSync, readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (const up of ['../package.json', '../../package.json']) {
    const file = new URL(up, import.meta.url);
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    if (typeof pkg.version === 'string') cached = pkg.version;
    break;
  }
  return cached;
}
