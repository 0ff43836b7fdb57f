import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.js';
import { EnqueueIncompleteError, ValidationError, type Issue } from '../errors.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { BATCH_ID_RULE, isBatchId, queueKeys } from '../redis/keys.js';
import { closeRedis, createRedisConnection } from '../redis/connection.js';
import { createBatchBookkeeper } from './batch-bookkeeping.js';
import type { EnqueueResult } from './chunk-writer.js';
import { createShardWriters, PartChunkError, type Reroute } from './shard-writers.js';
import { shardCountReader, shardNames } from './shards.js';
import { replicaCheck, type ReplicaAck } from './replicated.js';
import { createLineJoin, createLineLeave } from '../limits/line-join.js';
import { operationRulesOf } from '../limits/limit-keys.js';
import { prepareJob, rerouteJob, type Position, type PreparedJob } from './prepare-job.js';
import { DEFAULT_LANE_SIZE, laneSizes } from './lanes.js';

export type { EnqueueResult } from './chunk-writer.js';
export type { ReplicaAck } from './replicated.js';

export interface ProducerOptions {
  /** A Redis URL (the producer opens and closes its own client) or a client to borrow. */
  connection: string | RedisClient;
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
  /**
   * Operations of one `enqueueMany` that share limit keys travel together as one BullMQ job, a
   * *lane* (see queue/lanes.ts). Workers older than lanes cannot run them: turn this on once every
   * worker is upgraded. Default false (`SLUICE_LANES`).
   */
  lanes?: boolean;
  /**
   * An enqueue is answered only once this many replicas of the Redis that holds the queue have each
   * chunk (WAIT), within `timeoutMs`; fewer in time fail the enqueue (`REDIS_UNREACHABLE`; the chunk
   * is written, and a resumable input enqueued again adds nothing twice). For a Redis (or a
   * cluster's masters) with replicas, where a failover would lose writes not yet replicated.
   * Default: answered once the master has it (`SLUICE_ENQUEUE_REPLICAS=0`).
   */
  replicas?: ReplicaAck;
  /** The most operations in a lane; a key limited to R/s gets lanes of at most R. Default 100 (`SLUICE_LANE_SIZE`). */
  laneSize?: number;
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
  /**
   * The operations are one input read the same way every time (a file): each has a place made of
   * the batch id, `source`, its position (`positionOf`, default its index in this call) and its
   * content. An operation without an idempotency key gets a job id from its place, so the same call
   * again into the same batch — after it failed part-way — adds only what is missing: what it finds
   * at its own place counts as `alreadyEnqueued`, not as a duplicate. Default false: random job ids
   * (several calls may add different operations to one batch at the same index).
   */
  resumable?: boolean | ResumableInput;
  /**
   * Called after each chunk is written with how many operations are written so far (enqueued,
   * duplicates and already enqueued): a progress bar of what is in Redis, not of what was read.
   */
  onWritten?: (written: number) => void;
  /**
   * Called once the batch is opened, before anything is written to it, with its id (made here when
   * none was given): to say which batch a long enqueue fills, and how to finish it should it stop.
   */
  onOpened?: (batchId: string) => void;
}

export interface ResumableInput {
  /** Tells this input from others added to the same batch. Default ''. */
  source?: string;
  /** An operation's position in the input: `sluice enqueue` gives its line, so a fixed line keeps the others' places. */
  positionOf?: (operation: unknown, index: number) => number | string | undefined;
}

export interface EnqueueManySummary {
  batchId: string;
  enqueued: number;
  duplicates: number;
  /** Found at their place in the batch already (a resumable input enqueued again). */
  alreadyEnqueued: number;
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
   * Any other failure (Redis, the input) throws an EnqueueIncompleteError that says how many were
   * written; with `resumable`, the same call again finishes the batch.
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
  const queueName = checkProducerNumbers(options).queue ?? 'default';
  // Checks the queue name before anything is opened (and the numbers, above).
  const keys = queueKeys(queueName);
  const config = options.config ?? EMPTY_CONFIG;
  const dedupWindowMs = (options.dedupWindowSeconds ?? 86_400) * 1_000;
  const batchRetention = options.batchRetentionSeconds ?? 7 * 86_400;
  const chunkSize = options.chunkSize ?? 500;
  const replicas = options.replicas && options.replicas.count > 0 ? options.replicas : undefined;
  // WAIT blocks its connection and counts its writes only: waiting for replicas, the producer writes
  // on a connection of its own rather than stall whoever shares a borrowed one (the server's).
  const ownsConnection = typeof options.connection === 'string' || replicas !== undefined;
  const redis =
    typeof options.connection === 'string'
      ? createRedisConnection(options.connection, { name: 'sluice:producer' })
      : replicas
        ? options.connection.duplicate()
        : options.connection;
  const batches = createBatchBookkeeper(redis, keys, batchRetention);
  const prep = { config, ...operationRulesOf(redis) };
  const laneSize = options.lanes ? (options.laneSize ?? DEFAULT_LANE_SIZE) : 1;
  const shardCount = shardCountReader(redis, queueName);
  const shards = createShardWriters({
    redis,
    queueName,
    dedupWindowMs,
    batchRetentionSeconds: batchRetention,
    lineJoin: createLineJoin(redis, config),
    lineLeave: createLineLeave(redis),
    ...(laneSize > 1 ? { laneSizeFor: laneSizes(config, laneSize) } : {}),
  });
  const { spread, writeChunk, newBatches } = shards;
  /** Routes keyed jobs by the queue's shard count read again (after a shard refused the count they had). */
  const rerouted =
    (batchCount: number): Reroute =>
    async () => {
      const { count, highest } = await shardCount.refresh();
      const shards = spread(count, batchCount);
      return { route: (item) => rerouteJob(item, shards), highest };
    };
  // One WAIT per shard written and per answer, after its last write: it covers every write before it on the connection.
  const begin = async (count: number) => {
    if (!replicas) return undefined;
    const check = replicaCheck(
      redis,
      shardNames(queueName, count).map((name) => queueKeys(name).batchIndex),
      replicas,
    );
    return { check, begunOn: await check.begin() };
  };
  const confirm = async (begun: Awaited<ReturnType<typeof begin>>) => begun?.check.confirm(begun.begunOn);
  let closing: Promise<void> | undefined;

  async function enqueue(operation: unknown, enqueueOptions: EnqueueOptions = {}) {
    const { batchId } = enqueueOptions;
    checkBatchId(batchId);
    const { count } = await shardCount();
    const prepared = prepareJob({ ...prep, shards: spread(count, count), batchId, prevalidated: false }, operation, undefined);
    const begun = await begin(count);
    let result: EnqueueResult;
    try {
      [result] = (await writeChunk([prepared], batchId, rerouted(count))) as [EnqueueResult];
    } catch (error) {
      throw error instanceof PartChunkError ? error.cause : error;
    }
    await confirm(begun);
    return { ...result, batchId };
  }

  async function enqueueMany(operations: Iterable<unknown> | AsyncIterable<unknown>, manyOptions: EnqueueManyOptions = {}) {
    checkOperations(operations);
    checkBatchId(manyOptions.batchId);
    const batchId = newBatches.begin(manyOptions.batchId, newBatchId);
    const collect = manyOptions.collectResults ?? true;
    const positionOf = positions(batchId, manyOptions.resumable);
    const summary: EnqueueManySummary = { batchId, enqueued: 0, duplicates: 0, alreadyEnqueued: 0, results: [] };
    const tally = tallyInto(summary, collect);
    // highest: the shards an earlier run of the batch may have written its keyed lines to (see placedElsewhere).
    let [reroute, highest]: [Reroute, number] = [rerouted(1), 1];
    const write = async (chunk: PreparedJob[]) => {
      let written: readonly (EnqueueResult | undefined)[];
      try {
        written = await writeChunk(chunk, batchId, reroute, highest);
      } catch (error) {
        // The shards' parts that were written count in what the failure reports.
        if (!(error instanceof PartChunkError)) throw error;
        for (const result of error.written) if (result) tally(result);
        throw error.cause;
      }
      for (const result of written) tally(result!);
      manyOptions.onWritten?.(summary.enqueued + summary.duplicates + summary.alreadyEnqueued);
    };
    try {
      // The batch is spread as when it was first opened (an input enqueued again finds its lines' places).
      // Read now, not from the cache: a new batch is spread as the queue is now.
      const { count, highest: ever } = await shardCount.refresh();
      highest = ever;
      const batchCount = await batches.open(batchId, count);
      manyOptions.onOpened?.(batchId);
      const begun = await begin(Math.max(count, batchCount));
      const prepareOptions = { ...prep, shards: spread(count, batchCount), batchId, prevalidated: manyOptions.prevalidated ?? false };
      reroute = rerouted(batchCount);
      await writeInChunks(
        operations,
        chunkSize,
        (operation, index) => prepareJob(prepareOptions, operation, index, positionOf?.(operation, index)),
        {
          write,
          between: () => batches.stillEnqueuing(batchId),
        },
      );
      await confirm(begun);
    } catch (error) {
      if (error instanceof ValidationError) throw error;
      const { enqueued, duplicates, alreadyEnqueued } = summary;
      throw new EnqueueIncompleteError(batchId, { enqueued, duplicates, alreadyEnqueued }, error);
    } finally {
      newBatches.end(batchId);
      await batches.doneEnqueuing(batchId);
    }
    return summary;
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      await shards.close();
      if (ownsConnection) await closeRedis(redis);
    })();
    return closing;
  }

  return { queue: queueName, enqueue, enqueueMany, close };
}

/** Counts a chunk's answers in an enqueueMany summary (and lists them, when `collect`). */
function tallyInto(summary: EnqueueManySummary, collect: boolean): (result: EnqueueResult) => void {
  return (result) => {
    if (result.duplicate) summary.duplicates += 1;
    else if (result.alreadyEnqueued) summary.alreadyEnqueued += 1;
    else summary.enqueued += 1;
    if (collect) summary.results.push(result);
  };
}

/** The producer's numbers, in the ranges their environment variables allow (config/env.ts). */
const PRODUCER_NUMBERS = {
  dedupWindowSeconds: [1, 365 * 86_400],
  batchRetentionSeconds: [60, 365 * 86_400],
  chunkSize: [1, 5_000],
  laneSize: [1, 5_000],
} as const;

function checkProducerNumbers(options: ProducerOptions): ProducerOptions {
  const issues: Issue[] = [];
  for (const [name, [min, max]] of Object.entries(PRODUCER_NUMBERS)) {
    const value = options[name as keyof typeof PRODUCER_NUMBERS];
    if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max))
      issues.push({ path: name, message: `${String(value)}: expected a whole number from ${min} to ${max}` });
  }
  if (issues.length > 0) throw new ValidationError('producer options', issues);
  return options;
}

/** `enqueueMany` takes an array or another (async) iterable of operations: anything else is refused before a batch is opened. */
function checkOperations(operations: unknown): void {
  const iterable =
    typeof operations === 'object' && operations !== null && (Symbol.iterator in operations || Symbol.asyncIterator in operations);
  if (iterable) return;
  const got = operations === null ? 'null' : typeof operations;
  const hint = typeof operations === 'object' && operations !== null ? ' (one operation: use enqueue, or pass [operation])' : '';
  throw new ValidationError('operations', [
    { path: 'operations', message: `expected an array or an iterable of operations, got ${got}${hint}` },
  ]);
}

function checkBatchId(batchId: string | undefined): void {
  if (batchId !== undefined && !isBatchId(batchId)) {
    const issue: Issue = { path: 'batchId', message: `${JSON.stringify(batchId)}: ${BATCH_ID_RULE}` };
    throw new ValidationError('batch id', [issue]);
  }
}

/** Where each operation of a resumable input is; undefined when the input is not resumable. */
function positions(
  batchId: string,
  resumable: EnqueueManyOptions['resumable'],
): ((operation: unknown, index: number) => Position) | undefined {
  if (!resumable) return undefined;
  const { source = '', positionOf } = resumable === true ? {} : resumable;
  return (operation, index) => ({ batchId, source, position: positionOf?.(operation, index) ?? index });
}

/**
 * Prepares items into chunks and writes them, one chunk while the next is read and prepared: Redis
 * and this process work at once. `between` runs after each chunk but the last.
 */
async function writeInChunks<T>(
  items: Iterable<unknown> | AsyncIterable<unknown>,
  size: number,
  prepare: (item: unknown, index: number) => T,
  steps: { write: (chunk: T[]) => Promise<void>; between: () => Promise<void> },
): Promise<void> {
  let writing: Promise<void> | undefined;
  let chunk: T[] = [];
  let index = 0;
  try {
    for await (const item of items) {
      chunk.push(prepare(item, index));
      index += 1;
      if (chunk.length >= size) {
        await writing;
        const full = chunk;
        writing = steps.write(full).then(steps.between);
        // Observed at once, rethrown at the next await: a Redis error is never an unhandled rejection.
        writing.catch(() => undefined);
        chunk = [];
      }
    }
    await writing;
    if (chunk.length) await steps.write(chunk);
  } finally {
    await writing?.catch(() => undefined);
  }
}
