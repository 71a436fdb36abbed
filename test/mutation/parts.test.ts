// `npm run mutate:parts` (scripts/mutate-parts.sh): every directory of src/ belongs to exactly one part, and every part
// gets stryker.config.mjs's exclusions, so a part run measures what `npm run mutate` would.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const run = (...args: string[]) => spawnSync('bash', ['scripts/mutate-parts.sh', ...args], { encoding: 'utf8', timeout: 30_000 });

describe('mutate-parts.sh', () => {
  it('--list gives each part its globs plus the config exclusions', () => {
    const out = run('--list');
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['acr', 'admission', 'config', 'cloud', 'credential-provider', 'kube', 'pull-secrets', 'top']);
    for (const l of lines) expect(l.endsWith(',!src/types/**,!src/acr/model.ts,!src/admission/json-patch.ts')).toBe(true);
    expect(lines[7]).toBe('top\tsrc/*.ts,src/util/**/*.ts,src/standalone/**/*.ts,!src/types/**,!src/acr/model.ts,!src/admission/json-patch.ts');
  });

  it('puts every directory of src/ except types in exactly one part', () => {
    const globs = run('--list')
      .stdout.trim()
      .split('\n')
      .flatMap((l) => l.split('\t')[1]!.split(','))
      .filter((g) => !g.startsWith('!'));
    const dirs = readdirSync('src', { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'types');
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) expect(globs.filter((g) => g === `src/${d.name}/**/*.ts`), d.name).toHaveLength(1);
    expect(globs.filter((g) => g === 'src/*.ts')).toHaveLength(1);
  });

  it('refuses an unknown part before building anything', () => {
    const out = run('acr', 'nosuch');
    expect(out.status).toBe(2);
    expect(out.stderr).toBe("unknown part 'nosuch'; parts: acr admission config cloud credential-provider kube pull-secrets top\n");
    expect(out.stdout).toBe('');
  });

  it('passes what follows -- to Stryker rather than reading it as parts', () => {
    const out = run('nosuch', 'other', '--', '--concurrency', '4');
    expect(out.status).toBe(2);
    const parts = 'parts: acr admission config cloud credential-provider kube pull-secrets top';
    expect(out.stderr).toBe(`unknown part 'nosuch'; ${parts}\nunknown part 'other'; ${parts}\n`);
  });
});
