/**
 * One run of each benchmark scenario, each with a fresh target (see run-batch.mjs for the rest).
 * Each run stops what it started, also when it fails.
 */
import { round } from './redis-stats.mjs';
import { runBatch } from './run-batch.mjs';
import { startFastTarget } from './fast-target.mjs';

const { startDemoApi } = await import(new URL('../dist/src/demo/demo-api.js', import.meta.url).href);

/**
 * Throughput: `operations` POSTs to the fast target by `processes` workers at `concurrency`, the
 * batch enqueued before the workers start. `limits` undefined = no limits configured for the key
 * (A); otherwise the key's limits (B).
 */
export async function runThroughput(ctx, { label, limits, operations, processes = 1, concurrency = 100 }) {
  const target = await startFastTarget();
  try {
    const config = { targets: { fast: { baseUrl: target.url, allowPrivateAddresses: true, ...(limits ? { limits } : {}) } }, limits: {} };
    const op = (i) => ({ target: 'fast', method: 'POST', url: '/items', json: { i } });
    const started = () => target.requests() > 0;
    const run = await runBatch(ctx, { label, config, op, operations, processes, concurrency, pollMs: 20, prefilled: true, started });
    const arrivals = target.arrivals();
    if (arrivals.length < operations) throw new Error(`${label}: the target saw ${arrivals.length} requests for ${operations} operations`);
    const first = arrivals[0];
    return {
      ...run.summary,
      requests: arrivals.length,
      jobsPerSecond: round((operations * 1000) / (run.doneAt - first), 1),
      /** From the spawn of the workers: includes their start-up. */
      jobsPerSecondFromSpawn: round((operations * 1000) / (run.doneAt - run.spawnedAt), 1),
      firstRequestAfterSpawnMs: round(first - run.spawnedAt, 0),
      runMs: round(run.doneAt - first, 0),
    };
  } finally {
    await target.close();
  }
}

/**
 * Accuracy: `operations` POSTs to the demo API behind its strict limiter, by `processes` workers,
 * with the key limited to the same rate and burst the API enforces. `prefilled`: the batch waits
 * for the workers (a cold start with a backlog) instead of arriving at running workers.
 */
export async function runAccuracy(ctx, { label, rate, burst, operations, processes = 4, concurrency = 50, prefilled = false }) {
  const api = await startDemoApi({ latencyMs: { min: 2, max: 10 }, failureRate: 0, rateLimitRate: 0, strictLimit: { requestsPerSecond: rate, burst } });
  try {
    const config = { targets: { demo: { baseUrl: api.url, allowPrivateAddresses: true, limits: { requestsPerSecond: rate, burst } } }, limits: {} };
    const op = (i) => ({ target: 'demo', method: 'POST', url: '/records', json: { i } });
    const timeoutMs = (operations / rate) * 2_000 + 60_000;
    const started = () => api.stats().requests > 0;
    const run = await runBatch(ctx, { label, config, op, operations, processes, concurrency, pollMs: 100, timeoutMs, prefilled, started });
    const arrivals = api.arrivals();
    const stats = api.stats();
    const span = arrivals.at(-1) - arrivals[0];
    const achieved = ((operations - 1) * 1000) / span;
    const replayed = rejections(arrivals, rate, burst);
    return {
      ...run.summary,
      rate,
      burst,
      requests: stats.requests,
      rejected: stats.limited,
      created: stats.created,
      maxInFlight: stats.maxInFlight,
      achievedPerSecond: round(achieved, 2),
      achievedRatio: round(achieved / rate, 3),
      maxStartsIn1s: maxInWindow(arrivals, 1_000),
      maxStartsIn100ms: maxInWindow(arrivals, 100),
      firstSecondStarts: arrivals.filter((t) => t - arrivals[0] < 1_000).length,
      spanMs: round(span, 0),
      diagnostics: {
        /** When (ms after the first arrival) the strict limiter rejected, replayed from the arrivals. */
        rejectedAtMs: replayed.map((t) => round(t - arrivals[0], 1)),
        /** Stalls of the bench's event loop (it hosts the API), [ended at, length] in ms after the first arrival. */
        benchStallsMs: run.summary.benchStalls.map(([at, ms]) => [round(at - arrivals[0], 1), ms]),
        /** The replay agrees with the API's own count (a check on the replay). */
        replayMatches: replayed.length === stats.limited,
        /** The first 40 arrivals, ms after the first. */
        firstArrivalsMs: arrivals.slice(0, 40).map((t) => round(t - arrivals[0], 1)),
      },
    };
  } finally {
    await api.close();
  }
}

/** The arrivals the demo API's GCRA (same rate, burst and clock) refused. */
export function rejections(arrivals, rate, burst) {
  const interval = 1_000 / rate;
  const tolerance = (burst - 1) * interval;
  let tat = 0;
  return arrivals.filter((now) => {
    if (tat - now > tolerance) return true;
    tat = Math.max(tat, now) + interval;
    return false;
  });
}

/** Most arrivals in any window [t, t + windowMs) (arrivals sorted). */
export function maxInWindow(arrivals, windowMs) {
  let best = 0;
  let start = 0;
  for (let end = 0; end < arrivals.length; end++) {
    while (arrivals[end] - arrivals[start] >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

