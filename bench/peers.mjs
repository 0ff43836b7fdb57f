/**
 * The peers: what a user would reach for instead of sluice to stay under an API's rate limit,
 * measured on the binding shape (`processes` worker processes × `concurrency`, one key limited to
 * `rate`/s with `burst`, `operations` POSTs to the demo API behind its strict GCRA limiter at that
 * same rate and burst, as `runAccuracy` in bench/scenarios.mjs does for sluice):
 *
 * - `runBottleneckPeer`: Bottleneck 2.19.5 clustered through Redis (`datastore: 'ioredis'`), one
 *   limiter (same `id`) shared by every process. The work is distributed as for the other peer: each
 *   process runs a plain BullMQ Worker on one queue and wraps the HTTP call in `limiter.schedule()`
 *   ("a BullMQ worker + Bottleneck around the HTTP call", the realistic way to make such a job
 *   durable). Configured as Bottleneck's README advises for a steady rate: `minTime: 1000 / rate`
 *   (5 ms at 200/s), `maxConcurrent` left unset. Bottleneck has no burst setting; its reservoir
 *   intervals must be multiples of 5 s when clustered, so they cannot express a burst of 10 at 200/s.
 * - `runBullmqLimiterPeer`: BullMQ's own Worker `limiter: { max: rate, duration: 1000 }` (a limit
 *   per queue, shared by every worker of it), the POST as the job.
 *
 * Each run: FLUSHALL, a fresh strict demo API, the jobs added with `Queue.addBulk` before the worker
 * processes (bench/peer-worker.mjs) are spawned (a backlog meeting a starting fleet), then BullMQ's
 * completed and failed sets polled until they hold every job. A 429 completes its job (counted by
 * the API as rejected, never retried): the point is how many requests each peer gets rejected.
 * The processes are always stopped (SIGTERM, then SIGKILL), also on errors and time-outs.
 *
 * A Bottleneck run that fails (Bottleneck 2.19.5 on Redis 7: docs/limits.md) is returned as data,
 * `{ failed: true, error }`, so that the bench goes on; so is a run in which jobs failed.
 *
 *   node bench/peers.mjs [OPERATIONS]     both peers once on a private redis-server (default 1,000 operations)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { commandStats, redisCpuMs, resetStats, round, subtract, totalCalls } from './redis-stats.mjs';
import { maxInWindow } from './scenarios.mjs';
import { killAllWorkersNow, spawnNode, stopAllWorkers } from './worker-processes.mjs';

const { startDemoApi } = await import(new URL('../dist/src/demo/demo-api.js', import.meta.url).href);

const SCRIPT = fileURLToPath(new URL('./peer-worker.mjs', import.meta.url));
const TIMEOUT_MS = 120_000;
const POLL_MS = 20;

/**
 * Bottleneck's Redis clustering, one limiter shared by `processes` processes.
 * @param {{ root: string, redis: import('ioredis').Redis, redisUrl: string, tmpDir: string }} ctx
 * @param {{ label: string, rate: number, burst: number, operations: number, processes?: number, concurrency?: number }} options
 */
export async function runBottleneckPeer(ctx, { label, rate, burst, operations, processes = 4, concurrency = 50 }) {
  const settings = { bottleneck: { id: `sluice-peer-${label}`, minTime: 1_000 / rate } };
  try {
    return await runPeer(ctx, { mode: 'bottleneck', settings, label, rate, burst, operations, processes, concurrency });
  } catch (error) {
    return { label, operations, processes, concurrency, rate, burst, failed: true, error: error?.message ?? String(error) };
  }
}

/**
 * BullMQ's Worker `limiter` option, `processes` processes on one queue.
 * @param {{ root: string, redis: import('ioredis').Redis, redisUrl: string, tmpDir: string }} ctx
 * @param {{ label: string, rate: number, burst: number, operations: number, processes?: number, concurrency?: number }} options
 */
export async function runBullmqLimiterPeer(ctx, { label, rate, burst, operations, processes = 4, concurrency = 50 }) {
  const settings = { limiter: { max: rate, duration: 1_000 } };
  return runPeer(ctx, { mode: 'bullmq', settings, label, rate, burst, operations, processes, concurrency });
}

async function runPeer(ctx, { mode, settings, label, rate, burst, operations, processes, concurrency }) {
  const { redis } = ctx;
  await redis.flushall();
  const api = await startDemoApi({
    latencyMs: { min: 2, max: 10 },
    failureRate: 0,
    rateLimitRate: 0,
    strictLimit: { requestsPerSecond: rate, burst },
  });
  const name = `bench-peer-${label.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
  const queue = new Queue(name, { connection: redis });
  const workers = [];
  try {
    for (let i = 0; i < operations; i += 500) {
      await queue.addBulk(Array.from({ length: Math.min(500, operations - i) }, (_, j) => ({ name: 'op', data: { i: i + j } })));
    }
    const redisCpuBefore = await redisCpuMs(redis);
    await resetStats(redis);
    const options = JSON.stringify({ url: api.url, concurrency, ...settings });
    for (let i = 0; i < processes; i++) {
      workers.push(spawnNode({ root: ctx.root, redisUrl: ctx.redisUrl, queue: name }, SCRIPT, [mode, options]));
    }
    const spawnedAt = performance.now();
    let polls = 0;
    let cpuAtStart;
    let completed = 0;
    let failed = 0;
    for (;;) {
      polls++;
      [completed, failed] = await Promise.all([redis.zcard(`bull:${name}:completed`), redis.zcard(`bull:${name}:failed`)]);
      if (completed + failed >= operations) break;
      if (cpuAtStart === undefined && api.stats().requests > 0) cpuAtStart = workers.map((worker) => worker.cpuMs() ?? 0);
      const dead = workers.find((worker) => !worker.running());
      if (dead) throw new Error(`${label}: worker ${dead.pid} exited during the run; its output ended with:\n${dead.output()}`);
      if (performance.now() - spawnedAt > TIMEOUT_MS) {
        throw new Error(
          `${label}: not done after ${TIMEOUT_MS / 1_000} s (${completed} completed, ${failed} failed of ${operations}); ` +
            `a worker's output ended with:\n${workers[0]?.output().slice(-2_000)}`,
        );
      }
      await delay(POLL_MS);
    }
    const doneAt = performance.now();
    const cpuAtEnd = workers.map((worker) => worker.cpuMs() ?? 0);
    const { calls } = await commandStats(redis);
    subtract(calls, 'zcard', 2 * polls);
    const redisCpu = (await redisCpuMs(redis)) - redisCpuBefore;
    const failedReasons = failed ? (await queue.getFailed(0, 4)).map((job) => job.failedReason) : [];
    const ownErrors = workers.flatMap((worker) => bottleneckErrors(worker.output()));

    const arrivals = api.arrivals();
    const stats = api.stats();
    const span = arrivals.at(-1) - arrivals[0];
    const achieved = ((operations - 1) * 1_000) / span;
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    const cpu = sum(cpuAtEnd) - sum(cpuAtStart ?? []);
    const result = {
      label,
      operations,
      processes,
      concurrency,
      rate,
      burst,
      settings,
      requests: stats.requests,
      rejected: stats.limited,
      achievedPerSecond: round(achieved, 2),
      achievedRatio: round(achieved / rate, 3),
      maxStartsIn1s: maxInWindow(arrivals, 1_000),
      maxStartsIn100ms: maxInWindow(arrivals, 100),
      /** Worker CPU from the first request to the end (start-up left out). */
      workerCpuUsPerOp: round((cpu * 1_000) / operations, 0),
      runMs: round(doneAt - arrivals[0], 0),
      /** Jobs that failed (a network error, a non-2xx answer other than 429, or the rate limiter's own error). */
      jobErrors: failed,
      redis: {
        /** Every command of the workers over the run (the bench's polls left out); scripts' inner commands included. */
        callsPerOp: round(totalCalls(calls) / operations, 2),
        evalshaPerOp: round(((calls.evalsha ?? 0) + (calls.eval ?? 0)) / operations, 2),
        cpuUsPerOp: round((redisCpu * 1_000) / operations, 1),
      },
    };
    if (failed || ownErrors.length) {
      const samples = [...new Set([...failedReasons, ...ownErrors])].slice(0, 5);
      return { ...result, failed: true, error: `${failed} of ${operations} jobs failed; errors: ${samples.join(' | ')}` };
    }
    return result;
  } finally {
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    await queue.close();
    await api.close();
  }
}

/** The errors that Bottleneck emitted on its own, as bench/peer-worker.mjs prints them. */
function bottleneckErrors(output) {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{"bottleneckError"'))
    .map((line) => {
      try {
        return JSON.parse(line).bottleneckError;
      } catch {
        return line;
      }
    });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { startRedisServer } = await import(new URL('../dist/src/support/redis-server.js', import.meta.url).href);
  const { createRedisConnection, closeRedis } = await import(new URL('../dist/src/redis/connection.js', import.meta.url).href);
  const operations = Number(process.argv[2] ?? 1_000);
  const shape = { rate: 200, burst: 10, operations, processes: 4, concurrency: 50 };
  let redisServer;
  let redis;
  let tmpDir;
  let cleaning;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await stopAllWorkers();
      if (redis) await closeRedis(redis);
      if (redisServer) await redisServer.stop();
      if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  process.once('exit', killAllWorkersNow);
  try {
    tmpDir = await mkdtemp(join(tmpdir(), 'sluice-peers-'));
    redisServer = await startRedisServer();
    if (redisServer.port === 6379) throw new Error('redis-server got port 6379; refusing to use it');
    redis = createRedisConnection(redisServer.url, { name: 'sluice:bench-peers' });
    const ctx = { root: fileURLToPath(new URL('..', import.meta.url)), redis, redisUrl: redisServer.url, tmpDir };
    console.log(`peers on the binding shape: ${JSON.stringify(shape)}, redis-server ${redisServer.url}`);
    const results = [
      await runBottleneckPeer(ctx, { label: 'bottleneck', ...shape }),
      await runBullmqLimiterPeer(ctx, { label: 'bullmq-limiter', ...shape }),
    ];
    console.log(JSON.stringify(results, null, 2));
  } finally {
    await cleanup();
  }
}
