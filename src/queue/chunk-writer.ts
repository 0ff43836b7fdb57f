import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { storedResultLine, type ResultLine } from '../outcomes/result-line.js';
import { sha256, type QueueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { chunkMarkEntry, createJobAdder, type AddedJob, type KeyHolder, type NewJob, type NewLane } from './add-jobs.js';
import { packChunk } from './lanes.js';
import { NEW_JOB_PRIORITY } from './job-data.js';
import type { Joiner, LineJoin, LineLeave } from '../limits/line-join.js';
import { bookingHolder } from './wake-jobs.js';
import { StaleShardCountError } from './shards.js';
import { jobData, type PreparedJob } from './prepare-job.js';

export interface EnqueueResult {
  /** The job id: the first job's id when this was a duplicate. */
  id: string;
  duplicate: boolean;
  /** Already in the batch from an earlier run of the same resumable input (see EnqueueManyOptions.resumable). */
  alreadyEnqueued?: boolean;
}

export interface ChunkWriterOptions {
  redis: RedisClient;
  queue: Queue;
  /** The queue's name (the job holders in lines name it). */
  queueName: string;
  keys: QueueKeys;
  /** How long an idempotency key dedups once its job was added. */
  dedupWindowMs: number;
  /** How long batch counters and results are kept, in seconds. */
  batchRetentionSeconds: number;
  /** Places the jobs in their limit keys' lines and says how long to delay each (none: no line at enqueue). */
  lineJoin?: LineJoin;
  /** Gives back the tickets of jobs that joined but were not added (with `lineJoin`). */
  lineLeave?: LineLeave;
  /**
   * The most operations of a batch that travel together in a lane (see queue/lanes.ts), for the
   * given limit keys: a key limited to R/s gets lanes of at most R (a second of its slots). 1 or
   * none: every operation is a job of its own.
   */
  laneSizeFor?: (keys: readonly string[]) => number;
  /** The batches whose ids were made for the enqueues writing them now (see AddJobsOptions.newBatch). */
  newBatches?: ReadonlySet<string>;
}

export type ChunkWriter = (chunk: PreparedJob[], batchId: string | undefined) => Promise<EnqueueResult[]>;

/**
 * Writes validated chunks: one script call adds the jobs whose idempotency keys are free, claims
 * those keys and counts the jobs in the batch (atomically, so a crash can neither count a job that
 * was not written nor hold a key for one); a second lists the duplicates in the batch, if any.
 */
export function createChunkWriter(options: ChunkWriterOptions): ChunkWriter {
  const { redis, queue, queueName, keys, dedupWindowMs, batchRetentionSeconds, lineJoin, lineLeave, laneSizeFor, newBatches } = options;
  const addJobs = createJobAdder(redis, queue, 'op', NEW_JOB_PRIORITY);
  const addDuplicates = defineScript(redis, 'add-duplicates-2');

  /**
   * A chunk mark's ids, or null when it is not held; read with the batch's index of places renewed,
   * as add-jobs.lua renews it: a rerun answered by its marks keeps the index of a batch held back.
   */
  async function markHeld(mark: string, batch: { placesKey: string; retentionSeconds: number }): Promise<string | null> {
    const [[readError, held] = [], [renewError] = []] =
      (await redis.pipeline().get(mark).expire(batch.placesKey, batch.retentionSeconds).exec()) ?? [];
    if (readError ?? renewError) throw readError ?? renewError;
    return (held as string | null | undefined) ?? null;
  }

  return async function writeChunk(chunk, batchId) {
    const batch =
      batchId === undefined
        ? undefined
        : {
            id: batchId,
            key: keys.batch(batchId),
            resultsKey: keys.batchResults(batchId),
            indexKey: keys.batchIndex,
            retentionSeconds: batchRetentionSeconds,
            placesKey: keys.batchPlaces(batchId),
          };
    const lanes = laneSizeFor !== undefined && batchId !== undefined;
    // A resumable chunk enqueued before (within the dedup window) is answered by its mark, however
    // it would be packed now; nothing is written, and no line ticket taken. The mark is read first
    // only when the chunk would take tickets: add-jobs.lua answers by it too, without a round trip
    // that would keep Redis waiting between two chunks.
    const mark = lanes ? chunkMarkKey(keys, chunk, batchId) : undefined;
    const joinsLines = lineJoin !== undefined && chunk.some((item) => lineJoin.joins(item.limitKeys));
    const held = mark && joinsLines ? await markHeld(mark, batch!) : null;
    if (held !== null) return answered(chunk, held.split(' ').map(chunkMarkEntry), batchId);
    // In line first: a job far back is written delayed to about its turn (one not added gives its ticket back below).
    // Each operation of a lane holds its own place; the lane is due when its first one is.
    const { jobs, order } = lanes ? packed(chunk, batchId, laneSizeFor) : unpacked(chunk);
    const holders = joinsLines ? order.map(({ id }) => bookingHolder(queueName, id)) : [];
    const joined = joinsLines
      ? await lineJoin!(order.map(({ item }, i) => ({ holder: holders[i]!, keys: item.limitKeys })))
      : { delays: [], took: [] };
    const delays = joined.delays;
    let at = 0;
    const toWrite = jobs.map((job) => {
      const delayMs = delays[at] ?? 0;
      at += 'members' in job ? job.members.length : 1;
      return { ...job, delayMs };
    });
    // Keyed operations were routed by the queue's shard count: the shard's fence checks it.
    const keyed = chunk.find((item) => item.givenKey !== undefined);
    let answers: AddedJob[];
    try {
      answers = await addJobs(toWrite, {
        dedupWindowMs,
        ...(batch ? { batch } : {}),
        ...(batchId !== undefined && newBatches?.has(batchId) ? { newBatch: true } : {}),
        ...(mark ? { chunkMark: { key: mark, places: order.map(({ index }) => index) } } : {}),
        ...(keyed ? { fence: { key: keys.shards, routedWith: keyed.routedWith } } : {}),
      });
    } catch (error) {
      // Refused whole (routed by a stale count): the tickets taken go back before it is routed anew.
      if (error instanceof StaleShardCountError && lineLeave) {
        const taken = order.flatMap((_, i) => ((joined.took[i] ?? []).length > 0 ? [{ holder: holders[i]!, keys: joined.took[i]! }] : []));
        if (taken.length > 0) await lineLeave(taken);
      }
      throw error;
    }
    // Back in the chunk's order.
    const added = new Array<AddedJob>(chunk.length);
    const ids: string[] = new Array<string>(chunk.length);
    const notAdded: Joiner[] = [];
    order.forEach(({ index, id }, i) => {
      added[index] = answers[i]!;
      ids[index] = id;
      const took = joined.took[i] ?? [];
      if (answers[i] !== true && took.length > 0) notAdded.push({ holder: holders[i]!, keys: took });
    });
    // Tickets taken for operations that were not added go back, so nobody waits behind them.
    if (notAdded.length > 0 && lineLeave) await lineLeave(notAdded);
    return answered(chunk, added, batchId, ids);
  };

  /**
   * The chunk's results, from the script's answers in the chunk's order (`ids`: the ids the chunk
   * gave), once its duplicates are listed in the batch. A chunk answered by its mark (or a line by
   * the index of places) lists them again: the run that wrote it may have stopped before it listed
   * them (listing is idempotent). A line of a resumable input whose duplicate was listed before (the
   * input enqueued again) was enqueued before: so it is counted.
   */
  async function answered(
    chunk: readonly PreparedJob[],
    added: readonly AddedJob[],
    batchId: string | undefined,
    ids: readonly string[] = [],
  ): Promise<EnqueueResult[]> {
    const results: EnqueueResult[] = [];
    const listed: (string | number)[] = [];
    /** The index in `results` of each duplicate listed, in the order listed. */
    const listedAt: number[] = [];
    const list = (item: PreparedJob, holder: KeyHolder) => {
      if (batchId === undefined || !listsDuplicate(item, holder, batchId)) return;
      listed.push(...duplicateEntry(item, holder));
      listedAt.push(results.length - 1);
    };
    chunk.forEach((item, i) => {
      const outcome = added[i]!;
      if (typeof outcome === 'object' && 'already' in outcome) {
        results.push({ id: outcome.already, duplicate: false, alreadyEnqueued: true });
        if (outcome.holder && !atOwnPlace(item, outcome.holder)) list(item, outcome.holder);
      } else if (outcome === true) results.push({ id: ids[i]!, duplicate: false });
      else if (outcome === false || atOwnPlace(item, outcome)) {
        // At its own place: under the id it has there (a lane of another packing, or a job of its own).
        results.push({ id: outcome === false || !outcome.jobId ? ids[i]! : outcome.jobId, duplicate: false, alreadyEnqueued: true });
      } else {
        results.push({ id: outcome.jobId, duplicate: true });
        list(item, outcome);
      }
    });
    if (listed.length === 0) return results;
    const now = (await addDuplicates(keys.batch(batchId!), keys.batchResults(batchId!), batchRetentionSeconds, ...listed)) as number[];
    // Listed now: a duplicate, whichever way it was found. Listed before: a line of a resumable
    // input enqueued again (one without a place cannot be told from another request: a duplicate).
    listedAt.forEach((at, i) => {
      const result = results[at]!;
      const before = now[i] === 0 && chunk[at]!.place !== '';
      result.duplicate = !before;
      if (before) result.alreadyEnqueued = true;
      else delete result.alreadyEnqueued;
    });
    return results;
  }
}

/** A line answered with its own place's holder: itself, enqueued before (not a duplicate). */
function atOwnPlace(item: PreparedJob, holder: KeyHolder): boolean {
  return item.place !== '' && holder.place === item.place;
}

/**
 * The mark of a chunk whose every operation has a place in a resumable input: its lanes are cut by
 * the limits of the moment, so an input enqueued again after a limit change is packed otherwise,
 * and only the chunk (the same lines in the same batch) finds what was written. Undefined otherwise.
 */
function chunkMarkKey(keys: QueueKeys, chunk: readonly PreparedJob[], batchId: string): string | undefined {
  if (chunk.length === 0 || chunk.some((item) => item.place === '')) return undefined;
  return keys.chunk(sha256(`${batchId}\n${chunk.map((item) => item.place).join('\n')}`));
}

/** What a chunk writes, and per operation written (in the order of the script's answers) its chunk index and id. */
interface ChunkJobs {
  jobs: (NewJob | NewLane)[];
  order: { index: number; id: string; item: PreparedJob }[];
}

/** An operation written as a job of its own. */
function singleJob(item: PreparedJob): NewJob {
  return { id: item.jobId, json: jobData(item), dedupKey: item.dedupKey, place: item.place, placeBucket: item.placeBucket };
}

function unpacked(chunk: readonly PreparedJob[]): ChunkJobs {
  return {
    jobs: chunk.map(singleJob),
    order: chunk.map((item, index) => ({ index, id: item.jobId, item })),
  };
}

function packed(chunk: readonly PreparedJob[], batchId: string, laneSizeFor: (keys: readonly string[]) => number): ChunkJobs {
  const { singles, lanes } = packChunk(chunk, batchId, laneSizeFor);
  const result: ChunkJobs = { jobs: [], order: [] };
  for (const { index, item } of singles) {
    result.jobs.push(singleJob(item));
    result.order.push({ index, id: item.jobId, item });
  }
  for (const { lane, indexes } of lanes) {
    result.jobs.push(lane);
    indexes.forEach((index, i) => result.order.push({ index, id: lane.members[i]!.id, item: chunk[index]! }));
  }
  return result;
}

/**
 * Whether a duplicate gets a result line of its own in its batch: always when it has a place (one
 * line per input line), else when the job holding its key is not in the same batch — a repeat in
 * the same batch without a place (`enqueue`, the HTTP API) cannot be told from a retry of the same
 * operation, which the batch already lists.
 */
function listsDuplicate(item: PreparedJob, holder: KeyHolder, batchId: string): boolean {
  return item.place !== '' || holder.batchId !== batchId;
}

/** The result line of a duplicate: its id is its place (or the first job's), so listing it again changes nothing. */
function duplicateEntry(item: PreparedJob, holder: KeyHolder): [string, string] {
  const id = `d-${item.place !== '' ? item.place : holder.jobId}`;
  const line: ResultLine = { id, jobId: holder.jobId, idempotencyKey: item.idempotencyKey, outcome: 'duplicate', attempts: 0 };
  if (item.meta !== undefined) line.meta = item.meta;
  line.duplicateOf = holder.jobId;
  if (holder.batchId !== '') line.duplicateOfBatch = holder.batchId;
  return [id, storedResultLine(line)];
}
