/**
 * `npm run soak -- --minutes N` — issue 13, "Nothing lost, nothing sent twice, nothing hung": sluice
 * run for N minutes under the trouble a deployment meets, then every operation accounted for.
 *
 *   node bench/soak.mjs [--minutes N] [--fast] [--seed S] [--drain-minutes M] [--concurrency C]
 *
 * - A private `redis-server` with AOF on (`appendonly yes`, `appendfsync everysec`) in a temporary
 *   directory, restarted every 10 minutes (SIGTERM: a clean shutdown, then started again on the
 *   same port and directory) and once, mid-run, by SIGKILL.
 * - Four counting targets in this process (bench/soak-targets.mjs): `steady`, `flaky` (~20 % 503),
 *   `limited` (a strict limit a bit above the config's) and `wobbly` (refuses connections for
 *   60–90 s every 5 minutes).
 * - A producer here (`createProducer`): a batch of 200–500 mixed operations every 10–20 s, each
 *   with an idempotency key; every operation enqueued is recorded.
 * - Three `sluice worker` processes (concurrency 20): the *resident* is never killed (its RSS is
 *   read after a 2-minute warm-up and at the end); of the other two, one is SIGKILLed every minute
 *   and replaced.
 * - Trouble meets work: a worker kill waits until jobs are active, a Redis restart until the next
 *   batch was acknowledged (a SIGKILL 300 ms after it, while its writes are the newest in the AOF).
 * - At the end: enqueuing stops, every batch is waited for (bounded by --drain-minutes: 10, 3 with
 *   --fast), and each operation is looked for in its batch's counters and result lines: lost,
 *   dead-lettered (by reason), requests per target and duplicates (requests for a key after its
 *   final answer), with the cause of each duplicate where the run's events explain it.
 *
 * --fast scales the periods down so that a 3-minute run meets each kind of trouble: a worker killed
 * every 20 s, Redis restarted every minute (SIGKILL at mid-run), wobbly down 35–45 s every 100 s,
 * RSS warm-up 30 s.
 *
 * It imports the BUILT library (`npm run soak` builds first) and stops every process and server it
 * started when it ends, also on errors and Ctrl-C. Results: a table on stdout,
 * bench/results/soak-<timestamp>.json (`figures.soak`), every operation with what its target saw of
 * it in soak-<timestamp>-operations.jsonl beside, and the soak section of BENCHMARKS.md.
 * Exit code 1 when an operation was lost (outside the Redis SIGKILL's AOF window, reported apart)
 * or the run failed.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './machine-load.mjs';
import { soakSectionOf, withSoakSection } from './report.mjs';
import { outageFigures, soakFigures, soakMarkdown, soakText } from './soak-report.mjs';
import { startCountingTarget } from './soak-targets.mjs';
import { killAllWorkersNow, spawnWorker, stopAllWorkers } from './worker-processes.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const lib = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const { startRedisServer } = await lib('support/redis-server.js');
const { createRedisConnection, closeRedis } = await lib('redis/connection.js');
const { createProducer } = await lib('queue/producer.js');
const { createBatches } = await lib('outcomes/batches.js');
const { parseSluiceConfig } = await lib('config/sluice-config.js');
const { createLimitsAdmin } = await lib('limits/limits-admin.js');
const { openBullQueue } = await lib('queue/bull-queue.js');
const { jobIdForKey } = await lib('redis/keys.js');

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    fast: { type: 'boolean', default: false },
    seed: { type: 'string' },
    'drain-minutes': { type: 'string' },
    concurrency: { type: 'string', default: '20' },
  },
});
const minutes = Number(flags.minutes);
const concurrency = Number(flags.concurrency);
if (!(minutes > 0 && minutes <= 24 * 60) || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node bench/soak.mjs [--minutes N] [--fast] [--seed S] [--drain-minutes M] [--concurrency C]');
  process.exit(2);
}
const fast = flags.fast;
const seed = flags.seed === undefined ? Date.now() % 1_000_000 : Number(flags.seed);
const S = 1_000;
const params = {
  minutes,
  mode: fast ? 'fast' : 'normal',
  seed,
  runMs: Math.round(minutes * 60 * S),
  drainMs: Math.round(Number(flags['drain-minutes'] ?? (fast ? 3 : 10)) * 60 * S),
  workers: 3,
  concurrency,
  /** A batch of this many operations (uniform) every this many ms (uniform). */
  batchOps: [200, 500],
  batchEveryMs: [10 * S, 20 * S],
  /** Share of operations per target; of steady's, this share goes to /reject (a 422: dead-lettered on purpose). */
  mix: { steady: 0.35, flaky: 0.25, limited: 0.15, wobbly: 0.25 },
  rejectShareOfSteady: 0.02,
  flakyFailRate: 0.2,
  /** The limited target refuses anything faster than this; the config's limit sits a bit below. */
  limitedTarget: { rate: 12, burst: 4 },
  limitedConfig: { requestsPerSecond: 10, burst: 2 },
  workerKillEveryMs: (fast ? 20 : 60) * S,
  redisRestartEveryMs: (fast ? 60 : 600) * S,
  wobblyEveryMs: (fast ? 100 : 300) * S,
  wobblyFirstMs: (fast ? 25 : 150) * S,
  wobblyDownMs: fast ? [35 * S, 45 * S] : [60 * S, 90 * S],
  rssWarmupMs: (fast ? 30 : 120) * S,
  rssEveryMs: 5 * S,
  /** RSS is also compared as the median over this long after the warm-up and before the end. */
  rssWindowMs: 60 * S,
  circuitPollMs: 2 * S,
};

// Seeded randomness: the schedule, the batches and the targets' answers repeat with --seed.
function rngFrom(value) {
  let a = value >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rng = rngFrom(seed);
const targetRng = rngFrom(seed + 1);
const between = ([low, high]) => Math.round(low + rng() * (high - low));

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/:/g, '-');
const epoch = performance.now();
const now = () => Math.round(performance.now() - epoch);
const seconds = (ms) => (ms / S).toFixed(1);
const log = (message) => console.log(`[${seconds(now()).padStart(7)} s] ${message}`);
const resultsDir = join(root, 'bench', 'results');
const queue = 'soak';
const runId = startedAt.getTime().toString(36);

const machine = describeMachine();

/** Everything the run records, for the figures and the JSON. */
const run = {
  startedAt: startedAt.toISOString(),
  params,
  machine,
  events: [],
  batches: [],
  workers: { spawned: [], kills: [], unexpectedExits: [], logs: {} },
  redis: { restarts: [], killCheck: undefined },
  wobbly: { outages: [] },
  circuits: { observed: [], backlog: [], final: {} },
  rss: { series: [] },
  loadavg: { start: loadavg() },
};
const event = (kind, details = {}) => {
  const entry = { at: now(), kind, ...details };
  run.events.push(entry);
  return entry;
};

let redisServer;
let redis;
let producer;
let bullQueue;
let tmpDir;
let targets;
/** 'load': batches and trouble; 'drain': waiting for the batches (replacements still spawned); 'done'. */
let phase = 'load';
let interrupted = false;
let cleaning;
/** Resolves when Redis answers again after a restart (replacements wait for it). */
let redisUp = Promise.resolve();
const slots = [{ name: 'resident', resident: true }, { name: 'w1' }, { name: 'w2' }];
let spawnCount = 0;
/** The last circuit state seen per limit key. */
const circuitState = {};

async function cleanup() {
  cleaning ??= (async () => {
    phase = 'done';
    await stopAllWorkers();
    await producer?.close().catch(() => undefined);
    await bullQueue?.close().catch(() => undefined);
    if (redis) await closeRedis(redis);
    if (redisServer) await redisServer.stop().catch(() => undefined);
    await Promise.allSettled(Object.values(targets ?? {}).map((target) => target.close()));
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) {
      // A second Ctrl-C: the exit hooks SIGKILL the workers and redis-server.
      process.exit(130);
    }
    interrupted = true;
    console.error(`\n${signal}: stopping workers, targets and redis-server… (again to force)`);
    cleanup().finally(() => process.exit(130));
  });
}
process.once('exit', killAllWorkersNow);

let exitCode = 0;
try {
  console.log(
    `sluice soak: ${minutes} min (${params.mode} periods), seed ${seed}, on ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`,
  );
  tmpDir = await mkdtemp(join(tmpdir(), 'sluice-soak-'));
  redisServer = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] });
  redis = createRedisConnection(redisServer.url, { name: 'sluice:soak' });
  const aof = await redis.config('GET', 'append*');
  log(`redis-server on ${redisServer.url}, dir ${redisServer.dir}, ${aof.join(' ')}`);

  targets = {
    steady: await startCountingTarget({ name: 'steady', epoch, random: targetRng }),
    flaky: await startCountingTarget({ name: 'flaky', epoch, random: targetRng, failRate: params.flakyFailRate }),
    limited: await startCountingTarget({ name: 'limited', epoch, random: targetRng, limit: params.limitedTarget }),
    wobbly: await startCountingTarget({ name: 'wobbly', epoch, random: targetRng }),
  };
  const baseConfig = configFor(undefined);
  await writeFile(join(tmpDir, 'sluice.config.json'), JSON.stringify(baseConfig, null, 2));
  const config = parseSluiceConfig(baseConfig);
  producer = createProducer({ connection: redisServer.url, queue, config });
  bullQueue = openBullQueue(redis, queue);
  bullQueue.on('error', () => undefined);
  const batches = createBatches(redis, queue);
  const admin = createLimitsAdmin({ redis, config });

  for (const slot of slots) await spawnSlot(slot);
  log(
    `3 workers × ${concurrency} spawned; targets ${Object.values(targets)
      .map((t) => `${t.name} ${t.url}`)
      .join(', ')}`,
  );

  const schedule = buildSchedule();
  run.schedule = schedule.map(({ at, kind, downMs }) => ({ at, kind, ...(downMs ? { downMs } : {}) }));
  log(`schedule: ${schedule.map((e) => `${e.kind}@${seconds(e.at)}s`).join(', ')}`);

  const loadLoops = [produce(), chaos(schedule), sampleRss()];
  const circuitWatch = watchCircuits(admin);
  await delay(params.runMs);
  if (phase !== 'load') throw new Error('interrupted');

  // The end: no more batches, no more trouble; the wobbly target back; every worker slot filled.
  phase = 'drain';
  log('run over: enqueuing stopped, trouble stopped; waiting for every batch to finish');
  await Promise.all(loadLoops);
  await redisUp;
  if (targets.wobbly.isDown()) {
    await targets.wobbly.comeUp();
    outageEnded();
  }
  const endOfLoad = residentRss('end of load');
  run.rss.endOfLoad = endOfLoad;
  run.loadavg.endOfLoad = loadavg();
  await Promise.all(slots.filter((slot) => !slot.handle?.running()).map((slot) => spawnSlot(slot)));

  const drain = await waitForBatches(batches);
  run.drain = drain;
  log(
    `drain: ${drain.timedOut ? `TIMED OUT after ${seconds(drain.ms)} s` : `done in ${seconds(drain.ms)} s`}; queue ${JSON.stringify(drain.jobCounts)}`,
  );
  run.rss.afterDrain = residentRss('after drain');
  phase = 'done';
  await circuitWatch;
  await pollCircuits(admin).catch(() => undefined);
  run.circuits.final = Object.fromEntries(
    (await admin.list())
      .filter((s) => s.circuit)
      .map((s) => [s.key, { opened: s.circuit.opened, closed: s.circuit.closed, state: s.circuit.state }]),
  );
  run.accounting = await account(batches);
  outageFigures(run, (op) => targets[op.target].key(op.key));
  run.targets = Object.fromEntries(Object.entries(targets).map(([name, target]) => [name, target.summary()]));
  run.redis.info = await redisInfo();
  run.durationMs = now();
  run.loadavg.end = loadavg();
  await stopAllWorkers();

  const figures = soakFigures(run);
  // The batches are in accounting.perBatch; every operation enqueued goes to a JSON-lines file beside.
  const results = { ...run, batches: undefined, targets: summariseTargets(run.targets), figures: { soak: figures } };
  await mkdir(resultsDir, { recursive: true });
  const resultFile = `soak-${stamp}.json`;
  await writeFile(join(resultsDir, resultFile), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(resultsDir, `soak-${stamp}-operations.jsonl`), operationLines());
  console.log(`\n${soakText(figures)}\n`);
  console.log(`Results: bench/results/${resultFile}`);
  const benchmarksPath = join(root, 'BENCHMARKS.md');
  const previous = await readFile(benchmarksPath, 'utf8').catch(() => undefined);
  const section = soakMarkdown(figures, resultFile);
  const text = previous ?? '# Benchmarks\n\nWritten by `npm run bench` (`bench/run.mjs`) and `npm run soak` (`bench/soak.mjs`).\n';
  await writeFile(benchmarksPath, withSoakSection(text, section));
  console.log(`Wrote the soak section of BENCHMARKS.md${soakSectionOf(previous ?? '') ? ' (replaced)' : ''}`);
  if (figures.lost.unexplained > 0) {
    console.error(`\nLOST: ${figures.lost.unexplained} operation(s) enqueued and never finished`);
    exitCode = 1;
  }
} catch (error) {
  if (!interrupted) console.error(`\nsoak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
  run.error = error instanceof Error ? error.message : String(error);
  await mkdir(resultsDir, { recursive: true })
    .then(() => writeFile(join(resultsDir, `soak-${stamp}-failed.json`), `${JSON.stringify(run, null, 2)}\n`))
    .then(() => console.error(`Partial record: bench/results/soak-${stamp}-failed.json`))
    .catch(() => undefined);
} finally {
  await cleanup();
}
process.exitCode = interrupted ? 130 : exitCode;

/** The config: four targets on loopback; `worker` adds a header naming the worker that sends. */
function configFor(worker) {
  const headers = worker ? { headers: { 'x-soak-worker': worker } } : {};
  const target = (name, extra = {}) => ({ baseUrl: targets[name].url, allowPrivateAddresses: true, ...headers, ...extra });
  return {
    targets: {
      steady: target('steady'),
      flaky: target('flaky'),
      limited: target('limited', { limits: params.limitedConfig }),
      wobbly: target('wobbly'),
    },
  };
}

async function spawnSlot(slot) {
  await redisUp;
  if (phase === 'done') return;
  const id = `${slot.name}-${++spawnCount}`;
  const configPath = join(tmpDir, `worker-${id}.json`);
  await writeFile(configPath, JSON.stringify(configFor(id)));
  const handle = spawnWorker({ root, redisUrl: redisServer.url, queue, configPath, concurrency });
  slot.handle = handle;
  slot.id = id;
  run.workers.spawned.push({ id, at: now(), pid: handle.pid, resident: Boolean(slot.resident) });
  handle.onLine(tallyLogLine);
  void handle.exited.then(({ code, signal }) => {
    if (handle.expectedExit || phase === 'done') return;
    const tail = handle.output().trim().split('\n').slice(-5).join('\n');
    run.workers.unexpectedExits.push({ id, at: now(), code, signal, resident: Boolean(slot.resident), tail });
    log(`worker ${id} exited by itself (${signal ?? `code ${code}`})${slot.resident ? ' — the RESIDENT' : ''}: ${tail.slice(-300)}`);
    if (slot.resident) run.rss.residentReplaced = true;
    if (slot.handle !== handle) return;
    void delay(1_000)
      .then(() => (phase === 'done' ? undefined : spawnSlot(slot)))
      .catch((error) => log(`could not replace worker ${id}: ${error instanceof Error ? error.message : String(error)}`));
  });
}

function tallyLogLine(line) {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return;
  }
  if (typeof entry.level !== 'number' || entry.level < 40) return;
  const name = `${entry.level >= 50 ? 'error' : 'warn'}: ${entry.msg ?? '?'}`;
  const tally = (run.workers.logs[name] ??= { count: 0, first: undefined });
  tally.count += 1;
  tally.first ??= { at: now(), err: entry.err?.message?.slice(0, 200), limitKey: entry.limitKey };
}

/** Worker kills, Redis restarts (clean; one SIGKILL mid-run) and wobbly outages, in time order. */
function buildSchedule() {
  const events = [];
  const { runMs } = params;
  const kills = params.workerKillEveryMs;
  for (let at = kills / 2, k = 0; at < runMs - 5 * S; at += kills, k++) events.push({ at, kind: 'worker-kill', slot: slots[1 + (k % 2)] });
  const every = params.redisRestartEveryMs;
  const clean = [];
  for (let at = every; at < runMs - 10 * S; at += every) clean.push(at);
  let killAt = runMs / 2;
  const gap = Math.min(every / 4, 60 * S);
  if (clean.some((at) => Math.abs(at - killAt) < gap)) killAt += every / 2;
  if (killAt < runMs - 10 * S) events.push({ at: killAt, kind: 'redis-sigkill' });
  for (const at of clean) if (Math.abs(at - killAt) >= gap) events.push({ at, kind: 'redis-restart' });
  for (let at = params.wobblyFirstMs; at + params.wobblyDownMs[1] <= runMs; at += params.wobblyEveryMs) {
    const downMs = between(params.wobblyDownMs);
    events.push({ at, kind: 'wobbly-down', downMs }, { at: at + downMs, kind: 'wobbly-up' });
  }
  return events.sort((a, b) => a.at - b.at);
}

/** Each kind of trouble on its own timeline, so that one waiting for a busy moment delays no other. */
async function chaos(schedule) {
  const lanes = ['worker', 'redis', 'wobbly'].map((lane) => schedule.filter((item) => item.kind.startsWith(lane)));
  await Promise.all(lanes.map(runLane));
}

async function runLane(schedule) {
  for (const item of schedule) {
    while (now() < item.at && phase === 'load') await delay(Math.min(1_000, item.at - now()));
    if (phase !== 'load') return;
    try {
      if (item.kind === 'worker-kill') await killWorker(item.slot);
      else if (item.kind === 'redis-restart') await restartRedis('clean');
      else if (item.kind === 'redis-sigkill') await restartRedis('sigkill');
      else if (item.kind === 'wobbly-down') {
        await targets.wobbly.goDown();
        run.wobbly.outages.push({ downAt: now(), plannedMs: item.downMs });
        event('wobbly-down', { plannedMs: item.downMs });
        log(`wobbly DOWN (refusing connections for ${seconds(item.downMs)} s)`);
      } else if (item.kind === 'wobbly-up') {
        await targets.wobbly.comeUp();
        outageEnded();
      }
    } catch (error) {
      log(`${item.kind} failed: ${error instanceof Error ? error.message : String(error)}`);
      event(`${item.kind}-failed`, { error: String(error) });
    }
  }
}

function outageEnded() {
  const outage = run.wobbly.outages.at(-1);
  if (outage && outage.upAt === undefined) outage.upAt = now();
  event('wobbly-up');
  log('wobbly UP');
}

/**
 * Trouble is worth most while there is work: a worker kill waits (up to 25 s) until jobs are
 * active, a Redis restart until the next batch was acknowledged (then `afterMs` more, while the
 * workers record outcomes).
 */
async function busyMoment(kind, afterMs = 0) {
  const deadline = now() + 25 * S;
  if (kind === 'jobs') {
    while (phase === 'load' && now() < deadline) {
      const { active = 0 } = await bullQueue.getJobCounts('active').catch(() => ({}));
      if (active > 0) return;
      await delay(250);
    }
    return;
  }
  const acked = run.batches.filter((b) => b.ackAt !== undefined).length;
  while (phase === 'load' && now() < deadline && run.batches.filter((b) => b.ackAt !== undefined).length === acked) await delay(50);
  await delay(afterMs);
}

async function killWorker(slot) {
  await busyMoment('jobs');
  const handle = slot.handle;
  if (phase !== 'load' || !handle?.running()) return;
  handle.expectedExit = true;
  const jobs = await bullQueue.getJobCounts('active', 'waiting', 'prioritized', 'delayed').catch(() => undefined);
  await handle.kill();
  const entry = { id: slot.id, at: now(), queue: jobs };
  run.workers.kills.push(entry);
  event('worker-kill', { id: slot.id });
  log(`SIGKILLed worker ${slot.id} (queue ${JSON.stringify(jobs)}); replacing it`);
  await spawnSlot(slot);
}

async function restartRedis(how) {
  await busyMoment('batch', how === 'sigkill' ? 300 : 1_000);
  if (phase !== 'load') return;
  let release;
  redisUp = new Promise((resolve) => (release = resolve));
  const entry = { how, at: now() };
  try {
    if (how === 'sigkill') {
      // What the AOF should hold: the last operations acknowledged before the kill.
      const recent = recentlyAcked(5 * S);
      await redisServer.kill();
      entry.killedAt = now();
      await redisServer.restart();
      entry.upAt = now();
      run.redis.killCheck = await checkAfterKill(recent, entry.killedAt);
      log(
        `redis-server SIGKILLed and restarted in ${entry.upAt - entry.at} ms; of the ${recent.length} operations acknowledged in the 5 s before, ${run.redis.killCheck.missing} missing from Redis`,
      );
    } else {
      await redisServer.restart();
      entry.upAt = now();
      log(`redis-server restarted cleanly (SIGTERM) in ${entry.upAt - entry.at} ms`);
    }
  } finally {
    release();
  }
  entry.downMs = entry.upAt - entry.at;
  run.redis.restarts.push(entry);
  event(how === 'sigkill' ? 'redis-sigkill' : 'redis-restart', { downMs: entry.downMs });
}

/** Operations whose enqueue was acknowledged within `ms` before now. */
function recentlyAcked(ms) {
  const since = now() - ms;
  return run.batches
    .filter((b) => b.ackAt !== undefined && b.ackAt >= since)
    .flatMap((b) => b.ops.map((op) => ({ ...op, batchId: b.id, ackAt: b.ackAt })));
}

/** Right after the SIGKILL restart: which of those operations Redis no longer knows (no job, no result line). */
async function checkAfterKill(recent, killedAt) {
  const pipeline = redis.pipeline();
  for (const op of recent) {
    pipeline.exists(`sluice:{${queue}}:${op.jobId}`);
    pipeline.hexists(`sluice:{${queue}}:batch:${op.batchId}:results`, op.jobId);
  }
  const replies = (await pipeline.exec()) ?? [];
  const missing = recent.filter((_, i) => replies[2 * i]?.[1] !== 1 && replies[2 * i + 1]?.[1] !== 1);
  return {
    checked: recent.length,
    missing: missing.length,
    missingKeys: missing.slice(0, 20).map((op) => ({ key: op.key, ackedMsBeforeKill: killedAt - op.ackAt })),
  };
}

async function produce() {
  let batchNo = 0;
  while (phase === 'load') {
    batchNo += 1;
    const count = between(params.batchOps);
    const ops = [];
    const record = { no: batchNo, id: `soak-${runId}-${String(batchNo).padStart(4, '0')}`, at: now(), ops: [] };
    for (let i = 0; i < count; i++) {
      const { op, target, reject } = makeOperation(batchNo, i);
      ops.push(op);
      record.ops.push({ key: op.idempotencyKey, jobId: jobIdForKey(op.idempotencyKey), target, reject });
    }
    run.batches.push(record);
    record.attempts = 0;
    for (;;) {
      record.attempts += 1;
      try {
        const summary = await producer.enqueueMany(ops, { batchId: record.id });
        record.ackAt = now();
        record.enqueued = summary.enqueued;
        record.duplicates = summary.duplicates;
        break;
      } catch (error) {
        record.errors ??= [];
        record.errors.push({ at: now(), error: error instanceof Error ? error.message : String(error) });
        log(`batch ${record.no}: enqueue attempt ${record.attempts} failed (${record.errors.at(-1).error}); trying again`);
        if (record.attempts >= 30) break;
        await delay(1_000);
        await redisUp;
      }
    }
    if (batchNo % 5 === 1 || record.attempts > 1 || record.duplicates) {
      log(
        `batch ${record.no}: ${count} operations${record.attempts > 1 ? `, ${record.attempts} attempts, ${record.duplicates ?? '?'} reported duplicate` : ''}`,
      );
    }
    const waitUntil = now() + between(params.batchEveryMs);
    while (phase === 'load' && now() < waitUntil) await delay(Math.min(500, waitUntil - now()));
  }
}

function makeOperation(batchNo, i) {
  const { mix } = params;
  const r = rng();
  const target =
    r < mix.steady ? 'steady' : r < mix.steady + mix.flaky ? 'flaky' : r < mix.steady + mix.flaky + mix.limited ? 'limited' : 'wobbly';
  const reject = target === 'steady' && rng() < params.rejectShareOfSteady;
  const m = rng();
  const method = m < 0.7 ? 'POST' : m < 0.85 ? 'PUT' : m < 0.95 ? 'PATCH' : 'DELETE';
  const op = {
    method,
    url: reject ? `/reject/${batchNo}-${i}` : `/items/${batchNo}-${i}`,
    target,
    idempotencyKey: `soak-${runId}-${batchNo}-${i}`,
    meta: { batch: batchNo, i },
  };
  if (method !== 'DELETE') op.json = { batch: batchNo, i, note: 'soak' };
  return { op, target, reject };
}

async function watchCircuits(admin) {
  while (phase !== 'done') {
    await pollCircuits(admin).catch((error) => {
      // Redis restarting, mostly; counted, and the first kept.
      run.circuits.pollErrors = (run.circuits.pollErrors ?? 0) + 1;
      run.circuits.firstPollError ??= error instanceof Error ? error.message : String(error);
    });
    await delay(params.circuitPollMs);
  }
}

async function pollCircuits(admin) {
  for (const status of await admin.list()) {
    if (!status.circuit) continue;
    const previous = circuitState[status.key];
    if (previous !== undefined && previous !== status.circuit.state) {
      run.circuits.observed.push({ key: status.key, to: status.circuit.state, at: now(), waiting: status.circuit.waiting });
      event('circuit', { key: status.key, to: status.circuit.state });
      log(`circuit ${status.key}: ${status.circuit.state}${status.circuit.state === 'open' ? `, ${status.circuit.waiting} waiting` : ''}`);
    }
    circuitState[status.key] = status.circuit.state;
    // The keys with a backlog (waiting for the circuit, or booked for later slots), every 5 s: how a reopened key drains.
    const backlog = status.circuit.waiting + status.queued;
    const last = run.circuits.backlog.findLast((x) => x.key === status.key);
    if ((backlog > 0 || (last && last.waiting + last.queued > 0)) && (!last || now() - last.at >= 5 * S)) {
      run.circuits.backlog.push({
        at: now(),
        key: status.key,
        state: status.circuit.state,
        waiting: status.circuit.waiting,
        queued: status.queued,
        inFlight: status.inFlight,
        effectiveRate: status.effectiveRate,
      });
    }
  }
}

function residentRss(label) {
  const resident = slots[0].handle;
  const memory = resident?.running() ? resident.memoryMb() : undefined;
  const sample = { at: now(), label, id: slots[0].id, rssMb: memory?.rss, peakMb: memory?.peak };
  run.rss.series.push(sample);
  return sample;
}

async function sampleRss() {
  let next = params.rssWarmupMs;
  while (phase === 'load') {
    if (now() >= next) {
      const sample = residentRss(next === params.rssWarmupMs ? 'after warm-up' : 'periodic');
      if (next === params.rssWarmupMs) {
        run.rss.afterWarmup = sample;
        log(`resident worker ${sample.id}: RSS ${sample.rssMb} MB after the warm-up`);
      }
      next += params.rssEveryMs;
    }
    await delay(500);
  }
}

/** Polls until every batch is finished by its counters and no job is left in the queue; bounded. */
async function waitForBatches(batches) {
  const start = now();
  let jobCounts;
  let quietPolls = 0;
  for (;;) {
    try {
      jobCounts = await bullQueue.getJobCounts('active', 'waiting', 'prioritized', 'delayed', 'paused', 'waiting-children');
      const left = Object.values(jobCounts).reduce((a, b) => a + b, 0);
      let unfinished = 0;
      for (const batch of run.batches) {
        if (batch.ackAt === undefined) continue;
        const status = await batches.status(batch.id);
        if (!status || status.succeeded + status.deadLettered < batch.ops.length) unfinished += 1;
      }
      // Done when every batch is finished, or when nothing is left to run (two polls in a row): what is missing then is lost.
      if (unfinished === 0) break;
      quietPolls = left === 0 ? quietPolls + 1 : 0;
      if (quietPolls >= 3) break;
    } catch {
      // Redis restarting: poll again.
    }
    if (now() - start > params.drainMs) return { ms: now() - start, timedOut: true, jobCounts };
    await delay(2_000);
  }
  return { ms: now() - start, timedOut: false, jobCounts };
}

/** Every operation looked for: its batch's counters, its result line, else its job's state. */
async function account(batches) {
  const perBatch = [];
  const lostOps = [];
  const deadLetters = {};
  let succeeded = 0;
  let deadLettered = 0;
  let resultLines = 0;
  let unexpectedDeadLetters = 0;
  let rejectsSucceeded = 0;
  for (const batch of run.batches) {
    const status = await batches.status(batch.id);
    const lines = new Map();
    for await (const line of batches.results(batch.id)) lines.set(line.id, line);
    resultLines += lines.size;
    let missing = 0;
    for (const op of batch.ops) {
      const line = lines.get(op.jobId);
      if (!line) {
        missing += 1;
        if (batch.ackAt === undefined) continue;
        lostOps.push({
          batch: batch.no,
          key: op.key,
          jobId: op.jobId,
          target: op.target,
          ackAt: batch.ackAt,
          state: await bullQueue.getJobState(op.jobId).catch(() => 'error'),
        });
        continue;
      }
      if (line.outcome === 'succeeded') {
        succeeded += 1;
        if (op.reject) rejectsSucceeded += 1;
      } else {
        deadLettered += 1;
        const reason = `${line.reason ?? '?'}${line.status ? ` (${line.status})` : ''}`;
        deadLetters[reason] = (deadLetters[reason] ?? 0) + 1;
        if (!op.reject) unexpectedDeadLetters += 1;
      }
    }
    const finishedByCounters = status ? status.succeeded + status.deadLettered : 0;
    perBatch.push({
      no: batch.no,
      id: batch.id,
      at: batch.at,
      ackAt: batch.ackAt,
      attempts: batch.attempts,
      ops: batch.ops.length,
      enqueuedReported: batch.enqueued,
      duplicatesReported: batch.duplicates,
      total: status?.total,
      succeeded: status?.succeeded,
      deadLettered: status?.deadLettered,
      lostByCounters: batch.ackAt === undefined ? 0 : Math.max(0, batch.ops.length - finishedByCounters),
      lostByResults: batch.ackAt === undefined ? 0 : missing,
      resultLines: lines.size,
    });
  }
  return {
    acked: run.batches.filter((b) => b.ackAt !== undefined).reduce((n, b) => n + b.ops.length, 0),
    notAcked: run.batches.filter((b) => b.ackAt === undefined).reduce((n, b) => n + b.ops.length, 0),
    rejectsPlanned: run.batches.filter((b) => b.ackAt !== undefined).reduce((n, b) => n + b.ops.filter((op) => op.reject).length, 0),
    succeeded,
    deadLettered,
    deadLetters,
    unexpectedDeadLetters,
    rejectsSucceeded,
    resultLines,
    perBatch,
    lostOps,
  };
}

/** Every operation enqueued, one JSON line each: its batch, key, target, and how it ended. */
function operationLines() {
  const lost = new Set(run.accounting.lostOps.map((op) => op.key));
  return run.batches
    .flatMap((b) =>
      b.ops.map((op) => {
        const seen = targets[op.target].key(op.key);
        return JSON.stringify({
          batch: b.id,
          ackAt: b.ackAt ?? null,
          key: op.key,
          jobId: op.jobId,
          target: op.target,
          reject: op.reject,
          lost: lost.has(op.key),
          // What its target saw (ms since the start): requests, the first, the final answer.
          requests: seen?.requests ?? 0,
          firstAt: seen ? Math.round(seen.firstAt) : null,
          finalAt: seen && seen.finalAt >= 0 ? Math.round(seen.finalAt) : null,
        });
      }),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** The per-key detail of the targets is kept to its figures (the repeats are in figures.soak). */
function summariseTargets(summaries) {
  return Object.fromEntries(
    Object.entries(summaries).map(([name, { repeatsAfterFinal, ...rest }]) => [
      name,
      { ...rest, repeatsAfterFinal: repeatsAfterFinal.length },
    ]),
  );
}

async function redisInfo() {
  try {
    const text = await redis.info();
    const pick = (name) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim();
    return {
      usedMemoryMb: Math.round(Number(pick('used_memory')) / 1024 / 102.4) / 10,
      aofEnabled: pick('aof_enabled'),
      aofLastWriteStatus: pick('aof_last_write_status'),
      aofDelayedFsync: pick('aof_delayed_fsync'),
      keys: pick('db0'),
    };
  } catch (error) {
    return { error: String(error) };
  }
}
