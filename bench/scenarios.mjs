/**
 * One run of each benchmark scenario, each with a fresh target (see run-batch.mjs for the rest).
 * Each run stops what it started, also when it fails.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { round } from './redis-stats.mjs';
import { runBatch, waitForWorkers } from './run-batch.mjs';
import { startFastTarget } from './fast-target.mjs';
import { startTenantTarget } from './tenant-target.mjs';
import { spawnWorker, startStallLoop } from './worker-processes.mjs';

const { createProducer } = await import(new URL('../dist/src/queue/producer.js', import.meta.url).href);

const { startDemoApi } = await import(new URL('../dist/src/demo/demo-api.js', import.meta.url).href);

/**
 * Throughput: `operations` POSTs to the fast target by `processes` workers at `concurrency`, the
 * batch enqueued before the workers start. `limits` undefined = no limits configured for the key
 * (A); otherwise the key's limits (B). `queues`: spread over these queues, `processes` for each;
 * `shards`: each queue spread over that many shards (see runBatch). `limitKeys`: operation i names
 * limitKeys[i mod n] instead of the target's key, each with `limits` (the limiter's work spread
 * over keys: over masters, one group each, on a Redis Cluster).
 */
export async function runThroughput(
  ctx,
  { label, limits, operations, processes = 1, concurrency = 100, bodyBytes, lanes = false, queues, shards, limitKeys },
) {
  const target = await startFastTarget({ bodyBytes });
  try {
    const keyed = limitKeys?.length ? limitKeys : undefined;
    const targetLimits = limits && !keyed ? { limits } : {};
    const config = {
      targets: { fast: { baseUrl: target.url, allowPrivateAddresses: true, ...targetLimits } },
      limits: keyed && limits ? Object.fromEntries(keyed.map((key) => [key, limits])) : {},
    };
    const op = keyed
      ? (i) => ({ target: 'fast', method: 'POST', url: '/items', json: { i }, limitKey: keyed[i % keyed.length] })
      : (i) => ({ target: 'fast', method: 'POST', url: '/items', json: { i } });
    const started = () => target.requests() > 0;
    const run = await runBatch(ctx, {
      label,
      config,
      op,
      operations,
      processes,
      concurrency,
      pollMs: 20,
      prefilled: true,
      started,
      lanes,
      queues,
      shards,
    });
    const arrivals = target.arrivals();
    if (arrivals.length < operations) throw new Error(`${label}: the target saw ${arrivals.length} requests for ${operations} operations`);
    const first = arrivals[0];
    return {
      ...run.summary,
      limitKeys: keyed ?? ['fast'],
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

/** The demo API as the limit shapes run it: answers in 2–10 ms, never fails, no 429s of its own. */
const DEMO_API = { latencyMs: { min: 2, max: 10 }, failureRate: 0, rateLimitRate: 0 };

/** sluice's config naming the demo API as target `demo` (limited by `limits`, if given), and the operation: POST /records. */
function demoShape(api, limits) {
  return {
    config: { targets: { demo: { baseUrl: api.url, allowPrivateAddresses: true, ...(limits ? { limits } : {}) } }, limits: {} },
    op: (i) => ({ target: 'demo', method: 'POST', url: '/records', json: { i } }),
  };
}

/**
 * Accuracy: `operations` POSTs to the demo API behind its strict limiter, by `processes` workers,
 * with the key limited to the same rate and burst the API enforces. `prefilled`: the batch waits
 * for the workers (a cold start with a backlog) instead of arriving at running workers. `stall`
 * ({ everyMs, stopMs, firstMs }): the first worker process is frozen (SIGSTOP) for stopMs every
 * everyMs while the batch runs, then continued (SIGCONT; always, also on errors).
 */
export async function runAccuracy(
  ctx,
  { label, rate, burst, operations, processes = 4, concurrency = 50, prefilled = false, stall, lanes = false },
) {
  const api = await startDemoApi({ ...DEMO_API, strictLimit: { requestsPerSecond: rate, burst } });
  try {
    const { config, op } = demoShape(api, { requestsPerSecond: rate, burst });
    const timeoutMs = (operations / rate) * 2_000 + 60_000;
    const started = () => api.stats().requests > 0;
    const duringRun = stall ? (workers) => startStallLoop(workers[0], stall) : undefined;
    const run = await runBatch(ctx, {
      label,
      config,
      op,
      operations,
      processes,
      concurrency,
      pollMs: 100,
      timeoutMs,
      prefilled,
      started,
      duringRun,
      lanes,
    });
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
      /** BullMQ's moves to active per job (its `ats` counter), read at the end of the run. */
      realFetchesPerOp: run.summary.redis.realFetchesPerOp,
      ...(stall ? { stall: { ...stall, ...run.summary.during } } : {}),
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
        /** For each rejection, the arrivals of the 300 ms before it, ms after the first arrival: the bunch the target saw. */
        beforeRejectionsMs: replayed.map((at) => arrivals.filter((t) => t > at - 300 && t <= at).map((t) => round(t - arrivals[0], 1))),
        /** The first arrival on the epoch clock (ms), to line the arrivals up with the workers' log times. */
        firstArrivalEpochMs: round(performance.timeOrigin + arrivals[0], 1),
        /** The first 40 arrivals, ms after the first. */
        firstArrivalsMs: arrivals.slice(0, 40).map((t) => round(t - arrivals[0], 1)),
      },
    };
  } finally {
    await api.close();
  }
}

/**
 * The binding shape's work without a limit: the same `operations` POSTs to the demo API (no limiter
 * at either end) by `processes` × `concurrency`, arriving at `rate` per second from the bench
 * process while the workers run. Worker CPU per operation here is what a job costs at that rate
 * with no limiter at all: the reference that separates the limiter's cost from the cost of
 * running jobs a few at a time instead of in a saturated stream.
 */
export async function runPacedNoLimit(ctx, { label, rate, operations, processes = 4, concurrency = 50 }) {
  const api = await startDemoApi(DEMO_API);
  try {
    const { config, op } = demoShape(api);
    const run = await runBatch(ctx, {
      label,
      config,
      op,
      operations,
      processes,
      concurrency,
      pollMs: 100,
      timeoutMs: (operations / rate) * 2_000 + 60_000,
      pacedRate: rate,
      started: () => api.stats().requests > 0,
    });
    const arrivals = api.arrivals();
    return { ...run.summary, rate, achievedPerSecond: round(((operations - 1) * 1000) / (arrivals.at(-1) - arrivals[0]), 2) };
  } finally {
    await api.close();
  }
}

/**
 * Fairness: `fastOps` POSTs to an unlimited key with `slowOps` POSTs to a 2/s key spread among
 * them (0 = the unlimited key alone), 1 worker at `concurrency`, prefilled. Over when the unlimited
 * key's target has seen all of its requests (the slow key's backlog is left): its rate from its
 * first to its last arrival.
 */
export async function runFairness(ctx, { label, fastOps, slowOps, concurrency = 100 }) {
  const fast = await startFastTarget();
  const slow = await startFastTarget();
  try {
    const config = {
      targets: {
        fast: { baseUrl: fast.url, allowPrivateAddresses: true },
        slow: { baseUrl: slow.url, allowPrivateAddresses: true, limits: { requestsPerSecond: 2, burst: 1 } },
      },
      limits: {},
    };
    const step = slowOps ? Math.floor((fastOps + slowOps) / slowOps) : Infinity;
    const op = (i) => ({ target: i % step === 0 && i / step < slowOps ? 'slow' : 'fast', method: 'POST', url: '/items', json: { i } });
    const run = await runBatch(ctx, {
      label,
      config,
      op,
      operations: fastOps + slowOps,
      processes: 1,
      concurrency,
      pollMs: 20,
      prefilled: true,
      started: () => fast.requests() > 0,
      done: () => fast.requests() >= fastOps,
    });
    const arrivals = fast.arrivals();
    return {
      ...run.summary,
      fastOps,
      slowOps,
      slowRequests: slow.requests(),
      fastPerSecond: round(((fastOps - 1) * 1000) / (arrivals.at(-1) - arrivals[0]), 1),
    };
  } finally {
    await fast.close();
    await slow.close();
  }
}

/**
 * Many keys: `keys` limit keys `tenant:0` … (each limited to `rate`/s with `burst` in the config's
 * `limits`, named by the operation's `limitKey`), `opsPerKey` POSTs each to `/tenants/N/items` of a
 * target that enforces the same limit per tenant strictly (bench/tenant-target.mjs: 429 beyond it),
 * spread evenly through a backlog of `backlogOps` POSTs to an unlimited key (the fast target);
 * `keys` 0 = the unlimited backlog alone. `processes` workers at `concurrency`; the batch enqueued
 * before they start (`prefilled`, default) or once they run. Over when nothing is pending. Per key:
 * (opsPerKey − 1) ÷ (last − first admitted arrival) ÷ rate; the unlimited key's rate from its first
 * to its last arrival.
 */
export async function runManyKeys(
  ctx,
  { label, keys, opsPerKey, rate, burst, backlogOps, processes = 2, concurrency = 100, prefilled = true },
) {
  const fast = await startFastTarget();
  const tenants = await startTenantTarget({ requestsPerSecond: rate, burst });
  try {
    const limits = Object.fromEntries(Array.from({ length: keys }, (_, k) => [`tenant:${k}`, { requestsPerSecond: rate, burst }]));
    const config = {
      targets: {
        fast: { baseUrl: fast.url, allowPrivateAddresses: true },
        tenants: { baseUrl: tenants.url, allowPrivateAddresses: true },
      },
      limits,
    };
    const keyOps = keys * opsPerKey;
    const operations = backlogOps + keyOps;
    const step = keyOps ? Math.floor(operations / keyOps) : Infinity;
    const op = (i) => {
      if (i % step === 0 && i / step < keyOps) {
        const tenant = (i / step) % keys;
        return { target: 'tenants', limitKey: `tenant:${tenant}`, method: 'POST', url: `/tenants/${tenant}/items`, json: { i } };
      }
      return { target: 'fast', method: 'POST', url: '/items', json: { i } };
    };
    const timeoutMs = ((opsPerKey - burst) / rate) * 5_000 + 120_000;
    const started = () => fast.requests() + tenants.requests() > 0;
    const run = await runBatch(ctx, { label, config, op, operations, processes, concurrency, pollMs: 50, timeoutMs, prefilled, started });
    const backlog = fast.arrivals();
    if (backlog.length < backlogOps)
      throw new Error(`${label}: the unlimited key's target saw ${backlog.length} of ${backlogOps} requests`);
    const byTenant = tenants.arrivals();
    const perKey = Array.from({ length: keys }, (_, k) => {
      const arrivals = byTenant.get(String(k)) ?? [];
      if (arrivals.length !== opsPerKey) throw new Error(`${label}: tenant ${k} was sent ${arrivals.length} of ${opsPerKey} operations`);
      const span = arrivals.at(-1) - arrivals[0];
      return { key: k, ratio: ((opsPerKey - 1) * 1000) / span / rate, span, maxIn1s: maxInWindow(arrivals, 1_000), first: arrivals[0] };
    });
    const ratios = perKey.map((key) => key.ratio).sort((a, b) => a - b);
    const worstKey = perKey.reduce((a, b) => (b.ratio < a.ratio ? b : a), perKey[0]);
    const middle = (values) => (values.length ? values[Math.floor((values.length - 1) / 2)] : undefined);
    return {
      ...run.summary,
      keys,
      opsPerKey,
      rate,
      burst,
      backlogOps,
      realFetchesPerOp: run.summary.redis.realFetchesPerOp,
      /** The tenant target's 429s, all keys. */
      rejected: tenants.rejected(),
      rejectedKeys: tenants.rejectedByTenant().size,
      unlimitedPerSecond: round(((backlogOps - 1) * 1000) / (backlog.at(-1) - backlog[0]), 1),
      unlimitedSpanMs: round(backlog.at(-1) - backlog[0], 0),
      keyRatioMedian: keys ? round(middle(ratios), 3) : undefined,
      keyRatioWorst: keys ? round(ratios[0], 3) : undefined,
      keyRatioP10: keys ? round(ratios[Math.floor(ratios.length / 10)], 3) : undefined,
      worstKey: worstKey ? `tenant:${worstKey.key}` : undefined,
      /** Most starts of one key in any 1 s window (worst key; ≤ rate + burst). */
      keyMaxStartsIn1s: keys ? Math.max(...perKey.map((key) => key.maxIn1s)) : undefined,
      keySpanMsMedian: keys ? round(middle(perKey.map((key) => key.span).sort((a, b) => a - b)), 0) : undefined,
      diagnostics: keys
        ? {
            /** Per key (tenant:0 …), achieved ÷ limit. */
            keyRatios: perKey.map((key) => round(key.ratio, 3)),
            /** Per key, its first start in ms after the backlog's first request. */
            keyFirstStartMs: perKey.map((key) => round(key.first - backlog[0], 0)),
            rejectedByTenant: Object.fromEntries(tenants.rejectedByTenant()),
            /** When the unlimited backlog's last request arrived, ms after its first. */
            unlimitedLastMs: round(backlog.at(-1) - backlog[0], 0),
          }
        : undefined,
    };
  } finally {
    await fast.close();
    await tenants.close();
  }
}

/**
 * Latency on an idle system: one worker, registered and idle; single operations enqueued one at a
 * time from this process (`createProducer().enqueue`), `gapMs` apart. Latency = the target's arrival
 * stamp − the start of the enqueue call (one clock: this process's `performance.now()`).
 */
export async function runLatency(ctx, { label, operations, gapMs, concurrency = 100, warmUp = 10 }) {
  await ctx.redis.flushall();
  const target = await startFastTarget();
  const queue = `bench-${label}`;
  const config = { targets: { fast: { baseUrl: target.url, allowPrivateAddresses: true } }, limits: {} };
  const configPath = join(ctx.tmpDir, `${queue}.json`);
  await writeFile(configPath, JSON.stringify(config));
  const worker = spawnWorker({ root: ctx.root, redisUrl: ctx.redisUrl, queue, configPath, concurrency });
  const producer = createProducer({ connection: ctx.redisUrl, queue, config });
  try {
    await waitForWorkers(ctx.redis, queue, [worker], label);
    const latencies = [];
    for (let i = 0; i < warmUp + operations; i++) {
      const seen = target.requests();
      const startedAt = performance.now();
      await producer.enqueue({ target: 'fast', method: 'POST', url: '/items', json: { i } });
      const deadline = startedAt + 5_000;
      while (target.requests() === seen) {
        if (performance.now() > deadline) throw new Error(`${label}: operation ${i} did not reach the target within 5 s`);
        await delay(0.5);
      }
      if (i >= warmUp) latencies.push(target.arrivals()[seen] - startedAt);
      await delay(gapMs);
    }
    latencies.sort((a, b) => a - b);
    const at = (q) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))], 2);
    return { label, operations, gapMs, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: round(latencies.at(-1), 2) };
  } finally {
    await producer.close();
    await worker.stop();
    await target.close();
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

/**
 * Redis memory per queued operation: INFO used_memory after enqueuing `operations` 140-byte
 * operations with `createProducer` (no worker running), less before, per operation. As single
 * jobs, or in lanes (`lanes`).
 */
export async function runQueuedMemory(ctx, { label, operations, lanes }) {
  const { redis, redisUrl } = ctx;
  await redis.flushall();
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const config = { targets: { fast: { baseUrl: 'http://127.0.0.1:9', allowPrivateAddresses: true } }, limits: {} };
  const before = await usedMemory();
  const producer = createProducer({ connection: redisUrl, queue: `bench-${label}`, config, lanes });
  try {
    const ops = (function* () {
      for (let i = 0; i < operations; i++)
        yield {
          target: 'fast',
          method: 'POST',
          url: '/items',
          json: { sku: `SKU-${String(i).padStart(8, '0')}`, qty: 1, note: 'a 140-byte operation, as issue 15 measured' },
        };
    })();
    const summary = await producer.enqueueMany(ops, { batchId: `bench-${label}`, collectResults: false });
    if (summary.enqueued !== operations) throw new Error(`${label}: enqueued ${summary.enqueued} of ${operations}`);
  } finally {
    await producer.close();
  }
  const after = await usedMemory();
  return {
    label,
    operations,
    lanes,
    usedMemoryBefore: before,
    usedMemoryAfter: after,
    bytesPerOp: round((after - before) / operations, 0),
  };
}
