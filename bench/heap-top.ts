// `node dist/bench/heap-top.js <a.heapsnapshot> [<b.heapsnapshot>] [count]`: live heap by constructor (self
// sizes, summed per type and name), or what grew from a to b. Snapshots come from `npm run bench -- --heap`
// (taken after the chains are cached and after the soak; V8 collects garbage before writing one).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface Group {
  key: string;
  count: number;
  bytes: number;
}

/** Self size and count per `type:name` (objects by constructor, strings, closures by function name, ...). */
export function groups(file: string): { total: number; groups: Map<string, Group> } {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, Group>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? '?';
    const size = snap.nodes[i + iSize]!;
    total += size;
    // Strings and numbers by type only (their "name" is the content); objects and closures by name.
    const name = type === 'object' || type === 'closure' || type === 'native' ? (snap.strings[snap.nodes[i + iName]!] ?? '?').slice(0, 60) : '';
    const key = name ? `${type}:${name}` : type;
    const g = out.get(key) ?? { key, count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    out.set(key, g);
  }
  return { total, groups: out };
}

export function report(a: string, b?: string, count = 25): string {
  const MiB = 1024 * 1024;
  const ga = groups(a);
  const lines: string[] = [];
  if (!b) {
    lines.push(`${a}: ${(ga.total / MiB).toFixed(1)} MiB live (self sizes)`);
    lines.push('     MiB     count  type:constructor');
    for (const g of [...ga.groups.values()].sort((x, y) => y.bytes - x.bytes).slice(0, count)) {
      lines.push(`  ${(g.bytes / MiB).toFixed(2).padStart(6)}  ${String(g.count).padStart(8)}  ${g.key}`);
    }
    return lines.join('\n');
  }
  const gb = groups(b);
  lines.push(`${a} -> ${b}: ${(ga.total / MiB).toFixed(1)} -> ${(gb.total / MiB).toFixed(1)} MiB live (self sizes)`);
  lines.push('  +MiB      +count  type:constructor');
  const keys = new Set([...ga.groups.keys(), ...gb.groups.keys()]);
  const diffs = [...keys].map((k) => {
    const x = ga.groups.get(k);
    const y = gb.groups.get(k);
    return { key: k, bytes: (y?.bytes ?? 0) - (x?.bytes ?? 0), count: (y?.count ?? 0) - (x?.count ?? 0) };
  });
  for (const d of diffs.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes)).slice(0, count)) {
    lines.push(`  ${(d.bytes / MiB).toFixed(2).padStart(6)}  ${String(d.count).padStart(9)}  ${d.key}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2).filter((x) => !/^\d+$/.test(x));
  const n = process.argv.slice(2).find((x) => /^\d+$/.test(x));
  if (!files[0]) {
    console.error('usage: node dist/bench/heap-top.js <a.heapsnapshot> [<b.heapsnapshot>] [count]');
    process.exit(2);
  }
  console.log(report(files[0], files[1], n ? Number(n) : 25));
}
