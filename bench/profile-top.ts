// `node dist/bench/profile-top.js <file.cpuprofile> [count]`: the functions with the most self time in a V8 CPU
// profile (as written by `node --cpu-prof`, e.g. by `npm run bench -- --profile`), with their total (inclusive)
// time, and the project's own frames mapped back to src/*.ts lines through the compiled source maps.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const maps = new Map<string, SourceMap | undefined>();
function sourceMapFor(path: string): SourceMap | undefined {
  if (!maps.has(path)) {
    let map: SourceMap | undefined;
    if (existsSync(`${path}.map`)) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
      } catch {
        map = undefined;
      }
    }
    maps.set(path, map);
  }
  return maps.get(path);
}

/** `src/x.ts:12` for the project's compiled frames, `node_modules/pkg/file.js:34` or `node:internal...` otherwise. */
export function where(frame: CallFrame, root = process.cwd()): string {
  const { url, lineNumber, columnNumber } = frame;
  if (!url) return '(native)';
  if (!url.startsWith('file://')) return `${url}:${lineNumber + 1}`;
  const path = fileURLToPath(url);
  const map = sourceMapFor(path);
  const entry = map?.findEntry(lineNumber, columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
  if (entry?.originalSource !== undefined && entry.originalLine !== undefined) {
    const source = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(path, '..', entry.originalSource);
    return `${relative(root, source)}:${entry.originalLine + 1}`;
  }
  return `${relative(root, path)}:${lineNumber + 1}`;
}

export interface Row {
  name: string;
  where: string;
  selfMs: number;
  totalMs: number;
}

export function topFunctions(profile: Profile, root = process.cwd()): { rows: Row[]; totalMs: number; idleMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}\u0000${where(n.callFrame, root)}`;
  const keys = new Map<number, string>();
  for (const n of profile.nodes) keys.set(n.id, keyOf(n));
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const id = profile.samples[i]!;
    const node = byId.get(id);
    if (!node) continue;
    totalMs += ms;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') idleMs += name === '(idle)' ? ms : 0;
    const k = keys.get(id)!;
    self.set(k, (self.get(k) ?? 0) + ms);
    // Inclusive time: every distinct function on the stack, once per sample (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = keys.get(cur)!;
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + ms);
    }
  }
  const rows = [...self.entries()].map(([k, ms]) => {
    const [name, at] = k.split('\u0000') as [string, string];
    return { name, where: at, selfMs: ms, totalMs: total.get(k) ?? ms };
  });
  rows.sort((a, b) => b.selfMs - a.selfMs);
  return { rows, totalMs, idleMs };
}

/** Self time summed by area: the project's src/ files, each node_modules package, node internals, GC, idle. */
export function byArea(rows: Row[]): [string, number][] {
  const areas = new Map<string, number>();
  for (const r of rows) {
    const w = r.where;
    const area = w.startsWith('src/')
      ? w.replace(/:\d+$/, '')
      : w.includes('node_modules/')
        ? `node_modules/${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(w)?.[1] ?? '?'}`
        : w.startsWith('node:')
          ? 'node internals'
          : r.name.startsWith('(')
            ? r.name
            : w === '(native)'
              ? 'native'
              : w.replace(/:\d+$/, '');
    areas.set(area, (areas.get(area) ?? 0) + r.selfMs);
  }
  return [...areas.entries()].sort((a, b) => b[1] - a[1]);
}

export function report(file: string, count = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const { rows, totalMs, idleMs } = topFunctions(profile);
  const busy = totalMs - idleMs;
  const pct = (ms: number) => `${((100 * ms) / Math.max(busy, 1)).toFixed(1).padStart(5)}%`;
  const out: string[] = [];
  out.push(`${file}: ${(totalMs / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy (percentages of busy time)`);
  out.push('  self     total    function  (location)');
  for (const r of rows.filter((x) => x.name !== '(idle)').slice(0, count)) {
    out.push(`  ${pct(r.selfMs)}  ${pct(r.totalMs)}  ${r.name}  (${r.where})`);
  }
  out.push('  by area (self):');
  for (const [area, ms] of byArea(rows.filter((x) => x.name !== '(idle)')).slice(0, 15)) out.push(`  ${pct(ms)}  ${area}`);
  return out.join('\n');
}

/** Who calls `name` (self time of `name` attributed to its callers, `depth` frames up). */
export function callers(file: string, name: string, depth = 1, count = 15): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (id: number | undefined) => {
    const n = id === undefined ? undefined : byId.get(id);
    return n ? `${n.callFrame.functionName || '(anonymous)'} (${where(n.callFrame)})` : '(root)';
  };
  const by = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (!node || node.callFrame.functionName !== name) continue;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    all += ms;
    const chain: string[] = [];
    let cur = parent.get(node.id);
    for (let d = 0; d < depth; d++, cur = cur === undefined ? undefined : parent.get(cur)) chain.push(label(cur));
    const k = chain.join(' <- ');
    by.set(k, (by.get(k) ?? 0) + ms);
  }
  const out = [`${name}: ${all.toFixed(0)} ms self, by caller:`];
  for (const [k, ms] of [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)) out.push(`  ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  return out.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, n, ...rest] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/profile-top.js <file.cpuprofile> [count]\n       node dist/bench/profile-top.js <file.cpuprofile> --callers <function name> [depth]');
    process.exit(2);
  }
  if (n === '--callers' && rest[0]) console.log(callers(file, rest[0], rest[1] ? Number(rest[1]) : 1));
  else console.log(report(file, n ? Number(n) : 25));
}
