import { randomUUID } from 'node:crypto';
import type { SluiceConfig } from '../config/sluice-config.js';
import { ValidationError } from '../errors.js';
import { limitKeysOf, parseOperation } from '../operation/parse-operation.js';
import type { Operation } from '../operation/schema.js';
import { jobIdForKey, jobIdForPlace, sha256, type QueueKeys } from '../redis/keys.js';
import { defaultIdempotencyKey } from './job-data.js';
import { shardOfJob } from './shards.js';
import { crossGroupRefusal } from '../limits/limit-keys.js';

/** A validated operation, ready to be written. */
export interface PreparedJob {
  jobId: string;
  /** The shard of its queue it is written to (see queue/shards.ts): its job id picks it. */
  shard: number;
  /** The queue's shard count it was routed by, when it has an idempotency key (the shard's fence checks it). */
  routedWith: number;
  /** Its batch, if any. */
  batchId: string | undefined;
  /** Its idempotency key's Redis key, when the operation gave one. */
  dedupKey: string | undefined;
  /** The key it is sent with: its own, or one made from its job id. */
  idempotencyKey: string;
  /** Its place in a resumable input (a hash of batch, source, position and content), else ''. */
  place: string;
  /** Which part of its batch's index of places holds its place (see placeBucket), else ''. */
  placeBucket: string;
  /** Its `meta`, for a duplicate's result line. */
  meta: unknown;
  /** The limit keys it consumes (it joins their lines at enqueue, see LineJoin). */
  limitKeys: string[];
  /** The operation as JSON (a lane carries it, see queue/lanes.ts). */
  opJson: string;
  /** The key it was given, when it has one. */
  givenKey: string | undefined;
  /** It may travel in a lane: it does not paginate (each page of a walk is a job of its own). */
  packable: boolean;
}

/** Where an operation is in an input that is read the same way every time (see EnqueueManyOptions.resumable). */
export interface Position {
  batchId: string;
  source: string;
  position: number | string;
}

export interface PrepareOptions {
  config: SluiceConfig;
  /**
   * How many shards the operations are spread over, and each shard's keys: one with an
   * idempotency key by the queue's count now (its dedup spans batches: a change of the count is
   * refused while keys are held, see queue/shards.ts), one without by its batch's (its id is its
   * place in the batch, or random: the batch's count finds it again when the batch is enqueued again).
   */
  shards: { queue: number; batch: number; keys: (shard: number) => QueueKeys };
  batchId: string | undefined;
  /** Already checked with parseOperation: skip it. */
  prevalidated: boolean;
  /** Its limit keys must be of one group (a Redis Cluster acquires them in one slot): checked even when prevalidated. */
  oneLimitGroup?: boolean;
}

/**
 * Validates an operation (unless prevalidated) and makes its job: id, envelope, idempotency key. An
 * operation without a key gets a random job id, or, with a position, one made from that place, so
 * the same input enqueued again into the same batch finds the jobs it already wrote.
 */
export function prepareJob(options: PrepareOptions, input: unknown, index: number | undefined, position?: Position): PreparedJob {
  let givenKey: string | undefined;
  let limitKeys: string[];
  if (options.prevalidated) {
    givenKey = (input as { idempotencyKey?: string }).idempotencyKey;
    limitKeys = prevalidatedKeys(input);
  } else {
    const parsed = parseOperation(input, options.config);
    if (!parsed.ok) {
      const where = index === undefined ? 'operation' : `operation at index ${index}`;
      throw new ValidationError(where, parsed.issues);
    }
    givenKey = parsed.operation.idempotencyKey;
    limitKeys = limitKeysOf(parsed.operation);
  }
  const crossGroup = options.oneLimitGroup ? crossGroupRefusal(limitKeys) : undefined;
  if (crossGroup) {
    throw new ValidationError(index === undefined ? 'operation' : `operation at index ${index}`, [
      { path: 'limitKey', message: crossGroup },
    ]);
  }
  const opJson = JSON.stringify(input);
  const place = position === undefined ? '' : placeOf(position, opJson);
  const jobId = givenKey !== undefined ? jobIdForKey(givenKey) : place !== '' ? jobIdForPlace(place) : `u-${randomUUID()}`;
  const idempotencyKey = givenKey ?? defaultIdempotencyKey(jobId);
  const shard = shardOfJob(jobId, givenKey !== undefined ? options.shards.queue : options.shards.batch);
  return {
    jobId,
    shard,
    routedWith: options.shards.queue,
    batchId: options.batchId,
    dedupKey: givenKey === undefined ? undefined : options.shards.keys(shard).idempotency(givenKey),
    idempotencyKey,
    place,
    placeBucket: position === undefined ? '' : placeBucket(position.position, place),
    meta: (input as { meta?: unknown }).meta,
    limitKeys,
    opJson,
    givenKey,
    packable: (input as { paginate?: unknown }).paginate === undefined,
  };
}

/**
 * The same job routed by the queue's shard count now (after a shard refused a stale one): one with
 * an idempotency key may move to another shard, with its key's mark; one without stays where its
 * batch put it.
 */
export function rerouteJob(item: PreparedJob, shards: PrepareOptions['shards']): PreparedJob {
  if (item.givenKey === undefined) return item;
  const shard = shardOfJob(item.jobId, shards.queue);
  return { ...item, shard, routedWith: shards.queue, dedupKey: shards.keys(shard).idempotency(item.givenKey) };
}

/**
 * A single job's data: its envelope (JobEnvelope) written around the operation's JSON, so the
 * operation is serialized once (and not at all for one that travels in a lane).
 */
export function jobData(item: PreparedJob): string {
  const batch = item.batchId === undefined ? '' : `,"batchId":${JSON.stringify(item.batchId)}`;
  return `{"op":${item.opJson},"opId":${JSON.stringify(item.jobId)},"idempotencyKey":${JSON.stringify(item.idempotencyKey)}${batch}}`;
}

/** An operation's place: the same input line, with the same content, into the same batch, has the same place. */
function placeOf(position: Position, opJson: string): string {
  return sha256(`${position.batchId}\n${position.source}\n${position.position}\n${opJson}`).slice(0, 40);
}

/** The lines of a part of the batch's index of places (see add-jobs.lua): a part is read and written whole. */
const PLACES_PER_PART = 64;

/**
 * The part of its batch's index of places that holds a place: by its line (the lines of a chunk
 * share a few parts), or for a position that is not a line number, by the place itself (one of
 * 65,536). A line number given as a string is that line (its place is the same).
 */
function placeBucket(position: number | string, place: string): string {
  const line = typeof position === 'number' ? position : /^(0|[1-9]\d{0,15})$/.test(position) ? Number(position) : NaN;
  if (Number.isSafeInteger(line) && line >= 0) return String(Math.floor(line / PLACES_PER_PART));
  return `h${place.slice(0, 4)}`;
}

/**
 * The id a part of a batch's index of places keeps for a place ('' for its operation id), or
 * undefined when the place is not there: the entry `;` + the place's first 16 hex digits, then
 * `=<id>` or nothing (as add-jobs.lua writes and reads it).
 */
export function indexEntry(entries: string, place: string): string | undefined {
  const at = entries.indexOf(`;${place.slice(0, 16)}`);
  if (at < 0) return undefined;
  const after = at + 17;
  if (entries[after] !== '=') return '';
  const end = entries.indexOf(';', after);
  return entries.slice(after + 1, end < 0 ? undefined : end);
}

/** A prevalidated operation's limit keys; none for one that has neither target nor URL (its worker refuses it). */
export function prevalidatedKeys(input: unknown): string[] {
  try {
    return limitKeysOf(input as Operation);
  } catch {
    return [];
  }
}
