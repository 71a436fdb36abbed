// Go-style durations as Kubernetes users write them: "90s", "15m", "1h30m", "24h".
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT[m[2]!]!;
  return Math.round(total);
}
