/**
 * `npm run bench` — sluice side by side with its ceilings, in one run: undici alone (HTTP), a minimal
 * BullMQ worker (queue), raw `addBulk` (enqueue); then sluice without a binding limit (1 and 2
 * processes), under a binding limit (workers running, and a cold start), fairness between a slow and
 * an unlimited key, many limited keys beside an unlimited backlog, a binding limit while a worker
 * stalls, the peers (Bottleneck, BullMQ's limiter) on the binding shape, enqueue of a JSONL file,
 * latency on an idle system, worker memory, Redis commands per operation, and a Redis Cluster
 * beside the single redis-server.
 *
 *   node bench/run.mjs [--quick] [--only PART[,PART…]] [--cpu-prof] [--worker-logs LEVEL]
 *
 * PART: throughput, limits, fairness, manykeys, stall, peers, enqueue, latency, memory, cluster. limits,
 * stall and peers compare worker CPU per operation with sluice's unthrottled run (throughput's
 * `sluiceNoLimit`); without throughput, that run is made for them. peers needs bench/peers.mjs
 * (skipped, and said so, when it cannot be loaded). --cpu-prof writes a .cpuprofile per worker
 * process, --worker-logs each worker's log (at LEVEL, e.g. debug) to bench/results/, for finding
 * out where the time goes.
 *
 * It imports the BUILT library (`npm run bench` builds first). It starts its own redis-server and
 * targets, spawns real worker processes, and stops every one of them when it ends, also on errors
 * and on Ctrl-C. Results: a table on stdout, bench/results/<timestamp>.json, and BENCHMARKS.md
 * (rewritten only by a complete run, labelled with its mode).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { enqueueFile, runEnqueue, runHttpCeiling, runPacedHttpCeiling, runQueueCeiling } from './ceilings.mjs';
import { startBenchCluster } from './cluster.mjs';
import { describeMachine } from './machine-load.mjs';
import { runReplay } from './replay.mjs';
import { markdown, machineText, soakSectionOf, summarise, textTable, withSoakSection } from './report.mjs';
import { runAccuracy, runFairness, runLatency, runManyKeys, runPacedNoLimit, runQueuedMemory, runThroughput } from './scenarios.mjs';
import { killAllWorkersNow, stopAllWorkers } from './worker-processes.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { startRedisServer } = await import(new URL('../dist/src/support/redis-server.js', import.meta.url).href);
const { createRedisConnection, closeRedis } = await import(new URL('../dist/src/redis/connection.js', import.meta.url).href);

const PARTS = ['throughput', 'limits', 'fairness', 'manykeys', 'stall', 'peers', 'enqueue', 'replay', 'latency', 'memory', 'cluster'];
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'worker-logs': { type: 'string' },
  },
});
const only = flags.only?.split(',');
const unknown = only?.filter((part) => !PARTS.includes(part)) ?? [];
if (unknown.length) {
  console.error(`--only ${flags.only}: expected one or more of ${PARTS.join(', ')}`);
  process.exit(2);
}
const runs = (part) => only === undefined || only.includes(part);

const quick = flags.quick;
const params = {
  repeats: quick ? 1 : 3,
  // A scenario measured while other software used more than this many cores is run again (up to
  // `attempts` times in all; the least disturbed attempt is kept, every attempt is recorded).
  quietLoadCores: 0.25,
  attempts: quick ? 2 : 3,
  throughputOps: quick ? 5_000 : 20_000,
  concurrency: 100,
  /** Sluice's limit when it must not bind: far above anything a worker can reach. */
  notBinding: { requestsPerSecond: 1_000_000, burst: 1_000 },
  binding: { rate: 200, burst: 10, processes: 4, concurrency: 50, operations: quick ? 1_000 : 3_000 },
  /** The binding shape while the first worker process is frozen (SIGSTOP) for stopMs every everyMs. */
  stall: { everyMs: 3_000, stopMs: 300, firstMs: 1_000 },
  /** Limit keys tenant:0 … each at rate/s, opsPerKey each, spread through an unlimited backlog, prefilled. */
  manyKeys: {
    keys: quick ? 100 : 200,
    opsPerKey: 10,
    rate: 2,
    burst: 2,
    backlogOps: quick ? 5_000 : 10_000,
    processes: 2,
    concurrency: 100,
    prefilled: true,
  },
  accuracy50: { rate: 50, burst: 5, processes: 4, concurrency: 50, operations: quick ? 500 : 1_500, coldOperations: quick ? 250 : 500 },
  fairness: { fastOps: quick ? 5_000 : 20_000, slowOps: 200 },
  enqueueLines: quick ? 100_000 : 1_000_000,
  /** Dead letters of one batch and one limit key replayed by `sluice dlq replay`, as single jobs and in lanes. */
  replayDeadLetters: quick ? 2_000 : 10_000,
  latency: { operations: quick ? 200 : 500, gapMs: 10 },
  memory: { operations: quick ? 10_000 : 30_000, concurrency: 500, bodyBytes: 1_024 },
  /** Operations enqueued (no worker) to measure Redis memory per queued operation, as single jobs and in lanes. */
  queuedOps: quick ? 20_000 : 100_000,
  /**
   * The not-binding shape of (3) on a loopback Redis Cluster and on the single redis-server, back to
   * back: one queue (on a master other than the limiter's) with `processes` workers, then three
   * queues on three masters with one worker each.
   */
  cluster: { masters: 3, replicasPerMaster: 1, operations: quick ? 3_000 : 10_000, processes: 2 },
};

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/:/g, '-');
const resultsDir = join(root, 'bench', 'results');
const machine = describeMachine();

const results = { startedAt: startedAt.toISOString(), mode: flags.quick ? 'quick' : 'default', machine, params };
/** What every scenario needs: Redis, the temporary directory, the profiling options. */
let context;
let redisServer;
let redis;
let cluster;
let tmpDir;
let cleaning;
let interrupted = false;
async function cleanup() {
  cleaning ??= (async () => {
    await stopAllWorkers();
    if (cluster) await cluster.close();
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
  const ctx = (context = {
    root,
    redis,
    redisUrl: redisServer.url,
    tmpDir,
    cpuProfDir: flags['cpu-prof'] ? join(resultsDir, `cpu-${stamp}`) : undefined,
    logDir: flags['worker-logs'] ? join(resultsDir, `logs-${stamp}`) : undefined,
    logLevel: flags['worker-logs'],
  });

  const R = (results.runs = {});
  const add = (name, run) => (R[name] ??= []).push(run);
  results.discarded = [];
  // Loaded only when asked for, and optional: the bench runs without it.
  const peers = runs('peers') ? await loadPeers() : undefined;
  for (let r = 1; r <= params.repeats; r++) {
    if (!runs('throughput') && (runs('limits') || runs('stall') || peers)) {
      // The reference for worker CPU per operation under a binding limit (cpuRatio).
      const [noLimit] = await quietly(async () => [await throughput(`sluice-nolimit-${r}`, 1, undefined)]);
      add('sluiceNoLimit', noLimit);
    }
    if (runs('throughput')) {
      const [http] = await quietly(async () => {
        const run = await runHttpCeiling(ctx, { label: `http-${r}`, operations: params.throughputOps, concurrency: params.concurrency });
        log(`${run.label}: ${run.jobsPerSecond} requests/s, other load ${run.otherLoadCores} cores`);
        return [run];
      });
      add('http', http);
      for (const processes of [1, 2]) {
        const [queue, sluice, lanes] = await quietly(async () => {
          const q = await runQueueCeiling(ctx, {
            label: `queue${processes}-${r}`,
            operations: params.throughputOps,
            processes,
            concurrency: params.concurrency,
          });
          log(
            `${q.label}: ${q.jobsPerSecond} jobs/s, ${q.redis.callsPerOp} Redis commands/op, worker CPU ${q.workerCpuUsPerOp} µs/op, peak RSS ${q.workerPeakRssMb} MB, other load ${q.otherLoadCores} cores`,
          );
          const s = await throughput(`sluice${processes}-${r}`, processes, params.notBinding);
          const l = await throughput(`lanes${processes}-${r}`, processes, params.notBinding, { lanes: true });
          return [q, s, l];
        });
        add(`queue${processes}`, queue);
        add(`sluice${processes}`, sluice);
        add(`lanes${processes}`, lanes);
      }
      const [noLimit] = await quietly(async () => [await throughput(`sluice-nolimit-${r}`, 1, undefined)]);
      add('sluiceNoLimit', noLimit);
    }
    if (runs('limits')) {
      const [binding] = await quietly(async () => [await accuracy(`binding-${r}`, params.binding)]);
      add('binding', binding);
      const [paced] = await quietly(async () => [await pacedNoLimit(`paced-nolimit-${r}`, params.binding)]);
      add('pacedNoLimit', paced);
      const [cold] = await quietly(async () => [await accuracy(`binding-cold-${r}`, { ...params.binding, prefilled: true })]);
      add('bindingCold', cold);
      const [bindingLanes] = await quietly(async () => [await accuracy(`binding-lanes-${r}`, { ...params.binding, lanes: true })]);
      add('bindingLanes', bindingLanes);
      // What one request costs a process at the binding shape's rate per process, with no queue at all.
      const { rate, processes, operations } = params.binding;
      const [pacedHttp] = await quietly(async () => {
        const run = await runPacedHttpCeiling(ctx, {
          label: `paced-http-${r}`,
          operations: Math.round(operations / processes),
          rate: rate / processes,
        });
        log(`${run.label}: undici alone at ${run.rate}/s: ${run.cpuUsPerOp} µs of CPU per request, other load ${run.otherLoadCores} cores`);
        return [run];
      });
      add('pacedHttp', pacedHttp);
      // Extras, kept from the limits issue (default mode only, for time): the 50/s shape, warm and cold.
      if (!quick) {
        const { coldOperations, ...shape50 } = params.accuracy50;
        add('accuracy50', await accuracy(`accuracy50-${r}`, shape50));
        add('cold50', await accuracy(`cold50-${r}`, { ...shape50, operations: coldOperations, prefilled: true }));
      }
    }
    if (runs('fairness')) {
      const [alone, mixed] = await quietly(async () => {
        const a = await runFairness(ctx, { label: `fair-alone-${r}`, fastOps: params.fairness.fastOps, slowOps: 0 });
        const m = await runFairness(ctx, { label: `fair-mixed-${r}`, ...params.fairness });
        for (const run of [a, m])
          log(
            `${run.label}: unlimited key ${run.fastPerSecond}/s, slow key ${run.slowRequests} requests, other load ${run.otherLoadCores} cores${problems(run)}`,
          );
        return [a, m];
      });
      add('fairAlone', alone);
      add('fairMixed', mixed);
    }
    if (runs('manykeys')) {
      const [alone, mixed] = await quietly(async () => {
        const a = await runManyKeys(ctx, { label: `manykeys-alone-${r}`, ...params.manyKeys, keys: 0 });
        const m = await runManyKeys(ctx, { label: `manykeys-${r}`, ...params.manyKeys });
        for (const run of [a, m]) {
          const keys = run.keys
            ? `, ${run.keys} keys at ${run.rate}/s: median ${run.keyRatioMedian}, worst ${run.keyRatioWorst} (${run.worstKey}) of the limit, ${run.rejected} rejected, ${run.realFetchesPerOp} fetches/op`
            : '';
          log(`${run.label}: unlimited key ${run.unlimitedPerSecond}/s${keys}, other load ${run.otherLoadCores} cores${problems(run)}`);
          assertClean(run);
        }
        return [a, m];
      });
      add('manyKeysAlone', alone);
      add('manyKeys', mixed);
    }
    if (runs('stall')) {
      const [stall] = await quietly(async () => [await accuracy(`stall-${r}`, { ...params.binding, stall: params.stall })]);
      add('stall', stall);
    }
    if (peers) {
      for (const [name, fn, slug] of [
        ['peerBottleneck', peers.runBottleneckPeer, 'bottleneck'],
        ['peerBullmqLimiter', peers.runBullmqLimiterPeer, 'bullmq-limiter'],
      ]) {
        const label = `peer-${slug}-${r}`;
        const run = await Promise.resolve()
          .then(() => fn(ctx, { label, ...params.binding }))
          .catch((error) => ({ label, failed: true, error: error instanceof Error ? error.message : String(error) }));
        add(name, run);
        log(
          run.failed
            ? `${label}: failed: ${run.error}`
            : `${label}: ${run.achievedPerSecond}/s (${run.achievedRatio} of the limit), max ${run.maxStartsIn1s} starts in 1 s, ${run.rejected} rejected, worker CPU ${run.workerCpuUsPerOp} µs/op`,
        );
      }
    }
    if (runs('enqueue')) {
      ctx.enqueueFile ??= await enqueueFile(ctx, params.enqueueLines);
      ctx.enqueueConfig ??= await writeConfig(ctx, 'enqueue', {
        targets: { fast: { baseUrl: 'http://127.0.0.1:9', allowPrivateAddresses: true } },
        limits: {},
      });
      for (const [name, via, lanes] of [
        ['enqueueRaw', 'addbulk', false],
        ['enqueueSluice', 'sluice', false],
        ['enqueueLanes', 'sluice', true],
        // Where an enqueue's time goes: its first pass (every line checked before anything is written).
        ['enqueueCheck', 'check', false],
      ]) {
        const run = await runEnqueue(ctx, {
          label: `enqueue-${lanes ? 'lanes' : via}-${r}`,
          file: ctx.enqueueFile,
          lines: params.enqueueLines,
          via,
          configPath: ctx.enqueueConfig,
          lanes,
        });
        add(name, run);
        log(`${run.label}: ${run.opsPerSecond} ops/s, peak RSS ${run.peakRssMb} MB`);
      }
    }
    if (runs('replay')) {
      for (const lanes of [false, true]) {
        const run = await runReplay(ctx, {
          label: `replay-${lanes ? 'lanes' : 'jobs'}-${r}`,
          deadLetters: params.replayDeadLetters,
          lanes,
        });
        add(lanes ? 'replayLanes' : 'replayJobs', run);
        log(
          `${run.label}: ${run.deadLetters} dead letters replayed in ${run.ms} ms (${run.perSecond}/s) as ${run.jobs} jobs, ${run.redisCommandsPerOp} Redis commands and ${run.redisCpuUsPerOp} µs of Redis CPU each`,
        );
      }
    }
    if (runs('latency')) {
      const run = await runLatency(ctx, { label: `latency-${r}`, ...params.latency });
      add('latency', run);
      log(`${run.label}: p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, max ${run.maxMs} ms`);
    }
    if (runs('memory')) {
      for (const lanes of [false, true]) {
        const run = await runQueuedMemory(ctx, { label: `queued-${lanes ? 'lanes' : 'jobs'}-${r}`, operations: params.queuedOps, lanes });
        add(lanes ? 'queuedLanes' : 'queuedJobs', run);
        log(`${run.label}: ${run.bytesPerOp} bytes of Redis memory per queued operation (${run.operations} enqueued, no worker)`);
      }
      const { operations, concurrency, bodyBytes } = params.memory;
      const [queue, run] = await quietly(async () => {
        const q = await runQueueCeiling(ctx, { label: `memory-queue-${r}`, operations, processes: 1, concurrency, bodyBytes });
        log(`${q.label}: ${q.jobsPerSecond} jobs/s, peak RSS ${q.workerPeakRssMb} MB, other load ${q.otherLoadCores} cores`);
        return [q, await throughput(`memory-${r}`, 1, params.notBinding, { operations, concurrency, bodyBytes })];
      });
      add('memoryQueue', queue);
      add('memory', run);
    }
  }
  // After the other parts, so that the cluster's six idle redis-servers run during none of them.
  if (runs('cluster')) {
    cluster = await startBenchCluster(params.cluster);
    log(`Redis Cluster: ${cluster.nodes.length} nodes on ports ${cluster.nodes.map((node) => `${node.port} (${node.role})`).join(', ')}`);
    const { processes } = params.cluster;
    for (let r = 1; r <= params.repeats; r++) {
      const oneQueue = await cluster.queuesOnMasters(`bench-cluster-one-${r}`, 1, [cluster.limitsMaster]);
      // The same queue, its operations' limit keys in two groups on the two other masters: the
      // limiter's work split by group (beside `one`, where one key's master does all of it).
      const groups = await cluster.groupsOnMasters(`bench${r}grp`, 2, [await cluster.queuePort(oneQueue[0])]);
      const [single, one, grouped] = await quietly(async () => [
        await clusterThroughput(`cluster-single-${r}`, { processes }),
        await clusterThroughput(`cluster-one-${r}`, { processes, queues: oneQueue, onCluster: true }),
        await clusterThroughput(`cluster-groups-${r}`, { processes, queues: oneQueue, limitKeys: groups, onCluster: true }),
      ]);
      add('clusterSingle', single);
      add('clusterOne', one);
      add('clusterGroups', grouped);
      // One queue over three shards, one on each master (S = 3): the issue's layout; and the same
      // three shards on the single server (the shards' own cost, without a cluster).
      const [singleSharded, sharded] = await quietly(async () => [
        await clusterThroughput(`cluster-single-sharded-${r}`, { processes, shards: 3 }),
        await clusterThroughput(`cluster-sharded-${r}`, {
          processes,
          queues: [await cluster.shardedQueueOnMasters(`bench-cluster-sharded-${r}`, 3)],
          shards: 3,
          onCluster: true,
        }),
      ]);
      add('clusterSingleSharded', singleSharded);
      add('clusterSharded', sharded);
    }
    await cluster.close();
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
  if (only === undefined) {
    // The soak section (`npm run soak`) is not the bench's to rewrite: carried over as it was.
    const benchmarksPath = join(root, 'BENCHMARKS.md');
    const soak = soakSectionOf(await readFile(benchmarksPath, 'utf8').catch(() => ''));
    await writeFile(benchmarksPath, withSoakSection(markdown(results, figures, resultFile), soak));
    console.log(`Wrote BENCHMARKS.md${soak ? ' (soak section kept)' : ''}`);
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

/** Sluice at `processes` × params.concurrency against the fast target, logged and checked. */
async function throughput(
  label,
  processes,
  limits,
  {
    operations = params.throughputOps,
    concurrency = params.concurrency,
    bodyBytes,
    lanes = false,
    queues,
    shards,
    limitKeys,
    on = context,
  } = {},
) {
  const run = await runThroughput(on, { label, limits, operations, processes, concurrency, bodyBytes, lanes, queues, shards, limitKeys });
  log(
    `${label}: ${run.jobsPerSecond} jobs/s, ${run.redis.callsPerOp} Redis commands/op (worker ${run.redis.workerCallsPerOp}), worker CPU ${run.workerCpuUsPerOp} µs/op, peak RSS ${run.workerPeakRssMb} MB, other load ${run.otherLoadCores} cores${problems(run)}`,
  );
  assertClean(run);
  return run;
}

/** The not-binding shape with params.cluster's operations, on the single redis-server or (onCluster) the cluster. */
async function clusterThroughput(label, { processes, queues, shards, limitKeys, onCluster = false }) {
  const options = { operations: params.cluster.operations, queues, shards, limitKeys };
  if (!onCluster) return throughput(label, processes, params.notBinding, options);
  const on = { ...context, redis: cluster.redis, redisUrl: cluster.url, nodes: cluster.nodes };
  const run = await cluster.labelMasters(await throughput(label, processes, params.notBinding, { ...options, on }));
  const node = (n) => `${n.port}${n.serves ? ` ${n.serves}` : ''} ${n.cpuUsPerOp}`;
  log(
    `${label}: Redis CPU µs/op by master: ${run.redis.nodes
      .filter((n) => n.role === 'master')
      .map(node)
      .join(', ')}; replicas ${run.redis.replicaCpuUsPerOp} in all`,
  );
  return run;
}

/** bench/peers.mjs, or undefined (said in the results and the log) when it cannot be loaded. */
async function loadPeers() {
  try {
    const peers = await import('./peers.mjs');
    if (typeof peers.runBottleneckPeer !== 'function' || typeof peers.runBullmqLimiterPeer !== 'function') {
      throw new Error('it does not export runBottleneckPeer and runBullmqLimiterPeer');
    }
    return peers;
  } catch (error) {
    results.peersUnavailable = `bench/peers.mjs: ${error instanceof Error ? error.message : String(error)}`;
    log(`peers skipped: ${results.peersUnavailable}`);
    return undefined;
  }
}

async function pacedNoLimit(label, { rate, operations, processes, concurrency }) {
  const run = await runPacedNoLimit(context, { label, rate, operations, processes, concurrency });
  log(
    `${label}: ${run.achievedPerSecond}/s arriving at ${rate}/s with no limit, ${run.redis.workerCallsPerOp} Redis commands/op, worker CPU ${run.workerCpuUsPerOp} µs/op, other load ${run.otherLoadCores} cores${problems(run)}`,
  );
  assertClean(run);
  return run;
}

async function accuracy(label, options) {
  const run = await runAccuracy(context, { label, ...options });
  logAccuracy(run);
  return run;
}

/**
 * Runs `measure` (a group of runs measured back to back) again while other software used more than
 * params.quietLoadCores during it, up to params.attempts times; keeps the least disturbed group.
 */
async function quietly(measure) {
  let kept;
  for (let attempt = 1; attempt <= params.attempts; attempt++) {
    const group = await measure();
    const load = Math.max(...group.map((run) => run.otherLoadCores ?? 0));
    if (kept) results.discarded.push(...(load < kept.load ? kept.group : group));
    if (!kept || load < kept.load) kept = { group, load };
    if (kept.load <= params.quietLoadCores) break;
    if (attempt < params.attempts)
      log(`other software used up to ${load} cores during ${group.map((run) => run.label).join(', ')}: running again`);
  }
  return kept.group;
}

async function writeConfig(context, name, config) {
  const path = join(context.tmpDir, `${name}.json`);
  await writeFile(path, JSON.stringify(config));
  return path;
}

function logAccuracy(run) {
  const stalls = run.stall ? `, ${run.stall.stalls} stalls of worker 1 (${run.stall.stallMs.join(', ')} ms)` : '';
  log(
    `${run.label}: ${run.achievedPerSecond}/s (${run.achievedRatio} of the limit), max ${run.maxStartsIn1s} starts in 1 s, ${run.rejected} rejected, ${run.realFetchesPerOp} fetches/op, ${run.redis.limiterScriptCallsPerOp} limiter calls/op, ${run.redis.workerCallsPerOp} Redis commands/op, worker CPU ${run.workerCpuUsPerOp} µs/op${stalls}, other load ${run.otherLoadCores} cores${problems(run)}`,
  );
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
