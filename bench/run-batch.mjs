/**
 * One batch through real worker processes, measured: a fresh Redis database (FLUSHALL), a fresh
 * queue, the batch enqueued with `createProducer`, the workers spawned, the batch counters polled
 * (`createBatches(...).status`) until nothing is pending. Around it: Redis command counts and CPU,
 * the workers' CPU, how late the bench's own event loop ran (it hosts the targets), and how busy
 * the machine was with other software. The workers are stopped before it returns, also on errors.
 *
 * On a Redis Cluster (`ctx.nodes`: every node with its role and a plain connection of its own) the
 * masters are flushed, and INFO is read from each node: commands summed over the masters, Redis CPU
 * over the masters (replicas apart), and each node's own figures in `redis.nodes`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { machineBusyMs, ownCpuMs } from './machine-load.mjs';
import { commandStatsOf, perOperation, redisCpuMsOf, resetStatsOf, round, subtract, sumStats, totalCalls } from './redis-stats.mjs';
import { spawnSluice, spawnWorker } from './worker-processes.mjs';

const lib = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const { createProducer } = await lib('queue/producer.js');
const { createBatches } = await lib('outcomes/batches.js');
const { PREFIX, WORKER_SNAPSHOTS_KEY, bullQueueName, limiterKeys } = await lib('redis/keys.js');
const { setShardCount, shardNames } = await lib('queue/shards.js');

/**
 * `prefilled`: the operations are enqueued with `createProducer` (their Redis cost counted apart)
 * before the workers are spawned: a backlog meeting a fleet that is still starting. Otherwise the
 * workers are spawned and registered with BullMQ (idle) when the batch is enqueued, as in a running
 * deployment; the enqueue then overlaps the run and is counted with it. It runs in a `sluice
 * enqueue` process then, not here: this process hosts the target, whose arrival times must not be
 * delayed by the enqueue's CPU work. `started()`: whether the target has seen a request
 * (the workers' CPU is sampled then, so that their start-up is left out of CPU per job). `done()`:
 * when the run is over, if not when nothing is pending (fairness stops with the slow key's backlog).
 * `duringRun(workers)`: started once the workers are spawned (and registered, when not prefilled),
 * just before the batch is enqueued or polled; returns `{ stop() }`, called when the run is over and
 * always on the way out, whose result is kept as `summary.during` (the stall loop of worker-processes.mjs).
 *
 * At the end, after the Redis command counts are read (so it is not counted in them) and before the
 * workers are stopped, one script sums BullMQ's per-job fetch counter (`ats` of each job hash, +1 on
 * every move to active) over the completed and failed jobs: `redis.realFetchesPerOp`. Not with
 * `done()`, whose runs end with jobs left.
 *
 * `queues`: the queue names, when not the one named after the label; with several (prefilled only),
 * operation i goes to queue i mod their number, and each queue gets `processes` workers of its own.
 * `shards`: each queue is spread over that many shards (`sluice shards`) before anything is enqueued.
 */
export async function runBatch(
  ctx,
  {
    label,
    config,
    op,
    operations,
    processes,
    concurrency,
    pollMs,
    prefilled,
    started,
    done,
    duringRun,
    pacedRate,
    lanes = false,
    timeoutMs = 300_000,
    queues,
    shards = 1,
  },
) {
  const { redis, redisUrl } = ctx;
  const nodes = ctx.nodes ?? [{ role: 'master', redis }];
  const masters = nodes.filter((node) => node.role === 'master');
  await Promise.all(masters.map((node) => node.redis.flushall()));
  const queueNames = queues ?? [`bench-${label.replace(/[^A-Za-z0-9_.-]/g, '-')}`];
  if (queueNames.length > 1 && !prefilled) throw new Error(`${label}: several queues are only measured prefilled`);
  const queue = queueNames[0];
  // Every BullMQ queue of the run: each queue's shards.
  const physical = queueNames.flatMap((name) => shardNames(name, shards));
  if (shards > 1) for (const name of queueNames) await setShardCount(redis, name, shards);
  const configPath = join(ctx.tmpDir, `${queue}.json`);
  await writeFile(configPath, JSON.stringify(config));
  const batchId = `bench-${Date.now()}`;
  const enqueue = async () => {
    for (const [k, name] of queueNames.entries()) {
      const producer = createProducer({ connection: redisUrl, queue: name, config, lanes });
      try {
        const expected = Math.ceil((operations - k) / queueNames.length);
        const ops = (function* () {
          for (let i = k; i < operations; i += queueNames.length) yield op(i);
        })();
        const summary = await producer.enqueueMany(ops, { batchId, collectResults: false });
        if (summary.enqueued !== expected) throw new Error(`${label}: enqueued ${summary.enqueued} of ${expected} into ${name}`);
      } finally {
        await producer.close();
      }
    }
  };

  /** `sluice enqueue FILE --batch ID` in its own process. */
  const enqueueWithCli = async () => {
    const file = join(ctx.tmpDir, `${queue}.jsonl`);
    await writeFile(file, Array.from({ length: operations }, (_, i) => JSON.stringify(op(i))).join('\n') + '\n');
    const cli = spawnSluice({ root: ctx.root, redisUrl, queue, configPath, env: lanes ? { SLUICE_LANES: 'on' } : {} }, [
      'enqueue',
      file,
      '--batch',
      batchId,
      '--json',
    ]);
    const timer = setTimeout(() => void cli.stop(), 60_000);
    const { code, signal } = await cli.exited.finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`${label}: sluice enqueue exited with ${code ?? signal}; its output ended with:\n${cli.output()}`);
  };

  /** A paced enqueue's state: `stop` set when the run ends (or fails), `done` and `error` when it ends. */
  const pacing = { stop: false, done: false, error: undefined };
  /** The operations arrive at `pacedRate` per second (a chunk every 100 ms) from this process while the workers run. */
  const enqueuePaced = async () => {
    const producer = createProducer({ connection: redisUrl, queue, config, lanes });
    try {
      const perTick = Math.max(1, Math.round(pacedRate / 10));
      const startedAt = performance.now();
      for (let sent = 0, tick = 0; sent < operations && !pacing.stop; tick++) {
        const count = Math.min(perTick, operations - sent);
        const chunk = Array.from({ length: count }, (_, i) => op(sent + i));
        await producer.enqueueMany(chunk, { batchId, collectResults: false });
        sent += count;
        await delay(Math.max(0, startedAt + (tick + 1) * 100 - performance.now()));
      }
    } finally {
      await producer.close();
    }
  };

  let enqueueStats;
  let enqueueMs;
  let lineAtEnqueue;
  if (prefilled) {
    await resetStatsOf(masters);
    const enqueueStart = performance.now();
    await enqueue();
    enqueueMs = performance.now() - enqueueStart;
    enqueueStats = sumStats(await commandStatsOf(masters));
  }

  const batches = queueNames.map((name) => createBatches(redis, name));
  await resetStatsOf(nodes);
  const before = { redis: await redisCpuMsOf(nodes), machine: machineBusyMs(), own: ownCpuMs() };
  const spawnedAt = performance.now();
  if (ctx.cpuProfDir) await mkdir(ctx.cpuProfDir, { recursive: true });
  if (ctx.logDir) await mkdir(ctx.logDir, { recursive: true });
  const nodeArgs = ctx.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfDir] : [];
  const workers = Array.from({ length: processes * queueNames.length }, (_, i) =>
    spawnWorker({
      root: ctx.root,
      redisUrl,
      queue: queueNames[Math.floor(i / processes)],
      configPath,
      concurrency,
      nodeArgs,
      ...(ctx.logDir ? { logLevel: ctx.logLevel, logFile: join(ctx.logDir, `${label}-${i + 1}.log`) } : {}),
    }),
  );
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  const stalls = watchStalls();
  let during;
  let duringResult;
  const stopDuring = () => {
    if (during && duringResult === undefined) duringResult = during.stop() ?? null;
  };
  try {
    let registryPolls = 0;
    if (!prefilled) registryPolls = await waitForWorkers(redis, queue, workers, label);
    during = duringRun?.(workers);
    let paced;
    if (pacedRate) {
      paced = enqueuePaced().then(
        () => (pacing.done = true),
        (error) => (pacing.error = error),
      );
    } else if (!prefilled) {
      const enqueueStart = performance.now();
      await enqueueWithCli();
      enqueueMs = performance.now() - enqueueStart;
      lineAtEnqueue = await lineSnapshot(redis, physical);
    }
    loopDelay.enable();
    let polls = 0;
    let cpuAtStart;
    let status;
    for (;;) {
      status = combined(await Promise.all(batches.map((b) => b.status(batchId))));
      polls++;
      if (cpuAtStart === undefined && started?.()) cpuAtStart = workers.map((worker) => worker.cpuMs());
      if (pacing.error) throw pacing.error;
      // A paced batch is over once the last chunk is in and nothing is pending (between chunks nothing may be).
      if (done ? done() : status && status.pending === 0 && (!pacedRate || pacing.done)) break;
      const dead = workers.find((worker) => !worker.running());
      if (dead) {
        const { code, signal } = await dead.exited;
        throw new Error(`${label}: worker ${dead.pid} exited during the run (${code ?? signal}); its output ended with:\n${dead.output()}`);
      }
      if (performance.now() - spawnedAt > timeoutMs) {
        throw new Error(`${label}: not done after ${Math.round(timeoutMs / 1000)} s (${JSON.stringify(status)})`);
      }
      await delay(pollMs);
    }
    const doneAt = performance.now();
    await paced;
    if (pacing.error) throw pacing.error;
    stopDuring();
    loopDelay.disable();
    stalls.stop();
    const cpuAtEnd = workers.map((worker) => worker.cpuMs());
    const workerPeakRssMb = Math.max(...workers.map((worker) => worker.memoryMb()?.peak ?? 0));
    const nodeStats = await commandStatsOf(nodes);
    const { calls, usec } = sumStats(nodeStats.filter((_, i) => nodes[i].role === 'master'));
    // Each poll reads every shard's batch hash.
    subtract(calls, 'hgetall', polls * physical.length);
    subtract(calls, 'client|list', registryPolls);
    subtract(calls, 'hlen', registryPolls);
    const nodeCpu = (await redisCpuMsOf(nodes)).map((ms, i) => ms - before.redis[i]);
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    const redisCpu = sum(nodeCpu.filter((_, i) => nodes[i].role === 'master'));
    const replicaCpu = sum(nodeCpu.filter((_, i) => nodes[i].role !== 'master'));
    const fetches = done ? undefined : await jobFetches(redis, physical);
    const lineAtEnd = await lineSnapshot(redis, physical);
    const machineBusy = machineBusyMs();
    const ownCpu = ownCpuMs() - before.own;
    const stopped = await Promise.all(workers.map((worker) => worker.stop()));
    const problems = workers.flatMap((worker) => worker.problems());

    const cpuKnown = cpuAtEnd.every((ms) => ms !== undefined);
    const workerCpuTotal = cpuKnown ? sum(cpuAtEnd) : undefined;
    const workerCpuRun = cpuKnown && cpuAtStart?.every((ms) => ms !== undefined) ? workerCpuTotal - sum(cpuAtStart) : workerCpuTotal;
    const wallMs = doneAt - spawnedAt;
    const otherCores =
      machineBusy !== undefined && workerCpuTotal !== undefined
        ? (machineBusy - before.machine - workerCpuTotal - redisCpu - replicaCpu - ownCpu) / wallMs
        : undefined;
    const workerTotal = totalCalls(calls);
    const enqueueTotal = enqueueStats ? totalCalls(enqueueStats.calls) : 0;
    return {
      spawnedAt,
      doneAt,
      summary: {
        label,
        queue,
        ...(queueNames.length > 1 ? { queues: queueNames } : {}),
        ...(shards > 1 ? { shards } : {}),
        operations,
        processes,
        concurrency,
        start: prefilled ? 'prefilled' : 'workers-ready',
        succeeded: status.succeeded,
        deadLettered: status.deadLettered,
        retries: status.retries,
        enqueueMs: round(enqueueMs, 0),
        redis: {
          callsPerOp: round((workerTotal + enqueueTotal) / operations, 2),
          /** With `workers-ready` this includes the enqueue (it overlaps the run). */
          workerCallsPerOp: round(workerTotal / operations, 2),
          enqueueCallsPerOp: enqueueStats ? round(enqueueTotal / operations, 2) : undefined,
          /** Scripts of BullMQ, of the outcome store and of the limiter. */
          evalshaPerOp: round(((calls.evalsha ?? 0) + (calls.eval ?? 0)) / operations, 3),
          /** The limiter's scripts each read Redis TIME once; nothing else here does. */
          limiterScriptCallsPerOp: round((calls.time ?? 0) / operations, 3),
          /** BullMQ's `ats` (moves to active) summed over the batch's jobs ÷ operations: 1 = each job fetched once. */
          realFetchesPerOp: fetches ? round(fetches.total / operations, 3) : undefined,
          /** How many jobs were fetched once, twice, three times, four times or more; and how many jobs were read. */
          fetchesHistogram: fetches ? { once: fetches.once, twice: fetches.twice, thrice: fetches.thrice, more: fetches.more } : undefined,
          fetchedJobs: fetches?.jobs,
          /** The queue's delayed jobs and each limit key's line (name, tickets handed out, used) just after the enqueue, and at the end. */
          lineAtEnqueue,
          lineAtEnd,
          /** Time inside scripts (EVALSHA), µs per operation. */
          scriptUsPerOp: round(((usec.evalsha ?? 0) + (usec.eval ?? 0)) / operations, 1),
          cpuUsPerOp: round((redisCpu * 1000) / operations, 1),
          workerCallsPerOpByCommand: perOperation(calls, operations),
          workerCalls: calls,
          workerUsec: usec,
          enqueueCalls: enqueueStats?.calls ?? {},
          ...(ctx.nodes
            ? {
                /** Over the replicas (cpuUsPerOp is over the masters). */
                replicaCpuUsPerOp: round((replicaCpu * 1000) / operations, 1),
                /** Each node's own: its commands (the bench's polls included) and its CPU, per operation of the run. */
                nodes: nodes.map((node, i) => ({
                  port: node.port,
                  role: node.role,
                  callsPerOp: round(totalCalls(nodeStats[i].calls) / operations, 2),
                  cpuUsPerOp: round((nodeCpu[i] * 1000) / operations, 1),
                })),
              }
            : {}),
        },
        /** The largest peak resident memory (VmHWM) of the worker processes, MB. */
        workerPeakRssMb,
        /** Worker CPU from the first request to the end (start-up left out when known). */
        workerCpuUsPerOp: workerCpuRun === undefined ? undefined : round((workerCpuRun * 1000) / operations, 0),
        workerCpuStartupMs: workerCpuRun === undefined ? undefined : round(workerCpuTotal - workerCpuRun, 0),
        /** The bench process (the target, the polls) from the spawn to the end. */
        benchCpuUsPerOp: round((ownCpu * 1000) / operations, 0),
        /** Cores used by software other than this bench, on average over the run (Linux only). */
        otherLoadCores: round(otherCores, 2),
        /** The bench process hosts the target: how late its event loop ran (a late loop bunches arrivals). */
        benchLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
        /** When the bench's event loop stalled by more than STALL_MS: [ended at (performance.now()), length ms]. */
        benchStalls: stalls.list(),
        workerExits: stopped,
        ...(during ? { during: duringResult } : {}),
        workerProblems: problems.slice(0, 10).map((entry) => ({ level: entry.level, msg: entry.msg, err: entry.err?.message })),
        workerProblemCount: problems.length,
      },
    };
  } finally {
    pacing.stop = true;
    stopDuring();
    loopDelay.disable();
    stalls.stop();
    await Promise.allSettled(workers.map((worker) => worker.stop()));
  }
}

/** Sums `ats` over the jobs of the completed and failed sets (KEYS); ARGV[1] = the job hash prefix. */
const FETCHES_LUA = `
local total, jobs, once, twice, thrice, more = 0, 0, 0, 0, 0, 0
for i = 1, #KEYS do
  for _, id in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local ats = tonumber(redis.call('HGET', ARGV[1] .. id, 'ats') or '0')
    total = total + ats
    jobs = jobs + 1
    if ats <= 1 then once = once + 1 elseif ats == 2 then twice = twice + 1 elseif ats == 3 then thrice = thrice + 1 else more = more + 1 end
  end
end
return { total, jobs, once, twice, thrice, more }`;

/** BullMQ's fetch counter over the finished jobs (their hashes are kept by age) of the queues, summed. */
export async function jobFetches(redis, queues) {
  const counts = { total: 0, jobs: 0, once: 0, twice: 0, thrice: 0, more: 0 };
  for (const queue of queues) {
    const base = `${PREFIX}:${bullQueueName(queue)}:`;
    const found = await redis.eval(FETCHES_LUA, 2, `${base}completed`, `${base}failed`, base);
    for (const [i, name] of Object.keys(counts).entries()) counts[name] += found[i];
  }
  return counts;
}

/** The counters of one batch in several queues, added up (one queue's as they are; undefined until each has its batch). */
function combined(statuses) {
  if (statuses.length === 1) return statuses[0];
  if (statuses.includes(undefined)) return undefined;
  const total = (name) => statuses.reduce((sum, status) => sum + status[name], 0);
  return { succeeded: total('succeeded'), deadLettered: total('deadLettered'), retries: total('retries'), pending: total('pending') };
}

const STALL_MS = 15;

/** Records when the event loop ran more than STALL_MS late (a 5 ms timer that fired late). */
function watchStalls() {
  const found = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > STALL_MS && found.length < 200) found.push([round(now, 1), round(late, 1)]);
    last = now;
  }, 5);
  timer.unref();
  return { stop: () => clearInterval(timer), list: () => [...found] };
}

/**
 * Polls until every spawned worker takes jobs: registered with BullMQ (CLIENT LIST names) and its
 * first metrics snapshot published, which a worker does once its warm-up is over and it runs. (A
 * worker registers before its warm-up: a batch enqueued then meets a fleet still starting, a cold
 * start rather than the ready fleet this measures.) Returns the polls: a CLIENT LIST and an HLEN each.
 */
export async function waitForWorkers(redis, queue, workers, label) {
  const registry = new Queue(bullQueueName(queue), { connection: redis, prefix: PREFIX });
  try {
    const deadline = performance.now() + 30_000;
    for (let polls = 1; ; polls++) {
      const [registered, running] = await Promise.all([registry.getWorkersCount(), redis.hlen(WORKER_SNAPSHOTS_KEY)]);
      if (registered >= workers.length && running >= workers.length) return polls;
      const dead = workers.find((worker) => !worker.running());
      if (dead) throw new Error(`${label}: worker ${dead.pid} exited while starting; its output ended with:\n${dead.output()}`);
      if (performance.now() > deadline) throw new Error(`${label}: the workers did not register with BullMQ within 30 s`);
      await delay(50);
    }
  } finally {
    await registry.close();
  }
}

/** How many of the queues' jobs are delayed, and each limit key's line: a diagnostic of where a backlog waits. */
async function lineSnapshot(redis, queues) {
  let delayed = 0;
  for (const queue of queues) delayed += await redis.zcard(`${PREFIX}:${bullQueueName(queue)}:delayed`);
  const keys = {};
  for (const key of await redis.smembers(limiterKeys.index)) {
    const [line, next, served] = await redis.hmget(limiterKeys.state(key), 'line', 'next', 'served');
    keys[key] = { line, next: Number(next ?? 0), served: Number(served ?? 0), waiting: await redis.zcard(limiterKeys.line(key)) };
  }
  return { delayed, keys };
}
