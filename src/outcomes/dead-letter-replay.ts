import type { Queue } from 'bullmq';
import { isBatchId, sha256, type QueueKeys } from '../redis/keys.js';
import { NEW_JOB_PRIORITY, type JobEnvelope } from '../queue/job-data.js';
import { cutIntoLanes, laneWrapper, randomLaneId } from '../queue/lanes.js';
import { prevalidatedKeys } from '../queue/prepare-job.js';
import { groupField } from './dead-letter-groups.js';
import type { DeadLetter } from './dead-letter.js';

export interface ReplayResult {
  /** Dead letters put back on the queue, with the new job ids (`<op id>.r<N>-<t>`, or in a lane `l-<24 hex>-<index>`). */
  replayed: { id: string; jobId: string }[];
  /** Ids that were not (or no longer) dead letters. */
  missing: string[];
}

/** A dead letter found in the shard that holds it: the shard's keys, and its BullMQ queue (where the job goes back). */
export interface FoundDeadLetter {
  entry: DeadLetter;
  /** The shard's name (dead letters of one lane are all in one shard). */
  shard: string;
  keys: QueueKeys;
  queue: Queue;
}

/** A lane of replayed dead letters, as `replay-lane-14.lua` writes it. */
export interface ReplayLane {
  id: string;
  batchId: string;
  before: string;
  after: string;
  members: { id: string; field: string; json: string }[];
}

export interface ReplayContext {
  /** The dead letters of ids, each in whichever shard holds it; undefined for an id none holds. */
  find: (ids: readonly string[]) => Promise<(FoundDeadLetter | undefined)[]>;
  /** The `begin-replay-3` script: KEYS dead letters, replaying, batch; ARGV the dead letter's id. */
  beginReplay: (deadLetters: string, replaying: string, batch: string, id: string) => Promise<unknown>;
  /** Removes a dead letter (its replay as a job of its own is done), once. */
  remove: (keys: QueueKeys, entry: DeadLetter) => Promise<unknown>;
  /**
   * Dead letters of one batch that share limit keys go back as lanes of at most this many
   * operations (queue/lanes.ts); absent: each as a job of its own.
   */
  laneSizeFor?: ((limitKeys: readonly string[]) => number) | undefined;
  /** The `replay-lane-14` script for a lane in a shard: per member its index in the lane, -1 gone, -2 replayed alone. */
  replayLane: (where: FoundDeadLetter, lane: ReplayLane) => Promise<number[]>;
}

/** How long a dead letter's replay as a job of its own is not added again (its job gone or not). */
const REPLAY_DEDUP_MS = 24 * 60 * 60 * 1_000;

/** Dead letters looked up and replayed this many at a time. */
const REPLAY_CHUNK = 1_000;
/** A replay lane holds at most this many (one script call writes it: as a producer's chunk bounds add-jobs.lua). */
const MAX_REPLAY_LANE = 500;

/**
 * Puts dead letters back on the queue with a fresh attempt budget and the same idempotency key,
 * each into the shard that holds it, whose batch counters counted it: those of one batch that share
 * limit keys in lanes (when the context has a lane size), the rest as jobs of their own.
 */
export async function replayDeadLetters(context: ReplayContext, replayIds: readonly string[]): Promise<ReplayResult> {
  const jobIds = new Map<string, string>();
  for (let from = 0; from < replayIds.length; from += REPLAY_CHUNK) {
    const ids = replayIds.slice(from, from + REPLAY_CHUNK);
    const found = await context.find(ids);
    const { lanes, alone } = packReplays(found, context.laneSizeFor);
    for (const { where, lane, members } of lanes) {
      const indexes = await context.replayLane(where, lane);
      indexes.forEach((index, i) => {
        if (index >= 0) jobIds.set(members[i]!.entry.id, `${lane.id}-${index}`);
        // Its replay as a job of its own had begun (and was cut short, or is under way): finished the same way.
        else if (index === -2) alone.push(members[i]!);
      });
    }
    for (const one of alone) {
      const jobId = await replayAlone(context, one);
      if (jobId !== undefined) jobIds.set(one.entry.id, jobId);
    }
  }
  const result: ReplayResult = { replayed: [], missing: [] };
  for (const id of replayIds) {
    const jobId = jobIds.get(id);
    if (jobId === undefined) result.missing.push(id);
    else result.replayed.push({ id, jobId });
  }
  return result;
}

/** One dead letter back as a job of its own; undefined when it is no longer a dead letter. */
async function replayAlone(context: ReplayContext, found: FoundDeadLetter): Promise<string | undefined> {
  const { entry, keys, queue } = found;
  const replays = entry.replays + 1;
  // A deterministic id: replaying the same dead letter twice (a crash in between) adds one job.
  const jobId = replayJobId(entry, replays);
  const envelope: JobEnvelope = { op: entry.operation, opId: entry.opId, idempotencyKey: entry.idempotencyKey, replays };
  // A batch id an older version let in (`a:b`) could name another batch's keys: replayed without its batch.
  const batchId = isBatchId(entry.batchId) ? entry.batchId : undefined;
  if (batchId !== undefined) envelope.batchId = batchId;
  // 1. Un-count it (once, however often this is retried), so the batch waits for the new job.
  const begun = await context.beginReplay(
    keys.deadLetters,
    keys.replaying,
    batchId !== undefined ? keys.batch(batchId) : keys.none,
    entry.id,
  );
  if (begun === -1) return undefined;
  // 2. The job; 3. then the dead letter goes. A crash between them leaves the dead letter listed
  //    and a replay of it finishes the work without counting twice or adding a second job. Nor
  //    does a second replay that began before the first one's step 3: the job id alone would not
  //    hold once the job ran and was removed (SLUICE_KEEP_COMPLETED_SECONDS=0), BullMQ's
  //    deduplication mark (set with the job, kept for REPLAY_DEDUP_MS) does. The id names this
  //    dead letter, not only its operation, so neither holds back the replay of a later one.
  await queue.add('op', envelope, { jobId, priority: NEW_JOB_PRIORITY, deduplication: { id: jobId, ttl: REPLAY_DEDUP_MS } });
  await context.remove(keys, entry);
  return jobId;
}

/**
 * A replay's job id: `<op id>.r<N>-<t>`, t the dead letter's time in base 36. The operation id alone
 * can come back (an idempotency key enqueued again once its window is over, into another batch or
 * the same; an input enqueued again into a batch past its retention), with a dead letter of its own
 * whose replay must not be taken for the earlier one's: by a job of that id still kept, or by its
 * deduplication mark.
 */
function replayJobId(entry: DeadLetter, replays: number): string {
  const at = Date.parse(entry.deadLetteredAt);
  const time = Number.isFinite(at) ? at.toString(36) : sha256(JSON.stringify(entry)).slice(0, 8);
  return `${entry.opId}.r${replays}-${time}`;
}

interface PackedReplays {
  lanes: { where: FoundDeadLetter; lane: ReplayLane; members: FoundDeadLetter[] }[];
  alone: FoundDeadLetter[];
}

/** A found dead letter with what packing it needs: its data in a lane, and the limit keys it travels by (none: alone). */
interface Packable {
  one: FoundDeadLetter;
  json: string;
  keys: string[] | undefined;
}

/**
 * Packs found dead letters as the producer packs a chunk (queue/lanes.ts, cutIntoLanes): those of
 * one shard and batch that share limit keys, in the order given, in lanes of the size their keys
 * allow (at most MAX_REPLAY_LANE). One without a batch, one that paginates, an invalid one and one
 * left alone by the cut go back as jobs of their own.
 */
function packReplays(found: readonly (FoundDeadLetter | undefined)[], sizeFor: ReplayContext['laneSizeFor']): PackedReplays {
  const items: Packable[] = [];
  for (const one of found) if (one) items.push({ one, json: memberJson(one.entry), keys: sizeFor ? laneKeysOf(one.entry) : undefined });
  const { lanes, alone } = cutIntoLanes(
    items,
    ({ one, keys }) => (keys ? `${one.shard}\n${one.entry.batchId}\n${keys.join('\n')}` : undefined),
    ({ keys }) => Math.min(MAX_REPLAY_LANE, sizeFor!(keys!)),
    ({ json }) => json.length,
  );
  return { lanes: lanes.map(replayLane), alone: alone.map(({ one }) => one) };
}

function replayLane(cut: readonly Packable[]): PackedReplays['lanes'][number] {
  const where = cut[0]!.one;
  const id = randomLaneId();
  const batchId = where.entry.batchId!;
  return {
    where,
    lane: {
      id,
      batchId,
      ...laneWrapper(id, batchId),
      members: cut.map(({ one, json }) => ({ id: one.entry.id, field: groupField(one.entry), json })),
    },
    members: cut.map(({ one }) => one),
  };
}

/** A replayed operation in its lane: its own id (its results are keyed by it), key and replay count (see laneEnvelope). */
function memberJson(entry: DeadLetter): string {
  const key = JSON.stringify(entry.idempotencyKey);
  return `{"op":${JSON.stringify(entry.operation)},"opId":${JSON.stringify(entry.opId)},"idempotencyKey":${key},"replays":${entry.replays + 1}}`;
}

/**
 * The limit keys a dead letter travels by in a lane, as an enqueue reads them (prepare-job.ts);
 * undefined when it goes back alone: without a batch, invalid, or paginating (as PreparedJob.packable).
 */
function laneKeysOf(entry: DeadLetter): string[] | undefined {
  if (!isBatchId(entry.batchId) || entry.reason === 'invalid-operation') return undefined;
  const operation = entry.operation as { paginate?: unknown } | null;
  if (typeof operation !== 'object' || operation === null || operation.paginate !== undefined) return undefined;
  const keys = prevalidatedKeys(operation);
  return keys.length > 0 ? keys : undefined;
}
