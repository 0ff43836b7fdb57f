import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ValidationError, type Issue } from '../errors.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { parseOperation } from '../operation/parse-operation.js';
import { BATCH_ID_RULE, isBatchId, jobIdForKey, queueKeys, type QueueKeys } from '../redis/keys.js';
import { defaultIdempotencyKey, type JobEnvelope } from './job-data.js';
import { closeRedis, createRedisConnection } from '../redis/connection.js';
import { openBullQueue } from './bull-queue.js';
import { createBatchBookkeeper } from './batch-bookkeeping.js';
import { createChunkWriter, type EnqueueResult, type PreparedJob } from './chunk-writer.js';

export type { EnqueueResult } from './chunk-writer.js';

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

export { BATCH_ID } from '../redis/keys.js';

/** A readable, sortable, unique batch id: `b-20261126T054012-3f9a1c`. */
export function newBatchId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `b-${stamp}-${randomBytes(3).toString('hex')}`;
}

export function createProducer(options: ProducerOptions): Producer {
  const queueName = options.queue ?? 'default';
  // Checks the queue name before anything is opened.
  const keys = queueKeys(queueName);
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
  const batches = createBatchBookkeeper(redis, keys, batchRetention);
  const writeChunk = createChunkWriter({ redis, queue, batches, dedupWindowMs });
  let closing: Promise<void> | undefined;

  async function enqueue(operation: unknown, enqueueOptions: EnqueueOptions = {}) {
    checkBatchId(enqueueOptions.batchId);
    const [result] = await writeChunk([prepareJob(config, keys, operation, undefined, enqueueOptions.batchId)], enqueueOptions.batchId);
    return { ...result!, batchId: enqueueOptions.batchId };
  }

  async function enqueueMany(operations: Iterable<unknown> | AsyncIterable<unknown>, manyOptions: EnqueueManyOptions = {}) {
    checkBatchId(manyOptions.batchId);
    const batchId = manyOptions.batchId ?? newBatchId();
    const collect = manyOptions.collectResults ?? true;
    const prevalidated = manyOptions.prevalidated ?? false;
    const summary: EnqueueManySummary = { batchId, enqueued: 0, duplicates: 0, results: [] };
    const write = async (chunk: PreparedJob[]) => {
      for (const result of await writeChunk(chunk, batchId)) {
        if (result.duplicate) summary.duplicates += 1;
        else summary.enqueued += 1;
        if (collect) summary.results.push(result);
      }
    };
    await batches.open(batchId);
    // One chunk is written while the next is read and validated: Redis and this process work at once.
    let writing: Promise<void> | undefined;
    let failed: unknown;
    const startWrite = (chunk: PreparedJob[]) => {
      writing = write(chunk).then(() => batches.stillEnqueuing(batchId));
      // Observed at once, rethrown at the next await: a Redis error is never an unhandled rejection.
      writing.catch((error: unknown) => {
        failed ??= error;
      });
    };
    let chunk: PreparedJob[] = [];
    let index = 0;
    try {
      for await (const operation of operations) {
        chunk.push(prepareJob(config, keys, operation, index, batchId, prevalidated));
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
      await batches.doneEnqueuing(batchId);
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

function checkBatchId(batchId: string | undefined): void {
  if (batchId !== undefined && !isBatchId(batchId)) {
    const issue: Issue = { path: 'batchId', message: `${JSON.stringify(batchId)}: ${BATCH_ID_RULE}` };
    throw new ValidationError('batch id', [issue]);
  }
}

/** Validates an operation (unless `prevalidated`) and makes its job: id, envelope, idempotency key. */
function prepareJob(
  config: SluiceConfig,
  keys: QueueKeys,
  input: unknown,
  index: number | undefined,
  batchId: string | undefined,
  prevalidated = false,
): PreparedJob {
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
