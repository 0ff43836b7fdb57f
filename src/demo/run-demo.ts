import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SluiceError, errorMessage } from '../errors.js';
import { parseSluiceConfig } from '../config/sluice-config.js';
import { createBatches, waitForBatch, type BatchStatus } from '../outcomes/batches.js';
import { queueKeyPattern, schedulesKeyPattern } from '../redis/keys.js';
import { createProducer, newBatchId } from '../queue/producer.js';
import { closeRedis, createRedisConnection, redactUrl } from '../redis/connection.js';
import { scanKeys } from '../redis/scan-keys.js';
import { redisAnswers, startRedisServer } from '../support/redis-server.js';
import { sluiceBin } from '../support/package-root.js';
import { startDemoApi } from './demo-api.js';
import { removeLimitKey } from '../limits/limits-admin.js';
import { openBullQueue } from '../queue/bull-queue.js';

/** The demo API's own limit, and the (lower) limit sluice is configured with for it. */
const DEMO_API_LIMIT = 400;
const DEMO_LIMIT = 300;

export interface DemoOptions {
  /** A Redis to use; when absent, localhost:6379 if it answers, else a private redis-server. */
  redisUrl?: string;
  operations?: number;
  workers?: number;
  concurrency?: number;
  /** Where progress and the summary go. */
  out: NodeJS.WritableStream;
  /** Called with each batch reading (the CLI draws its progress bar from it). */
  onProgress?: (status: BatchStatus) => void;
  /** The environment for the worker processes. */
  env: Record<string, string | undefined>;
}

export interface DemoSummary {
  batch: BatchStatus;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  created: number;
  expectedCreated: number;
  /** The limit sluice was given for the demo API, requests/s. */
  limit: number;
  /** Requests the demo API refused (429) for going over its own limit. */
  rejectedByApiLimit: number;
  workerLog: string;
}

/** Releasers run in reverse order; every one runs even when an earlier one fails. */
type Release = () => Promise<void>;

/**
 * The main job on embedded defaults: a Redis, a local demo API with latency and injected 503/429s,
 * a batch of POSTs (plus a few GETs of missing records that end as dead letters), two worker
 * processes, live progress, and a summary. Stops everything it started.
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const releases: Release[] = [];
  const say = (line: string) => options.out.write(`${line}\n`);
  try {
    const redisUrl = await chooseRedis(options.redisUrl, releases, say);
    const api = await startDemoApi({
      failureRate: 0.08,
      retryAfterShare: 0.01,
      rateLimitRate: 0,
      strictLimit: { requestsPerSecond: DEMO_API_LIMIT, burst: 40 },
    });
    releases.push(() => api.close());
    const limitKey = new URL(api.url).host;
    say(
      `demo API listening on ${api.url} (5-40 ms latency, ~8% 503s, a few with Retry-After; answers 429 above ${DEMO_API_LIMIT} requests/s)`,
    );

    const queue = `demo-${randomBytes(4).toString('hex')}`;
    const redis = createRedisConnection(redisUrl, { name: 'sluice:demo' });
    releases.push(() => closeRedis(redis));
    releases.push(() => removeQueue(redis, queue, limitKey));

    const total = options.operations ?? 3_000;
    const missing = Math.max(1, Math.floor(total / 100));
    const batchId = newBatchId();
    // The demo API is on loopback: a target for it says so (sluice refuses internal addresses otherwise).
    const configJson = {
      targets: { 'demo-api': { baseUrl: api.url, allowPrivateAddresses: true } },
      limits: { [limitKey]: { requestsPerSecond: DEMO_LIMIT, burst: 20 } },
    };
    const producer = createProducer({ connection: redis, queue, config: parseSluiceConfig(configJson) });
    releases.push(() => producer.close());
    const runId = randomBytes(4).toString('hex');
    await producer.enqueueMany(demoOperations(api.url, total - missing, missing, runId), { batchId, collectResults: false });
    say(
      `enqueued ${total} operations as batch ${batchId} in queue ${queue} (${total - missing} POST /records, ${missing} GETs of records that do not exist)`,
    );

    const logDir = await mkdtemp(join(tmpdir(), 'sluice-demo-'));
    const workerLog = join(logDir, 'workers.log');
    const configPath = join(logDir, 'sluice.config.json');
    await writeFile(configPath, JSON.stringify(configJson, null, 2));
    const workerEnv = { ...options.env, REDIS_URL: redisUrl, SLUICE_QUEUE: queue, SLUICE_CONFIG: configPath };
    const workers = startWorkers(options.workers ?? 2, options.concurrency ?? 25, workerEnv, workerLog);
    releases.push(() => stopWorkers(workers));
    say(
      `started ${workers.length} worker processes sharing a limit of ${DEMO_LIMIT} requests/s on ${limitKey} (config ${configPath}; logs ${workerLog})`,
    );

    const started = Date.now();
    const batches = createBatches(redis, queue);
    const { status, timedOut } = await waitForBatch(batches, batchId, {
      timeoutMs: 5 * 60_000,
      intervalMs: 250,
      ...(options.onProgress ? { onUpdate: options.onProgress } : {}),
    });
    if (!status || timedOut) {
      throw new SluiceError(`the demo batch did not finish in 5 minutes (${JSON.stringify(status)}); see ${workerLog}`, {
        code: 'DEMO_TIMEOUT',
      });
    }
    const seconds = (Date.now() - started) / 1_000;
    const stats = api.stats();
    return {
      batch: status,
      seconds,
      requests: stats.requests,
      requestsPerSecond: stats.requests / seconds,
      created: stats.created,
      expectedCreated: total - missing,
      limit: DEMO_LIMIT,
      rejectedByApiLimit: stats.limited,
      workerLog,
    };
  } finally {
    for (const release of releases.reverse()) {
      await release().catch((error: unknown) => say(`cleanup: ${errorMessage(error)}`));
    }
  }
}

async function chooseRedis(explicit: string | undefined, releases: Release[], say: (line: string) => void): Promise<string> {
  if (explicit) {
    say(`using Redis at ${redactUrl(explicit)} (REDIS_URL)`);
    return explicit;
  }
  const local = 'redis://127.0.0.1:6379';
  if (await redisAnswers(local)) {
    say(`using the Redis that answers at ${local}`);
    return local;
  }
  const server = await startRedisServer();
  releases.push(() => server.stop());
  say(`no Redis at ${local}: started a private redis-server at ${server.url}`);
  return server.url;
}

function* demoOperations(baseUrl: string, posts: number, missing: number, runId: string): Generator<unknown> {
  const every = Math.max(1, Math.floor((posts + missing) / missing));
  let made = 0;
  for (let i = 0; made < missing || i < posts; i += 1) {
    if (made < missing && i % every === every - 1) {
      made += 1;
      yield {
        method: 'GET',
        url: `${baseUrl}/records/missing-${made}`,
        retry: { attempts: 3, baseDelayMs: 100 },
        meta: { kind: 'lookup', n: made },
      };
    }
    if (i < posts) {
      yield {
        method: 'POST',
        url: `${baseUrl}/records`,
        json: { sku: `SKU-${i}`, quantity: (i % 7) + 1 },
        idempotencyKey: `demo-${runId}-${i}`,
        retry: { attempts: 10, baseDelayMs: 200, maxDelayMs: 5_000 },
        meta: { row: i },
      };
    }
  }
}

function startWorkers(count: number, concurrency: number, env: Record<string, string | undefined>, logPath: string): ChildProcess[] {
  const log = createWriteStream(logPath, { flags: 'a' });
  const workers: ChildProcess[] = [];
  for (let i = 0; i < count; i += 1) {
    const child = spawn(process.execPath, [sluiceBin(), 'worker', '--concurrency', String(concurrency)], {
      // No metrics publishing: nothing scrapes the demo, and it leaves nothing behind in Redis.
      env: { ...env, LOG_LEVEL: env['LOG_LEVEL'] ?? 'info', SLUICE_SHUTDOWN_TIMEOUT_MS: '5000', SLUICE_METRICS_INTERVAL_MS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    workers.push(child);
  }
  return workers;
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

/** The demo's queue and limit key are its own: remove its jobs, sluice's keys beside them and its limiter state. */
async function removeQueue(redis: ReturnType<typeof createRedisConnection>, queue: string, limitKey: string): Promise<void> {
  await removeLimitKey(redis, limitKey);
  const bull = openBullQueue(redis, queue);
  try {
    await bull.obliterate({ force: true });
  } finally {
    await bull.close();
  }
  // And the keys its workers' schedule runners made on the queue's tick queue.
  for (const pattern of [queueKeyPattern(queue), schedulesKeyPattern(queue)]) {
    // One hash tag (the queue's): one slot, so one UNLINK may name them all, also on a cluster.
    await scanKeys(redis, pattern, 1_000, async (keys) => {
      if (keys.length) await redis.unlink(...keys);
    });
  }
}
