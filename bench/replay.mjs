/**
 * (16) A dead-letter replay, as single jobs and in lanes: `deadLetters` operations enqueued (in
 * lanes) to a fast target with `expect.status` [201], so that each is dead-lettered
 * (`permanent-status`) by one sluice worker; the worker stops; then `sluice dlq replay --batch B`
 * runs in its own process, with SLUICE_LANES off or on, timed from its spawn to its exit. Around the
 * replay: Redis command counts and CPU, and the jobs it wrote (BullMQ's prioritized set).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { startFastTarget } from './fast-target.mjs';
import { commandStats, redisCpuMs, resetStats, round, totalCalls } from './redis-stats.mjs';
import { spawnSluice, spawnWorker } from './worker-processes.mjs';

const lib = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const { createProducer } = await lib('queue/producer.js');
const { createBatches } = await lib('outcomes/batches.js');
const { bullQueueName, PREFIX } = await lib('redis/keys.js');

const TIMEOUT_MS = 300_000;

export async function runReplay(ctx, { label, deadLetters, lanes }) {
  const { redis, redisUrl } = ctx;
  await redis.flushall();
  const target = await startFastTarget();
  const queue = `bench-${label}`;
  const batchId = `bench-${label}`;
  const config = { targets: { fast: { baseUrl: target.url, allowPrivateAddresses: true } }, limits: {} };
  const configPath = join(ctx.tmpDir, `${label}.json`);
  await writeFile(configPath, JSON.stringify(config));
  const batches = createBatches(redis, queue);
  try {
    const producer = createProducer({ connection: redisUrl, queue, config, lanes: true });
    try {
      const ops = (function* () {
        for (let i = 0; i < deadLetters; i++)
          yield { target: 'fast', method: 'POST', url: '/items', json: { i }, expect: { status: [201] } };
      })();
      await producer.enqueueMany(ops, { batchId, collectResults: false });
    } finally {
      await producer.close();
    }
    const worker = spawnWorker({ root: ctx.root, redisUrl, queue, configPath, concurrency: 100 });
    const startedAt = performance.now();
    while ((await batches.status(batchId))?.deadLettered !== deadLetters) {
      if (!worker.running()) throw new Error(`${label}: the worker exited; its output ended with:\n${worker.output()}`);
      if (performance.now() - startedAt > TIMEOUT_MS) throw new Error(`${label}: not dead-lettered after ${TIMEOUT_MS / 1000} s`);
      await delay(50);
    }
    await worker.stop();

    const prioritized = `${PREFIX}:${bullQueueName(queue)}:prioritized`;
    await resetStats(redis);
    const cpuBefore = await redisCpuMs(redis);
    const replayStartedAt = performance.now();
    const replay = spawnSluice({ root: ctx.root, redisUrl, queue, configPath, env: { SLUICE_LANES: lanes ? 'on' : 'off' } }, [
      'dlq',
      'replay',
      '--batch',
      batchId,
    ]);
    const { code, signal } = await Promise.race([
      replay.exited,
      delay(TIMEOUT_MS, undefined, { ref: false }).then(() => ({ code: 'timeout' })),
    ]);
    const ms = performance.now() - replayStartedAt;
    if (code !== 0) throw new Error(`${label}: dlq replay exited with ${code ?? signal}; its output ended with:\n${replay.output()}`);
    const redisCpu = (await redisCpuMs(redis)) - cpuBefore;
    const calls = totalCalls((await commandStats(redis)).calls);
    if (!replay.output().includes(`replayed ${deadLetters} dead letters`))
      throw new Error(`${label}: dlq replay said:\n${replay.output()}`);
    const status = await batches.status(batchId);
    if (status?.deadLettered !== 0) throw new Error(`${label}: the batch still counts ${status?.deadLettered} dead letters`);
    return {
      label,
      lanes,
      deadLetters,
      ms: round(ms, 0),
      perSecond: round((deadLetters * 1000) / ms, 0),
      jobs: await redis.zcard(prioritized),
      redisCommandsPerOp: round(calls / deadLetters, 2),
      redisCpuUsPerOp: round((redisCpu * 1000) / deadLetters, 1),
    };
  } finally {
    await target.close();
  }
}
