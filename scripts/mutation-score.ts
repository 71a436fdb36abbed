// `npm run mutate`'s summary: the mutation score per directory of src/ from Stryker's JSON report, checked against
// the project's thresholds, and every surviving mutant either listed in test/MUTANTS.md as equivalent or printed
// here to be killed. Exit code 1 when a threshold is missed or a survivor is unlisted.
//
//   node dist/scripts/mutation-score.js [report.json ...] [test/MUTANTS.md]
//
// Several reports (one per part of src/, as `npm run mutate:parts` writes them) are read as one: a file in a later
// report replaces the same file in an earlier one.
import { existsSync, readFileSync } from 'node:fs';

interface Position {
  line: number;
  column: number;
}
interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: Position; end: Position };
}
interface Report {
  files: Record<string, { source: string; mutants: Mutant[] }>;
}

/** Minimum scores (killed and timed out over all valid mutants): overall, and for the directories that decide. */
export const THRESHOLDS: Record<string, number> = { 'All files': 85, 'src/acr': 90, 'src/admission': 90, 'src/config': 90 };

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

export interface Tally {
  detected: number;
  undetected: number;
  /** Ignored by Stryker (static mutants under --ignoreStatic): not tested, so outside the score, but shown. */
  ignored: number;
}

export const score = (t: Pick<Tally, 'detected' | 'undetected'>): number => (t.detected + t.undetected === 0 ? 100 : (100 * t.detected) / (t.detected + t.undetected));

/** `src/acr/x.ts` -> `src/acr`; files directly under src/ count as `src`. */
export function directoryOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts.slice(0, -1).join('/') || '.';
}

/** The mutated source text, whitespace collapsed and cut (the same text test/MUTANTS.md lists). */
function original(source: string, m: Mutant): string {
  const lines = source.split('\n');
  const { start, end } = m.location;
  const text =
    start.line === end.line
      ? lines[start.line - 1]!.slice(start.column - 1, end.column - 1)
      : [lines[start.line - 1]!.slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1]!.slice(0, end.column - 1)].join('\n');
  return short(text);
}

function short(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}

/** A Markdown code span holding `text`, whatever backticks it contains. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  return longest > 0 || text.startsWith(' ') ? `${fence} ${text} ${fence}` : `${fence}${text}${fence}`;
}

/** The line test/MUTANTS.md holds for an equivalent mutant (followed by " — <why>"). */
export function entryFor(file: string, source: string, m: Mutant): string {
  return `- ${file} · ${m.mutatorName} · ${code(original(source, m))} → ${code(short(m.replacement ?? ''))}`;
}

/** One report from several: files of later reports replace the same files of earlier ones. */
export function mergeReports(reports: Report[]): Report {
  return { files: Object.assign({}, ...reports.map((r) => r.files)) as Report['files'] };
}

export function summarize(report: Report, equivalents: string): { rows: [string, Tally][]; unlisted: string[]; stale: string[] } {
  const byDir = new Map<string, Tally>();
  const all: Tally = { detected: 0, undetected: 0, ignored: 0 };
  const unlisted: string[] = [];
  // Each line of the equivalents file covers one survivor: two survivors with the same text (the same mutation on
  // two lines of a file) need two lines, so an entry never hides a later survivor that merely looks the same.
  const listed = new Map<string, number>();
  for (const l of equivalents.split('\n')) {
    const at = l.indexOf(' — ');
    if (!l.startsWith('- src/') || at <= 0) continue;
    const key = l.slice(0, at);
    listed.set(key, (listed.get(key) ?? 0) + 1);
  }
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    const dir = directoryOf(file);
    const t = byDir.get(dir) ?? { detected: 0, undetected: 0, ignored: 0 };
    byDir.set(dir, t);
    for (const m of mutants) {
      if (m.status === 'Ignored') {
        t.ignored++;
        all.ignored++;
      } else if (DETECTED.has(m.status)) {
        t.detected++;
        all.detected++;
      } else if (UNDETECTED.has(m.status)) {
        t.undetected++;
        all.undetected++;
        const entry = entryFor(file, source, m);
        const left = listed.get(entry) ?? 0;
        if (left > 0) listed.set(entry, left - 1);
        else unlisted.push(`${entry}   (${file}:${m.location.start.line}:${m.location.start.column}, ${m.status})`);
      }
    }
  }
  // Lines left over: their survivor was killed (or the code changed). Only files the reports cover: a part not run
  // yet proves nothing about its entries.
  const stale = [...listed.entries()].filter(([entry, left]) => left > 0 && entry.slice(2).split(' · ')[0]! in report.files).map(([entry]) => entry);
  const rows: [string, Tally][] = [['All files', all], ...[...byDir.entries()].sort(([a], [b]) => (a < b ? -1 : 1))];
  return { rows, unlisted, stale };
}

function main(): void {
  const args = process.argv.slice(2);
  const reportFiles = args.filter((a) => !a.endsWith('.md'));
  if (reportFiles.length === 0) reportFiles.push('reports/mutation/mutation.json');
  const mutantsFile = args.find((a) => a.endsWith('.md')) ?? 'test/MUTANTS.md';
  const missing = reportFiles.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    console.error(`${missing.join(', ')} missing: run npm run mutate (or npm run mutate:parts)`);
    process.exit(2);
  }
  const report = mergeReports(reportFiles.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Report));
  const { rows, unlisted, stale } = summarize(report, existsSync(mutantsFile) ? readFileSync(mutantsFile, 'utf8') : '');
  let failed = false;
  console.log('directory                 score   detected  undetected  ignored  minimum');
  for (const [dir, t] of rows) {
    const min = THRESHOLDS[dir];
    const ok = min === undefined || score(t) >= min;
    failed ||= !ok;
    console.log(
      `${dir.padEnd(24)} ${score(t).toFixed(2).padStart(6)}%  ${String(t.detected).padStart(8)}  ${String(t.undetected).padStart(10)}  ${String(t.ignored).padStart(7)}  ${min === undefined ? '' : `${min}%${ok ? '' : '  BELOW'}`}`,
    );
  }
  if (unlisted.length > 0) {
    failed = true;
    console.log(`\n${unlisted.length} surviving mutants are neither killed nor listed in ${mutantsFile} as equivalent:`);
    for (const u of unlisted) console.log(u);
  }
  if (stale.length > 0) {
    console.log(`\n${stale.length} entries of ${mutantsFile} match no surviving mutant any more (killed, or the code changed):`);
    for (const s of stale) console.log(s);
  }
  process.exit(failed ? 1 : 0);
}

if (process.argv[1]?.endsWith('mutation-score.js')) main();
