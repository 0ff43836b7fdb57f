/** What the bench's reports (report.mjs, lanes-report.mjs) compute their figures with. */

/** The median of the numbers among `values` (others left out), or undefined when there are none. */
export const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** The median over runs of one value of each. */
export const med = (runs, pick) => (runs?.length ? median(runs.map(pick)) : undefined);

/** A target's verdict: PASS, MISS, or nothing when the figure was not judged. */
export const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');
