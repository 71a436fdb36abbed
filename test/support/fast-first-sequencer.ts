// Test file order for mutation testing: Stryker stops at the first failing test, so pure unit tests run first and
// the slow files (servers, property-based bodies over HTTPS, the emulator's own tests) last. Vitest's own order
// (slowest first, to fill its workers) is the worst case for a single worker that bails.
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Earlier entries run first; a file matches the first prefix it starts with. */
const ORDER = [
  'test/acr/',
  'test/util/',
  'test/config/',
  'test/admission/fixtures',
  'test/admission/',
  'test/metrics/',
  'test/kube/docker-config',
  'test/kube/manager',
  'test/kube/',
  'test/cloud/',
  'test/policy/policy',
  'test/policy/no-secret-leaks',
  'test/emulator/',
  'test/policy/',
];

export class FastFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = `${process.cwd()}/`;
    const rank = (f: TestSpecification) => {
      const rel = f.moduleId.startsWith(root) ? f.moduleId.slice(root.length) : f.moduleId;
      const i = ORDER.findIndex((p) => rel.startsWith(p));
      return [i < 0 ? ORDER.length : i, rel] as const;
    };
    return [...files].sort((a, b) => {
      const [ra, na] = rank(a);
      const [rb, nb] = rank(b);
      return ra - rb || (na < nb ? -1 : na > nb ? 1 : 0);
    });
  }
}
