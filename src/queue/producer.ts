import { randomBytes, randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { ValidationError, type Issue } from '../errors.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { parseOperation } from '../operation/parse-operation.js';
import { jobIdForKey, queueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { createJobAdder } from './add-jobs.js';
import { NEW_JOB_PRIORITY, defaultIdempotencyKey, type JobEnvelope } from './job-data.js';
import { closeRedis, createRedisConnection } from '../redis/connection.js';
import { openBullQueue } from './bull-queue.js';

export interface ProducerOptions {
  /** A Redis URL (the producer opens and closes its own client) or a client to borrow. */
  connection: string | Redis;
  /** Queue name. Default `default`. */
  queue?: string;
  /** Targets the operations may name. Default: none. */
  config?: SluiceConfig;
  /** How long an idempotency key dedups, in seconds (longer while its job is still stored). Default 86,400 (24 h). */
  dedupWindowSeconds?: number;
  /** How long batch counters and results are kept, in seconds. Default 604,800 (7 days). */
  batchRetentionSeconds?: number;
  /** Operations written per `addBulk` call. Default 500. */
  chunkSize?: number;
}

export interface EnqueueOptions {
  /** Batch to count the operation(s) in. `enqueueMany` makes one up when absent. */
  batchId?: string;
}

export interface EnqueueResult {
  /** The job id: the first job's id when this was a duplicate. */
  id: string;
  duplicate: boolean;
}

export interface EnqueueManyOptions extends EnqueueOptions {
  /** Keep each item's id and duplicate flag in the answer. Default true; false for huge streams. */
  collectResults?: boolean;
  /**
   * Every item was already checked with `parseOperation` against this producer's config (as
   * `sluice enqueue` and the HTTP API do before they enqueue anything): skip checking it again.
   * Workers check every operation anyway. Default false.
   */
  prevalidated?: boolean;
}

export interface EnqueueManySummary {
  batchId: string;
  enqueued: number;
  duplicates: number;
  results: EnqueueResult[];
}

export interface Producer {
  readonly queue: string;
  /** Validates and enqueues one operation. Throws ValidationError (nothing enqueued) when invalid. */
  enqueue(operation: unknown, options?: EnqueueOptions): Promise<EnqueueResult & { batchId: string | undefined }>;
  /**
   * Enqueues operations from an array or (async) iterable in chunks. Each chunk is validated whole
   * before it is written; an invalid item throws a ValidationError naming its index, after the
   * chunks before it were written. Validate first (as `sluice enqueue` does) for all-or-nothing.
   */
  enqueueMany(operations: Iterable<unknown> | AsyncIterable<unknown>, options?: EnqueueManyOptions): Promise<EnqueueManySummary>;
  close(): Promise<void>;
}

/** A batch counts as still being filled this long after its producer's last chunk. */
const ENQUEUING_TTL_MS = 60_000;

/** How long a claimed idempotency key is held before its job is added. */
const CLAIM_TTL_MS = 60_000;

export const BATCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A readable, sortable, unique batch id: `b-20261126T054012-3f9a1c`. */
export function newBatchId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `b-${stamp}-${randomBytes(3).toString('hex')}`;
}

export function createProducer(options: ProducerOptions): Producer {
  const queueName = options.queue ?? 'default';
  const config = options.config ?? EMPTY_CONFIG;
  const dedupWindowMs = (options.dedupWindowSeconds ?? 86_400) * 1_000;
  const batchRetention = options.batchRetentionSeconds ?? 7 * 86_400;
  const chunkSize = options.chunkSize ?? 500;
  const ownsConnection = typeof options.connection === 'string';
  const redis =
    typeof options.connection === 'string' ? createRedisConnection(options.connection, { name: 'sluice:producer' }) : options.connection;
  const queue = openBullQueue(redis, queueName);
  // Redis errors reach the caller through the enqueue that fails; without a listener BullMQ prints each one.
  queue.on('error', () => undefined);
  const keys = queueKeys(queueName);
  const claimKeys = defineScript(redis, 'claim-keys');
  const addJobs = createJobAdder(redis, queue, 'op', NEW_JOB_PRIORITY);
  let closing: Promise<void> | undefined;

  interface Prepared {
    envelope: JobEnvelope;
    jobId: string;
    dedupKey: string | undefined;
  }

  function prepare(input: unknown, index: number | undefined, batchId: string | undefined, prevalidated = false): Prepared {
    let givenKey: string | undefined;
    if (prevalidated) {
      givenKey = (input as { idempotencyKey?: string }).idempotencyKey;
    } else {
      const parsed = parseOperation(input, config);
      if (!parsed.ok) {
        const where = index === undefined ? 'operation' : `operation at index ${index}`;
        throw new ValidationError(where, parsed.issues);
      }
      givenKey = parsed.operation.idempotencyKey;
    }
    const jobId = givenKey === undefined ? `u-${randomUUID()}` : jobIdForKey(givenKey);
    const envelope: JobEnvelope = { op: input, opId: jobId, idempotencyKey: givenKey ?? defaultIdempotencyKey(jobId) };
    if (batchId !== undefined) envelope.batchId = batchId;
    return { envelope, jobId, dedupKey: givenKey === undefined ? undefined : keys.idempotency(givenKey) };
  }

  /**
   * Writes one validated chunk: claim its idempotency keys (atomically, so concurrent producers and
   * repeats inside the chunk cannot both win), skip the keys already held, add the rest.
   */
  async function writeChunk(chunk: Prepared[], batchId: string | undefined): Promise<EnqueueResult[]> {
    const keyed = chunk.filter((item) => item.dedupKey !== undefined);
    const holders = keyed.length
      ? ((await claimKeys(
          keyed.length * 2,
          ...keyed.flatMap((item) => [item.dedupKey!, queue.toKey(item.jobId)]),
          ...keyed.map((item) => item.jobId),
          CLAIM_TTL_MS,
        )) as string[])
      : [];
    const firstIds = new Map<Prepared, string>();
    keyed.forEach((item, i) => {
      const holder = holders[i];
      if (holder) firstIds.set(item, holder);
    });

    const results: EnqueueResult[] = [];
    const toAdd: Prepared[] = [];
    for (const item of chunk) {
      const first = firstIds.get(item);
      if (first !== undefined) {
        results.push({ id: first, duplicate: true });
        continue;
      }
      toAdd.push(item);
      results.push({ id: item.jobId, duplicate: false });
    }
    if (toAdd.length === 0) return results;

    if (batchId !== undefined) {
      // Counted before the jobs exist, so a fast worker can never finish more than the total.
      const counting = redis
        .multi()
        .hincrby(keys.batch(batchId), 'total', toAdd.length)
        .hsetnx(keys.batch(batchId), 'createdAt', new Date().toISOString())
        .expire(keys.batch(batchId), batchRetention);
      await indexBatch(counting, batchId).exec();
    }
    try {
      await addJobs(toAdd.map((item) => ({ id: item.jobId, data: item.envelope })));
    } catch (error) {
      if (batchId !== undefined) await redis.hincrby(keys.batch(batchId), 'total', -toAdd.length).catch(() => undefined);
      // Release our claims so the operations can be enqueued again.
      const claimed = toAdd.flatMap((item) => (item.dedupKey === undefined ? [] : [item.dedupKey]));
      if (claimed.length) await redis.del(...claimed).catch(() => undefined);
      throw error;
    }
    const claimed = toAdd.filter((item) => item.dedupKey !== undefined);
    if (claimed.length) {
      const pipeline = redis.pipeline();
      for (const item of claimed) pipeline.pexpire(item.dedupKey!, dedupWindowMs);
      await pipeline.exec();
    }
    return results;
  }

  /** Lists the batch among the queue's recent ones (first sight only), dropping those past retention. */
  function indexBatch(transaction: ChainableCommander, batchId: string): ChainableCommander {
    const now = Date.now();
    return transaction.zadd(keys.batchIndex, 'NX', now, batchId).zremrangebyscore(keys.batchIndex, '-inf', now - batchRetention * 1_000);
  }

  function checkBatchId(batchId: string | undefined): void {
    if (batchId !== undefined && !BATCH_ID.test(batchId)) {
      const issue: Issue = { path: 'batchId', message: 'letters, digits and _ . : - only, at most 128' };
      throw new ValidationError('batch id', [issue]);
    }
  }

  async function enqueue(operation: unknown, enqueueOptions: EnqueueOptions = {}) {
    checkBatchId(enqueueOptions.batchId);
    const [result] = await writeChunk([prepare(operation, undefined, enqueueOptions.batchId)], enqueueOptions.batchId);
    return { ...result!, batchId: enqueueOptions.batchId };
  }

  async function enqueueMany(operations: Iterable<unknown> | AsyncIterable<unknown>, manyOptions: EnqueueManyOptions = {}) {
    checkBatchId(manyOptions.batchId);
    const batchId = manyOptions.batchId ?? newBatchId();
    const collect = manyOptions.collectResults ?? true;
    const prevalidated = manyOptions.prevalidated ?? false;
    const summary: EnqueueManySummary = { batchId, enqueued: 0, duplicates: 0, results: [] };
    const write = async (chunk: Prepared[]) => {
      for (const result of await writeChunk(chunk, batchId)) {
        if (result.duplicate) summary.duplicates += 1;
        else summary.enqueued += 1;
        if (collect) summary.results.push(result);
      }
    };
    // The batch exists from the start (also when every item turns out a duplicate), and says it is
    // still being filled, so `wait` does not call it done between two chunks.
    const enqueuing = keys.batchEnqueuing(batchId);
    const opening = redis
      .multi()
      .hsetnx(keys.batch(batchId), 'createdAt', new Date().toISOString())
      .hincrby(keys.batch(batchId), 'total', 0)
      .expire(keys.batch(batchId), batchRetention)
      .set(enqueuing, '1', 'PX', ENQUEUING_TTL_MS);
    await indexBatch(opening, batchId).exec();
    // One chunk is written while the next is read and validated: Redis and this process work at once.
    let writing: Promise<void> | undefined;
    let failed: unknown;
    const startWrite = (chunk: Prepared[]) => {
      writing = write(chunk).then(() => redis.pexpire(enqueuing, ENQUEUING_TTL_MS).then(() => undefined));
      // Observed at once, rethrown at the next await: a Redis error is never an unhandled rejection.
      writing.catch((error: unknown) => {
        failed ??= error;
      });
    };
    let chunk: Prepared[] = [];
    let index = 0;
    try {
      for await (const operation of operations) {
        chunk.push(prepare(operation, index, batchId, prevalidated));
        index += 1;
        if (chunk.length >= chunkSize) {
          await writing;
          if (failed !== undefined) throw failed;
          startWrite(chunk);
          chunk = [];
        }
      }
      await writing;
      if (chunk.length) await write(chunk);
    } finally {
      await writing?.catch(() => undefined);
      await redis.del(enqueuing).catch(() => undefined);
    }
    return summary;
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      await queue.close();
      if (ownsConnection) await closeRedis(redis);
    })();
    return closing;
  }

  return { queue: queueName, enqueue, enqueueMany, close };
}
