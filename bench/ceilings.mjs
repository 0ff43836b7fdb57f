/**
 * The ceilings, measured in the same run as sluice so that every sluice figure can be a ratio:
 * undici alone (HTTP), a minimal BullMQ worker (queue), raw `addBulk` (enqueue). Each runs in its
 * own process (bench/minimal-process.mjs), as sluice's workers and `sluice enqueue` do, against a
 * fresh fast target; each stops what it started, also when it fails.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { startFastTarget } from './fast-target.mjs';
import { startLoadMeter } from './machine-load.mjs';
import { commandStats, perOperation, redisCpuMs, resetStats, round, subtract, totalCalls } from './redis-stats.mjs';
import { spawnNode, spawnSluice } from './worker-processes.mjs';

const SCRIPT = new URL('./minimal-process.mjs', import.meta.url).pathname;
const TIMEOUT_MS = 300_000;

/**
 * undici alone in its own process (bench/minimal-process.mjs `mode`) against a fresh fast target:
 * `measure` gets the process, the target and the load meter; the process and target are stopped after.
 */
async function undiciAlone(ctx, mode, args, measure) {
  const target = await startFastTarget();
  try {
    const load = startLoadMeter();
    const child = spawnNode({ root: ctx.root, redisUrl: ctx.redisUrl, queue: 'none' }, SCRIPT, [mode, target.url, ...args.map(String)]);
    try {
      return await measure(child, target, load);
    } finally {
      await child.stop();
    }
  } finally {
    await target.close();
  }
}

/**
 * (1) undici alone: `operations` POSTs, `concurrency` at a time, from one process; its CPU (user +
 * system, from /proc) per request from `ready` to `done`: what a worker's CPU per operation would
 * be if sending were all it did (figure 14 sets a lane's beside it).
 */
export async function runHttpCeiling(ctx, { label, operations, concurrency }) {
  return undiciAlone(ctx, 'http', [operations, concurrency], async (child, target, load) => {
    await untilLine(child, 'ready', label);
    const cpuAtReady = child.cpuMs();
    const doneAt = await untilLine(child, 'done', label);
    const cpuAtDone = child.cpuMs();
    const otherLoadCores = round(load(cpuAtDone ?? 0), 2);
    const arrivals = target.arrivals();
    const clientCpuUsPerOp =
      cpuAtReady === undefined || cpuAtDone === undefined ? undefined : round(((cpuAtDone - cpuAtReady) * 1000) / operations, 0);
    return {
      label,
      operations,
      concurrency,
      jobsPerSecond: round((operations * 1000) / (doneAt - arrivals[0]), 1),
      clientCpuUsPerOp,
      otherLoadCores,
    };
  });
}

/**
 * undici alone at a pace: `operations` POSTs started `rate` a second from one warm process; its CPU
 * (user + system, from /proc) per request from `ready` to `done`. The floor of a worker's CPU per
 * operation at that rate, whatever it runs (figure 14, the binding shape: rate ÷ processes).
 */
export async function runPacedHttpCeiling(ctx, { label, operations, rate }) {
  return undiciAlone(ctx, 'paced', [operations, rate], async (child, _target, load) => {
    await untilLine(child, 'ready', label);
    const cpuAtReady = child.cpuMs();
    await untilLine(child, 'done', label);
    const cpuAtDone = child.cpuMs();
    const otherLoadCores = round(load(cpuAtDone ?? 0), 2);
    const cpuUsPerOp =
      cpuAtReady === undefined || cpuAtDone === undefined ? undefined : round(((cpuAtDone - cpuAtReady) * 1000) / operations, 0);
    return { label, operations, rate, cpuUsPerOp, otherLoadCores };
  });
}

/**
 * (2) A minimal BullMQ worker per process, one undici POST per job, the jobs added with raw
 * `addBulk` before the workers start (as sluice's throughput runs are prefilled). Done when
 * BullMQ's completed set holds them all (polled every 20 ms; the polls are left out of the counts).
 */
export async function runQueueCeiling(ctx, { label, operations, processes, concurrency, bodyBytes }) {
  const { redis } = ctx;
  await redis.flushall();
  const target = await startFastTarget({ bodyBytes });
  const name = `bench-${label}`;
  const queue = new Queue(name, { connection: redis });
  const workers = [];
  try {
    await resetStats(redis);
    for (let i = 0; i < operations; i += 500) {
      await queue.addBulk(Array.from({ length: Math.min(500, operations - i) }, (_, j) => ({ name: 'op', data: { i: i + j } })));
    }
    const enqueue = totalCalls((await commandStats(redis)).calls);
    await resetStats(redis);
    const redisBefore = await redisCpuMs(redis);
    const load = startLoadMeter();
    for (let i = 0; i < processes; i++) {
      workers.push(spawnNode({ root: ctx.root, redisUrl: ctx.redisUrl, queue: name }, SCRIPT, ['worker', target.url, String(concurrency)]));
    }
    const spawnedAt = performance.now();
    let polls = 0;
    let cpuAtStart;
    while ((polls++, await redis.zcard(`bull:${name}:completed`)) < operations) {
      if (cpuAtStart === undefined && target.requests() > 0) cpuAtStart = workers.map((w) => w.cpuMs() ?? 0);
      const dead = workers.find((w) => !w.running());
      if (dead) throw new Error(`${label}: worker ${dead.pid} exited; its output ended with:\n${dead.output()}`);
      if (performance.now() - spawnedAt > TIMEOUT_MS) throw new Error(`${label}: not done after ${TIMEOUT_MS / 1000} s`);
      await delay(20);
    }
    const doneAt = performance.now();
    const { calls } = await commandStats(redis);
    subtract(calls, 'zcard', polls);
    const redisCpu = (await redisCpuMs(redis)) - redisBefore;
    const cpuTotal = workers.reduce((sum, w) => sum + (w.cpuMs() ?? 0), 0);
    const otherLoadCores = round(load(cpuTotal + redisCpu), 2);
    const cpu = cpuTotal - (cpuAtStart ?? []).reduce((a, b) => a + b, 0);
    const peakRssMb = Math.max(...workers.map((w) => w.memoryMb()?.peak ?? 0));
    const arrivals = target.arrivals();
    return {
      label,
      operations,
      processes,
      concurrency,
      jobsPerSecond: round((operations * 1000) / (doneAt - arrivals[0]), 1),
      workerCpuUsPerOp: round((cpu * 1000) / operations, 0),
      workerPeakRssMb: peakRssMb,
      otherLoadCores,
      redis: {
        callsPerOp: round((totalCalls(calls) + enqueue) / operations, 2),
        workerCallsPerOp: round(totalCalls(calls) / operations, 2),
        enqueueCallsPerOp: round(enqueue / operations, 2),
        cpuUsPerOp: round((redisCpu * 1000) / operations, 1),
        workerCallsPerOpByCommand: perOperation(calls, operations),
      },
    };
  } finally {
    await Promise.allSettled(workers.map((w) => w.stop()));
    await queue.close();
    await target.close();
  }
}

/** Writes (once per size) the JSONL file that both enqueue runs read. */
export async function enqueueFile(ctx, lines) {
  const file = join(ctx.tmpDir, `enqueue-${lines}.jsonl`);
  const out = createWriteStream(file);
  for (let i = 0; i < lines; i++) {
    const line = `${JSON.stringify({ target: 'fast', method: 'POST', url: '/items', json: { i } })}\n`;
    if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve(undefined))));
  return file;
}

/**
 * (6) `sluice enqueue FILE` (`via: 'sluice'`) or raw `addBulk` of the same lines (`via: 'addbulk'`),
 * each in its own process, from its spawn to its exit; peak RSS sampled every 50 ms (VmHWM).
 * `via: 'check'`: `sluice enqueue FILE --dry-run`, the pass that checks every line before anything
 * is written (the first of an enqueue's two passes over its input).
 */
export async function runEnqueue(ctx, { label, file, lines, via, configPath, lanes = false }) {
  const { redis } = ctx;
  await redis.flushall();
  const queue = `bench-${label}`;
  const startedAt = performance.now();
  const child =
    via === 'sluice'
      ? spawnSluice({ root: ctx.root, redisUrl: ctx.redisUrl, queue, configPath, env: { SLUICE_LANES: lanes ? 'on' : 'off' } }, [
          'enqueue',
          file,
          '--json',
        ])
      : via === 'check'
        ? spawnSluice({ root: ctx.root, redisUrl: ctx.redisUrl, queue, configPath }, ['enqueue', file, '--json', '--dry-run'])
        : spawnNode({ root: ctx.root, redisUrl: ctx.redisUrl, queue }, SCRIPT, ['addbulk', file]);
  let peakRssMb = 0;
  const timer = setInterval(() => {
    peakRssMb = Math.max(peakRssMb, child.memoryMb()?.peak ?? 0);
  }, 50);
  try {
    const { code, signal } = await Promise.race([
      child.exited,
      delay(TIMEOUT_MS, undefined, { ref: false }).then(() => ({ code: 'timeout' })),
    ]);
    const ms = performance.now() - startedAt;
    if (code !== 0) throw new Error(`${label}: ${via} exited with ${code ?? signal}; its output ended with:\n${child.output()}`);
    if (via !== 'addbulk') {
      const answer = JSON.parse(child.output().trim().split('\n').at(-1));
      const count = via === 'check' ? answer.valid : answer.enqueued;
      if (count !== lines) throw new Error(`${label}: sluice ${via === 'check' ? 'checked' : 'enqueued'} ${count} of ${lines}`);
    }
    return { label, via, lanes, lines, ms: round(ms, 0), opsPerSecond: round((lines * 1000) / ms, 0), peakRssMb };
  } finally {
    clearInterval(timer);
    await child.stop();
  }
}

async function untilLine(child, text, label) {
  const result = await Promise.race([child.line(text).then((at) => ({ at })), child.exited]);
  if (result.at === undefined)
    throw new Error(`${label}: exited with ${result.code ?? result.signal} before "${text}"; its output ended with:\n${child.output()}`);
  return result.at;
}
