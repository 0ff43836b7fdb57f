/** Operations as a JSON Lines file's text, one per line. */
export const jsonl = (ops: unknown[]): string => `${ops.map((op) => JSON.stringify(op)).join('\n')}\n`;

/** The values of JSON Lines output (`sluice results`, `--json`), blank lines skipped. */
export const jsonLines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);

/** The most arrivals in any window of `windowMs` (sliding, starting at each arrival). */
export function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + windowMs) end++;
    max = Math.max(max, end - start);
  }
  return max;
}
