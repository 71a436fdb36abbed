// package.json "engines" ranges as npm reads them, for the forms this project uses: `||` between sets, each set
// space-separated comparators (>=, >, <=, <, =, ^ with 1-3 version parts). Anything else throws: better a red
// test than a range silently read wrong.
type Version = [number, number, number];

const parse = (v: string): Version => {
  const parts = v.split('.').map(Number);
  if (parts.length < 1 || parts.length > 3 || parts.some((n) => !Number.isInteger(n))) throw new Error(`not a version: ${v}`);
  return [parts[0]!, parts[1] ?? 0, parts[2] ?? 0];
};
const cmp = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

function comparator(c: string, v: Version): boolean {
  const m = /^(>=|<=|>|<|=|\^)?(\d+(?:\.\d+){0,2})$/.exec(c);
  if (!m) throw new Error(`unsupported comparator in engines: ${c}`);
  const target = parse(m[2]!);
  const d = cmp(v, target);
  switch (m[1]) {
    case '>=':
      return d >= 0;
    case '>':
      return d > 0;
    case '<=':
      return d <= 0;
    case '<':
      return d < 0;
    case '^':
      return d >= 0 && v[0] === target[0];
    default:
      return d === 0;
  }
}

export function satisfiesEngines(version: string, range: string): boolean {
  const v = parse(version.replace(/^v/, ''));
  return range.split('||').some((set) => set.trim().split(/\s+/).every((c) => comparator(c, v)));
}
