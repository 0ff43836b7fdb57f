/**
 * One run of each benchmark scenario. A run gets a fresh Redis database (FLUSHALL), a fresh target
 * and a fresh queue; the operations are enqueued before any worker exists, so the figures measure
 * the workers alone. Each run stops what it started, also when it fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { startFastTarget } from './fast-target.mjs';
import { commandCalls, perOperation, redisCpuMs, resetStats, round, subtract, totalCalls } from './redis-stats.mjs';
import { spawnWorker } from './worker-processes.mjs';

const lib = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const { createProducer } = await lib('queue/producer.js');
const { createBatches } = await lib('queue/batches.js');
const { startDemoApi } = await lib('demo/demo-api.js');

/**
 * Throughput: `operations` POSTs to the fast target by `processes` workers at `concurrency`.
 * `limits` undefined = no limits configured for the key (A); otherwise the key's limits (B).
 */
export async function runThroughput(ctx, { label, limits, operations, processes = 1, concurrency = 100 }) {
  const target = await startFastTarget();
  try {
    const config = { targets: { fast: { baseUrl: target.url, ...(limits ? { limits } : {}) } }, limits: {} };
    const op = (i) => ({ target: 'fast', method: 'POST', url: '/items', json: { i } });
    const run = await runWorkers(ctx, { label, config, op, operations, processes, concurrency, pollMs: 20 });
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
 * with the key limited to the same rate and burst the API enforces.
 */
export async function runAccuracy(ctx, { label, rate, burst, operations, processes = 4, concurrency = 50 }) {
  const api = await startDemoApi({ latencyMs: { min: 2, max: 10 }, failureRate: 0, rateLimitRate: 0, strictLimit: { requestsPerSecond: rate, burst } });
  try {
    const config = { targets: { demo: { baseUrl: api.url, limits: { requestsPerSecond: rate, burst } } }, limits: {} };
    const op = (i) => ({ target: 'demo', method: 'POST', url: '/records', json: { i } });
    const timeoutMs = (operations / rate) * 2_000 + 60_000;
    const run = await runWorkers(ctx, { label, config, op, operations, processes, concurrency, pollMs: 100, timeoutMs });
    const arrivals = api.arrivals();
    const stats = api.stats();
    const span = arrivals.at(-1) - arrivals[0];
    const achieved = ((operations - 1) * 1000) / span;
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
    };
  } finally {
    await api.close();
  }
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

/**
 * Enqueues the operations (its Redis cost counted apart), then spawns the workers and polls the
 * batch until nothing is pending. Returns when the batch is done and every worker has stopped.
 */
async function runWorkers(ctx, { label, config, op, operations, processes, concurrency, pollMs, timeoutMs = 300_000 }) {
  const { redis, redisUrl } = ctx;
  await redis.flushall();
  const queue = `bench-${label.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
  const configPath = join(ctx.tmpDir, `${queue}.json`);
  await writeFile(configPath, JSON.stringify(config));
  const batchId = `bench-${Date.now()}`;

  await resetStats(redis);
  const enqueueStart = performance.now();
  const producer = createProducer({ connection: redisUrl, queue, config });
  let enqueueCalls;
  try {
    const summary = await producer.enqueueMany((function* () {
      for (let i = 0; i < operations; i++) yield op(i);
    })(), { batchId, collectResults: false });
    if (summary.enqueued !== operations) throw new Error(`${label}: enqueued ${summary.enqueued} of ${operations}`);
    enqueueCalls = await commandCalls(redis);
  } finally {
    await producer.close();
  }
  const enqueueMs = performance.now() - enqueueStart;

  const batches = createBatches(redis, queue);
  await resetStats(redis);
  const cpuBefore = await redisCpuMs(redis);
  const spawnedAt = performance.now();
  const nodeArgs = ctx.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfDir] : [];
  if (ctx.cpuProfDir) await mkdir(ctx.cpuProfDir, { recursive: true });
  const workers = Array.from({ length: processes }, () => spawnWorker({ root: ctx.root, redisUrl, queue, configPath, concurrency, nodeArgs }));
  try {
    let polls = 0;
    let status;
    for (;;) {
      status = await batches.status(batchId);
      polls++;
      if (status && status.pending === 0) break;
      const dead = workers.find((worker) => !worker.running());
      if (dead) throw new Error(`${label}: worker ${dead.pid} exited during the run; its output ended with:\n${dead.output()}`);
      if (performance.now() - spawnedAt > timeoutMs) {
        throw new Error(`${label}: not done after ${Math.round(timeoutMs / 1000)} s (${JSON.stringify(status)})`);
      }
      await delay(pollMs);
    }
    const doneAt = performance.now();
    const workerCpu = workers.map((worker) => worker.cpuMs());
    const calls = await commandCalls(redis);
    subtract(calls, 'hgetall', polls);
    const redisCpu = (await redisCpuMs(redis)) - cpuBefore;
    const stopped = await Promise.all(workers.map((worker) => worker.stop()));
    const problems = workers.flatMap((worker) => worker.problems());
    const cpuKnown = workerCpu.every((ms) => ms !== undefined);
    const workerTotal = totalCalls(calls);
    const enqueueTotal = totalCalls(enqueueCalls);
    return {
      spawnedAt,
      doneAt,
      summary: {
        label,
        queue,
        operations,
        processes,
        concurrency,
        succeeded: status.succeeded,
        deadLettered: status.deadLettered,
        retries: status.retries,
        enqueueMs: round(enqueueMs, 0),
        redis: {
          callsPerOp: round((workerTotal + enqueueTotal) / operations, 2),
          workerCallsPerOp: round(workerTotal / operations, 2),
          enqueueCallsPerOp: round(enqueueTotal / operations, 2),
          evalshaPerOp: round(((calls.evalsha ?? 0) + (calls.eval ?? 0)) / operations, 3),
          cpuUsPerOp: round((redisCpu * 1000) / operations, 1),
          workerCalls: calls,
          enqueueCalls,
          workerCallsPerOpByCommand: perOperation(calls, operations),
        },
        workerCpuUsPerOp: cpuKnown ? round((workerCpu.reduce((a, b) => a + b, 0) * 1000) / operations, 0) : undefined,
        workerExits: stopped,
        workerProblems: problems.slice(0, 10).map((entry) => ({ level: entry.level, msg: entry.msg, err: entry.err?.message })),
        workerProblemCount: problems.length,
      },
    };
  } finally {
    await Promise.allSettled(workers.map((worker) => worker.stop()));
  }
}
