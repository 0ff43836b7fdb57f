import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../config/sluice-config.js';
import { configuredSpecs } from '../limits/limit-keys.js';
import { isBatchId, sha256 } from '../redis/keys.js';
import type { LaneMember, NewLane } from './add-jobs.js';
import { defaultIdempotencyKey, type JobEnvelope } from './job-data.js';
import type { PreparedJob } from './prepare-job.js';

/**
 * Lanes: operations enqueued together that share a queue and limit keys travel as one BullMQ job,
 * so the queue's cost (add, fetch, lock, complete) is paid once per lane rather than once per
 * operation. Each operation keeps its own id, idempotency key, limiter slot, attempts, outcome and
 * dead letter (worker/lane-runner.ts runs them). A lane's data:
 *
 *   {"v":1,"lane":"l-<24 hex>","batchId":"…","ops":[{"op":…,"opId":"l-<24 hex>-0"}, …]}
 *
 * An operation's envelope (JobEnvelope) holds its own `idempotencyKey` only when it is not the
 * default one made from its id (`sluice-l-…-<i>`, or `sluice-p-<place>` for a line of a resumable
 * input without a key of its own), and its batch is the lane's.
 */

/** The lane format's version; a worker runs only lanes of a version it knows. */
export const LANE_VERSION = 1;

/**
 * The version of a lane with empty places (`null` where a duplicate was left out: add-jobs.lua
 * writes it so). A worker that knows only LANE_VERSION would read a `null` as an operation; it
 * leaves such a lane for a newer worker instead.
 */
export const LANE_WITH_GAPS_VERSION = 2;

/**
 * Operations per lane at most, when the producer is not told otherwise: small enough that a
 * batch of a few thousand is spread over a fleet of workers (a lane runs on one worker), large
 * enough that the queue's cost per operation is a fraction of a command.
 */
export const DEFAULT_LANE_SIZE = 100;

/** A lane holds at most a second of its slowest key's configured rate, and at most `laneSize` operations. */
export function laneSizes(config: SluiceConfig, laneSize: number): (keys: readonly string[]) => number {
  const specOf = configuredSpecs(config);
  return (keys) => {
    let size = laneSize;
    for (const key of keys) {
      const { rate } = specOf(key);
      if (rate > 0) size = Math.min(size, Math.max(1, Math.floor(rate)));
    }
    return size;
  };
}

/** A lane is cut at this much operation JSON, so a chunk of large bodies does not make a hash every fetch moves whole. */
export const MAX_LANE_BYTES = 256 * 1024;

/** The id of an operation in a lane: the lane's id (`l-` and 24 hex digits), `-`, its index (no leading zeros: one id per place). */
export const LANE_OP_ID = /^(l-[0-9a-f]{24})-(0|[1-9]\d{0,5})$/;

export interface LaneData {
  v: number;
  lane: string;
  batchId: string;
  /** The operations in their places; `null` where one was left out at enqueue (a duplicate): each keeps the place its id names. */
  ops: (JobEnvelope | null)[];
}

/** Whether a job's data is a lane this version can run (the job is named `lane` too). */
export function isLaneData(data: unknown): data is LaneData {
  if (typeof data !== 'object' || data === null) return false;
  const lane = data as Partial<LaneData>;
  return (
    (lane.v === LANE_VERSION || lane.v === LANE_WITH_GAPS_VERSION) &&
    typeof lane.lane === 'string' &&
    typeof lane.batchId === 'string' &&
    Array.isArray(lane.ops)
  );
}

/** What else an operation of a lane may carry of a single job's envelope (see JobEnvelope). */
const CARRIED = ['replays', 'attempts', 'paging', 'circuitSince', 'circuitWaitedMs'] as const satisfies readonly (keyof JobEnvelope)[];

/** The places of a lane that hold an operation, in order. */
export function laneMembers(lane: LaneData): number[] {
  const members: number[] = [];
  lane.ops.forEach((item, index) => {
    if (item !== null) members.push(index);
  });
  return members;
}

/** Whether the place `index` of a lane holds an operation. */
export function holdsOperation(lane: LaneData, index: number): boolean {
  return index < lane.ops.length && lane.ops[index] !== null;
}

/** The envelope an operation in a lane runs with: the one a single job would have had (at a place that holds one: laneMembers). */
export function laneEnvelope(lane: LaneData, index: number): JobEnvelope {
  const item = lane.ops[index];
  if (!item) throw new Error(`lane ${lane.lane} holds no operation at ${index}`);
  const opId = typeof item.opId === 'string' ? item.opId : `${lane.lane}-${index}`;
  // Field by field rather than a spread of the item (~1 µs an operation, in a profile of a lane run).
  const envelope: JobEnvelope = { op: item.op, opId, idempotencyKey: item.idempotencyKey ?? defaultIdempotencyKey(opId) };
  // As readEnvelope reads a job's: a batch id that is not one could name another batch's keys.
  if (isBatchId(lane.batchId)) envelope.batchId = lane.batchId;
  for (const field of CARRIED) if (item[field] !== undefined) (envelope as unknown as Record<string, unknown>)[field] = item[field];
  return envelope;
}

/** Which lane an operation id belongs to, with its index; undefined for any other id. */
export function laneOfOpId(id: string): { lane: string; index: number } | undefined {
  const match = LANE_OP_ID.exec(id);
  return match ? { lane: match[1]!, index: Number(match[2]) } : undefined;
}

/** A chunk's jobs as written: single jobs and lanes, each with the chunk indexes of its operations in order. */
export interface PackedChunk {
  singles: { index: number; item: PreparedJob }[];
  lanes: { lane: NewLane; indexes: number[]; limitKeys: string[] }[];
}

/**
 * Groups items by `groupOf` in the order they came (undefined: the item travels alone), and cuts
 * each group into lanes of at most `sizeOf` (of its first item) items and MAX_LANE_BYTES of
 * `bytesOf`. A group, or a cut, of one travels alone. An enqueue's chunk and a dead-letter replay
 * are packed by it.
 */
export function cutIntoLanes<T>(
  items: Iterable<T>,
  groupOf: (item: T) => string | undefined,
  sizeOf: (first: T) => number,
  bytesOf: (item: T) => number,
): { lanes: T[][]; alone: T[] } {
  const out: { lanes: T[][]; alone: T[] } = { lanes: [], alone: [] };
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groupOf(item);
    if (group === undefined) {
      out.alone.push(item);
      continue;
    }
    const members = groups.get(group);
    if (members) members.push(item);
    else groups.set(group, [item]);
  }
  for (const members of groups.values()) {
    const size = Math.max(1, Math.floor(sizeOf(members[0]!)));
    let cut: T[] = [];
    let bytes = 0;
    const close = () => {
      if (cut.length === 1) out.alone.push(cut[0]!);
      else if (cut.length > 1) out.lanes.push(cut);
      cut = [];
      bytes = 0;
    };
    for (const item of members) {
      const length = bytesOf(item);
      if (cut.length >= size || (cut.length > 0 && bytes + length > MAX_LANE_BYTES)) close();
      cut.push(item);
      bytes += length;
    }
    close();
  }
  return out;
}

/**
 * Packs a chunk: operations that may travel in a lane (see PreparedJob.packable) are grouped by
 * their limit keys and cut into lanes of at most `sizeFor(keys)` operations (cutIntoLanes); one
 * left alone stays a single job.
 */
export function packChunk(chunk: readonly PreparedJob[], batchId: string, sizeFor: (keys: readonly string[]) => number): PackedChunk {
  const { lanes, alone } = cutIntoLanes(
    chunk.keys(),
    (index) => (chunk[index]!.packable ? chunk[index]!.limitKeys.join('\n') : undefined),
    (index) => sizeFor(chunk[index]!.limitKeys),
    (index) => chunk[index]!.opJson.length,
  );
  return {
    singles: alone.sort((a, b) => a - b).map((index) => ({ index, item: chunk[index]! })),
    lanes: lanes.map((indexes) => ({
      lane: newLane(
        indexes.map((i) => chunk[i]!),
        batchId,
      ),
      indexes,
      limitKeys: chunk[indexes[0]!]!.limitKeys,
    })),
  };
}

/**
 * A lane of these operations. Its id is random, or, when every operation has a place in a
 * resumable input, made from their places: the same input enqueued again finds the lane it wrote.
 */
function newLane(items: readonly PreparedJob[], batchId: string): NewLane {
  const placed = items.every((item) => item.place !== '');
  const id = placed ? `l-${sha256(items.map((item) => item.place).join('\n')).slice(0, 24)}` : randomLaneId();
  const members = items.map((item, i) => {
    const jobId = `${id}-${i}`;
    // A line of a resumable input without a key of its own is the operation its single job would be
    // (`p-<place>`): its result line is found by its place however the input was packed (lanes off,
    // another lane size), so the input enqueued again adds nothing that ran. (add-jobs.lua makes
    // both ids by the same rules.)
    const opId = item.place !== '' && item.givenKey === undefined ? item.jobId : jobId;
    // Only a key of its own is written: one without is sent with the key its operation id makes
    // (laneEnvelope), which for a line of a resumable input is its place's (`sluice-p-<place>`, as a
    // single job's), so a resumed input sends the same key however it was packed. (Writing that key
    // too cost a million-line enqueue 62 MB of Redis memory and about a sixth of its time.)
    const key = item.givenKey;
    const json = `{"op":${item.opJson},"opId":"${opId}"${key === undefined ? '' : `,"idempotencyKey":${JSON.stringify(key)}`}}`;
    const member: LaneMember = { id: jobId, json };
    if (item.dedupKey) member.dedupKey = item.dedupKey;
    if (item.place) {
      member.place = item.place;
      member.placeBucket = item.placeBucket;
    }
    return member;
  });
  return { id, ...laneWrapper(id, batchId), members };
}

/** A lane's data is `before`, its members' data joined by commas, then `after`. */
export function laneWrapper(id: string, batchId: string): { before: string; after: string } {
  return { before: `{"v":${LANE_VERSION},"lane":"${id}","batchId":${JSON.stringify(batchId)},"ops":[`, after: ']}' };
}

/** A new lane's random id (a lane of a resumable input's places has one made from them instead). */
export function randomLaneId(): string {
  return `l-${randomBytes(12).toString('hex')}`;
}
