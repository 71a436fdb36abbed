// Stryker's dry run (the run that measures which tests cover which mutant) stops at the first failure (bail 1), and
// its vitest runner judges the run by the tests it collected: a test file that fails to load has no test, so nothing
// failed, the run ends early without an error, and every mutant that only the files after it cover counts as
// NoCoverage. This reporter turns such a run into an error that names the file. It does nothing outside Stryker's
// dry run (`npm test`, or Stryker's mutant runs, where a failure is the point).
import type { Reporter, TestModule, TestRunEndReason, Vitest } from 'vitest/node';

/** What a failed test module shows: its path relative to the root, and its first error. */
export interface FailedModule {
  file: string;
  error: string;
}

/** The test modules that failed (in a test or while loading), in run order. */
export function failedModules(modules: ReadonlyArray<TestModule>, root: string): FailedModule[] {
  const out: FailedModule[] = [];
  for (const m of modules) {
    if (m.state() !== 'failed') continue;
    const own = m.errors()[0];
    let error = own?.message;
    if (error === undefined) {
      for (const t of m.children.allTests()) {
        const e = t.result().errors?.[0];
        if (e) {
          error = `${t.fullName}: ${e.message}`;
          break;
        }
      }
    }
    out.push({ file: m.moduleId.startsWith(`${root}/`) ? m.moduleId.slice(root.length + 1) : m.moduleId, error: error ?? 'failed' });
  }
  return out;
}

export function dryRunError(failed: FailedModule[], reason: TestRunEndReason): Error | undefined {
  if (failed.length === 0 && reason !== 'interrupted') return undefined;
  const what = failed.map((f) => `${f.file} (${f.error})`).join('; ') || 'the run was interrupted';
  return new Error(
    `Stryker's dry run is incomplete: ${what}. The files after it did not run, so the mutants they cover would ` +
      'count as NoCoverage. Fix the test, or leave it out in vitest.stryker.config.ts if it cannot run in the sandbox.',
  );
}

export class StrykerDryRunGuard implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, _errors: unknown, reason: TestRunEndReason): void {
    const vitest = this.vitest;
    if (!vitest) return;
    // The Stryker vitest runner provides `mode` ('dry-run' or 'mutant') to the root project before each run.
    const mode = (vitest.getRootProject().getProvidedContext() as { mode?: unknown }).mode;
    if (mode !== 'dry-run') return;
    const err = dryRunError(failedModules(modules, vitest.config.root), reason);
    if (err) throw err;
  }
}
