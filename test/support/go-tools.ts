// The pinned Go tools the chart and alert tests run (helm, promtool: test/tools/build.sh builds them into the
// shared test/e2e/.bin/). Missing, their tests are skipped with the reason in the test name, unless
// ACR_TEST_REQUIRE_TOOLS=1 (.ci/run sets it), which makes a missing tool a failure instead.
import { existsSync, readFileSync } from 'node:fs';
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

/** The Kubernetes release the e2e control plane is pinned to (test/e2e/controlplane/go.mod), e.g. `v1.33.13`. */
export function kubernetesVersion(root = '.'): string {
  const match = /k8s\.io\/kubernetes (v1\.\d+\.\d+)/.exec(readFileSync(join(root, 'test/e2e/controlplane/go.mod'), 'utf8'));
  if (!match) throw new Error('test/e2e/controlplane/go.mod names no k8s.io/kubernetes release');
  return match[1]!;
}

/** The control-plane binary test/e2e/build-control-plane.sh builds (or E2E_CONTROLPLANE). */
export function controlPlaneBinary(root = '.'): string {
  return process.env.E2E_CONTROLPLANE ?? resolve(join(root, 'test/e2e/.bin', kubernetesVersion(root), 'controlplane'));
}
