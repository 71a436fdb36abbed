// npm run mutate's summary: scores per directory and the check that every survivor is killed or listed.
import { describe, expect, it } from 'vitest';
import { directoryOf, entryFor, mergeReports, score, summarize } from '../../scripts/mutation-score.js';

const source = "export const a = (x: number) => x > 1 ? 'big' : `small`;\n";
const mutant = (id: string, status: string, start: number, end: number, mutatorName: string, replacement: string) => ({
  id,
  status,
  mutatorName,
  replacement,
  location: { start: { line: 1, column: start }, end: { line: 1, column: end } },
});
const report = {
  files: {
    'src/acr/a.ts': {
      source,
      mutants: [
        mutant('1', 'Killed', 33, 38, 'EqualityOperator', 'x >= 1'),
        mutant('2', 'Timeout', 33, 38, 'EqualityOperator', 'x < 1'),
        mutant('3', 'Survived', 41, 46, 'StringLiteral', '""'),
        mutant('4', 'NoCoverage', 49, 56, 'StringLiteral', '``'),
        mutant('5', 'Ignored', 49, 56, 'StringLiteral', '``'),
      ],
    },
    'src/main.ts': { source, mutants: [mutant('6', 'Killed', 33, 38, 'EqualityOperator', 'x >= 1')] },
  },
};

describe('mutation score summary', () => {
  it('scores detected (killed, timeout) over detected and undetected (survived, no coverage), per src/ directory', () => {
    expect(directoryOf('src/acr/a.ts')).toBe('src/acr');
    expect(directoryOf('src/main.ts')).toBe('src');
    expect(score({ detected: 3, undetected: 1 })).toBe(75);
    const { rows } = summarize(report, '');
    expect(rows).toEqual([
      ['All files', { detected: 3, undetected: 2, ignored: 1 }],
      ['src', { detected: 1, undetected: 0, ignored: 0 }],
      ['src/acr', { detected: 2, undetected: 2, ignored: 1 }],
    ]);
  });

  it('reads several part reports as one, a later report replacing the same file of an earlier one', () => {
    const earlier = { files: { 'src/main.ts': { source, mutants: [mutant('7', 'Survived', 33, 38, 'EqualityOperator', 'x >= 1')] } } };
    const other = { files: { 'src/kube/k.ts': { source, mutants: [mutant('8', 'NoCoverage', 33, 38, 'EqualityOperator', 'x >= 1')] } } };
    const merged = mergeReports([earlier, report, other]);
    expect(Object.keys(merged.files)).toEqual(['src/main.ts', 'src/acr/a.ts', 'src/kube/k.ts']);
    expect(summarize(merged, '').rows).toEqual([
      ['All files', { detected: 3, undetected: 3, ignored: 1 }],
      ['src', { detected: 1, undetected: 0, ignored: 0 }],
      ['src/acr', { detected: 2, undetected: 2, ignored: 1 }],
      ['src/kube', { detected: 0, undetected: 1, ignored: 0 }],
    ]);
  });

  it('calls an entry stale only when its file was in the reports: a part not run yet keeps its entries', () => {
    const listed = '- src/kube/never-run.ts · X · `a` → `b` — why\n- src/main.ts · X · `a` → `b` — killed since\n';
    expect(summarize(report, listed).stale).toEqual(['- src/main.ts · X · `a` → `b`']);
  });

  it('lists survivors missing from the equivalents file by their entry line, and entries that no longer survive', () => {
    const m = report.files['src/acr/a.ts'].mutants;
    expect(entryFor('src/acr/a.ts', source, m[2]!)).toBe("- src/acr/a.ts · StringLiteral · `'big'` → `\"\"`");
    // A backtick inside: a longer fence.
    expect(entryFor('src/acr/a.ts', source, m[3]!)).toBe('- src/acr/a.ts · StringLiteral · `` `small` `` → ``` `` ```');
    const listed = "# Equivalent\n- src/acr/a.ts · StringLiteral · `'big'` → `\"\"` — why not\n- src/acr/a.ts · X · `a` → `b` — killed since\n";
    const { unlisted, stale } = summarize(report, listed);
    expect(unlisted).toEqual(['- src/acr/a.ts · StringLiteral · `` `small` `` → ``` `` ```   (src/acr/a.ts:1:49, NoCoverage)']);
    expect(stale).toEqual(["- src/acr/a.ts · X · `a` → `b`"]);
  });

  it('takes one equivalents line per survivor: a second survivor with the same text needs a second line', () => {
    const twice = {
      files: {
        'src/acr/a.ts': {
          source,
          mutants: [mutant('1', 'Survived', 41, 46, 'StringLiteral', '""'), mutant('2', 'Survived', 41, 46, 'StringLiteral', '""')],
        },
      },
    };
    const line = "- src/acr/a.ts · StringLiteral · `'big'` → `\"\"` — why\n";
    expect(summarize(twice, line).unlisted).toEqual(["- src/acr/a.ts · StringLiteral · `'big'` → `\"\"`   (src/acr/a.ts:1:41, Survived)"]);
    expect(summarize(twice, line + line)).toMatchObject({ unlisted: [], stale: [] });
    expect(summarize(twice, line + line + line).stale).toEqual(["- src/acr/a.ts · StringLiteral · `'big'` → `\"\"`"]);
  });
});
