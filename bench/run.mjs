/**
 * `npm run bench` — the limits benchmarks: throughput with a limit that does not bind vs none,
 * accuracy under a binding limit against a strict rate-limited API, and the Redis cost per job.
 *
 *   node bench/run.mjs [--quick] [--only throughput|accuracy] [--cpu-prof] [--worker-logs LEVEL]
 *
 * --cpu-prof writes a .cpuprofile per worker process, --worker-logs each worker's log (at LEVEL,
 * e.g. debug) to bench/results/, for finding out where the time goes.
 *
 * It imports the BUILT library (`npm run bench` builds first). It starts its own redis-server and
 * targets, spawns real worker processes, and stops every one of them when it ends, also on errors
 * and on Ctrl-C. Results: a table on stdout, bench/results/<timestamp>.json, and BENCHMARKS.md
 * (rewritten only by a complete run).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { markdown, machineText, summarise, textTable } from './report.mjs';
import { runAccuracy, runThroughput } from './scenarios.mjs';
import { killAllWorkersNow, stopAllWorkers } from './worker-processes.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { startRedisServer } = await import(new URL('../dist/src/support/redis-server.js', import.meta.url).href);
const { createRedisConnection, closeRedis } = await import(new URL('../dist/src/queue/redis-connection.js', import.meta.url).href);

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'worker-logs': { type: 'string' },
  },
});
if (flags.only !== undefined && !['throughput', 'accuracy'].includes(flags.only)) {
  console.error(`--only ${flags.only}: expected throughput or accuracy`);
  process.exit(2);
}

const quick = flags.quick;
const params = {
  repeats: quick ? 1 : 3,
  // Interleaved so that drift (thermal, caches, other load) hits A and B alike.
  order: quick ? ['A', 'B'] : ['A', 'B', 'B', 'A', 'A', 'B'],
  // A throughput pair measured while other software used more than this many cores is run again
  // (up to `pairAttempts` times in all; the least disturbed attempt is kept, every attempt is recorded).
  quietLoadCores: 0.25,
  pairAttempts: quick ? 2 : 3,
  throughputOps: quick ? 5_000 : 20_000,
  throughputConcurrency: 100,
  accuracyOps: quick ? 500 : 1_500,
  accuracyColdOps: quick ? 250 : 500,
  accuracyRate: 50,
  accuracyBurst: 5,
  accuracyProcesses: 4,
  accuracyConcurrency: 50,
  /** B's limit: far above anything one worker can reach. */
  notBinding: { requestsPerSecond: 1_000_000, burst: 1_000 },
};

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/:/g, '-');
const resultsDir = join(root, 'bench', 'results');
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
  memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
  platform: `${platform()} ${release()}`,
  node: process.version,
  redis: redisVersion(),
};

const results = { startedAt: startedAt.toISOString(), mode: flags.quick ? 'quick' : 'default', machine, params };
let redisServer;
let redis;
let tmpDir;
let cleaning;
let interrupted = false;
async function cleanup() {
  cleaning ??= (async () => {
    await stopAllWorkers();
    if (redis) await closeRedis(redis);
    if (redisServer) await redisServer.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping workers, targets and redis-server…`);
    cleanup().finally(() => process.exit(130));
  });
}
process.once('exit', killAllWorkersNow);

const log = (message) => console.log(`[${((Date.now() - startedAt.getTime()) / 1000).toFixed(1).padStart(6)} s] ${message}`);

try {
  console.log(`sluice bench (${quick ? 'quick' : 'default'} mode) on ${machineText(machine)}\n`);
  tmpDir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  redisServer = await startRedisServer();
  redis = createRedisConnection(redisServer.url, { name: 'sluice:bench' });
  const ctx = {
    root,
    redis,
    redisUrl: redisServer.url,
    tmpDir,
    cpuProfDir: flags['cpu-prof'] ? join(resultsDir, `cpu-${stamp}`) : undefined,
    logDir: flags['worker-logs'] ? join(resultsDir, `logs-${stamp}`) : undefined,
    logLevel: flags['worker-logs'],
  };

  if (flags.only !== 'accuracy') {
    results.throughput = [];
    results.throughputDiscarded = [];
    const seen = { A: 0, B: 0 };
    for (let p = 0; p < params.order.length; p += 2) {
      const variants = params.order.slice(p, p + 2);
      const labels = variants.map((variant) => `throughput-${variant}${++seen[variant]}`);
      let kept;
      for (let attempt = 1; attempt <= params.pairAttempts; attempt++) {
        const pair = [];
        for (const [i, variant] of variants.entries()) {
          const label = attempt === 1 ? labels[i] : `${labels[i]}-try${attempt}`;
          const run = await runThroughput(ctx, { label, limits: variant === 'B' ? params.notBinding : undefined, operations: params.throughputOps, concurrency: params.throughputConcurrency });
          log(`${label}: ${run.jobsPerSecond} jobs/s, ${run.redis.callsPerOp} Redis commands/op (worker ${run.redis.workerCallsPerOp}), worker CPU ${run.workerCpuUsPerOp} µs/op, other load ${run.otherLoadCores} cores${problems(run)}`);
          assertClean(run);
          pair.push({ variant, attempt, ...run });
        }
        const load = Math.max(...pair.map((run) => run.otherLoadCores ?? 0));
        if (kept) results.throughputDiscarded.push(...(load < kept.load ? kept.pair : pair));
        if (!kept || load < kept.load) kept = { pair, load };
        if (kept.load <= params.quietLoadCores) break;
        if (attempt < params.pairAttempts) log(`other software used up to ${load} cores during this pair: running it again`);
      }
      results.throughput.push(...kept.pair);
    }
  }

  if (flags.only !== 'throughput') {
    results.accuracy = [];
    results.accuracyColdStart = [];
    const shape = { rate: params.accuracyRate, burst: params.accuracyBurst, processes: params.accuracyProcesses, concurrency: params.accuracyConcurrency };
    for (let i = 1; i <= params.repeats; i++) {
      const run = await runAccuracy(ctx, { label: `accuracy-${i}`, operations: params.accuracyOps, ...shape });
      results.accuracy.push(run);
      logAccuracy(run);
      const cold = await runAccuracy(ctx, { label: `accuracy-cold-${i}`, operations: params.accuracyColdOps, prefilled: true, ...shape });
      results.accuracyColdStart.push(cold);
      logAccuracy(cold);
    }
  }

  results.durationMs = Date.now() - startedAt.getTime();
  const figures = summarise(results);
  results.figures = figures;
  await mkdir(resultsDir, { recursive: true });
  const resultFile = `${stamp}.json`;
  await writeFile(join(resultsDir, resultFile), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${textTable(results, figures)}\n`);
  console.log(`Machine: ${machineText(machine)}`);
  console.log(`Results: bench/results/${resultFile}`);
  if (flags.only === undefined) {
    await writeFile(join(root, 'BENCHMARKS.md'), markdown(results, figures, resultFile));
    console.log('Wrote BENCHMARKS.md');
  } else {
    console.log('BENCHMARKS.md left as it was (--only runs part of the bench)');
  }
} catch (error) {
  if (!interrupted) console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
  // Keep what was measured before the failure.
  results.error = error instanceof Error ? error.message : String(error);
  await mkdir(resultsDir, { recursive: true })
    .then(() => writeFile(join(resultsDir, `${stamp}-failed.json`), `${JSON.stringify(results, null, 2)}\n`))
    .then(() => console.error(`Partial results: bench/results/${stamp}-failed.json`))
    .catch(() => undefined);
} finally {
  await cleanup();
}

function logAccuracy(run) {
  log(`${run.label}: ${run.achievedPerSecond}/s (${run.achievedRatio} of the limit), max ${run.maxStartsIn1s} starts in 1 s, ${run.rejected} rejected, ${run.redis.workerCallsPerOp} Redis commands/op, other load ${run.otherLoadCores} cores${problems(run)}`);
  assertClean(run);
}

function problems(run) {
  return run.workerProblemCount ? `; ${run.workerProblemCount} warn/error log lines, first: ${JSON.stringify(run.workerProblems[0])}` : '';
}

/** A run whose operations did not all succeed measures something else: stop. */
function assertClean(run) {
  if (run.succeeded !== run.operations || run.deadLettered !== 0) {
    throw new Error(`${run.label}: ${run.succeeded} of ${run.operations} succeeded, ${run.deadLettered} dead-lettered`);
  }
}

function redisVersion() {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'redis-server not found';
  }
}
