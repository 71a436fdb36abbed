// The pinned Go tools the chart and alert tests run (helm, promtool: test/tools/build.sh builds them into the
// shared test/e2e/.bin/). Missing, their tests are skipped with the reason in the test name, unless
// ACR_TEST_REQUIRE_TOOLS=1 (.ci/run sets it), which makes a missing tool a failure instead.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface GoTool {
  path: string;
  /** Run the tests: the binary is there, or it is required (and its absence must fail them). */
  run: boolean;
  /** Suffix for a describe title: empty, or why it is skipped. */
  note: string;
}

export function goTool(name: 'helm' | 'promtool'): GoTool {
  const path = resolve(join('test/e2e/.bin', name, name));
  const present = existsSync(path);
  const required = process.env.ACR_TEST_REQUIRE_TOOLS === '1';
  return {
    path,
    run: present || required,
    note: present || required ? '' : `: SKIPPED, ${name} is not built (npm run tools builds it; npm run e2e and .ci/run do)`,
  };
}
