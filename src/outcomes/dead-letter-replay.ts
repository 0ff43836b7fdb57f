import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { isBatchId, type QueueKeys } from '../redis/keys.js';
import { NEW_JOB_PRIORITY, type JobEnvelope } from '../queue/job-data.js';
import { removeDeadLetter } from './dead-letter-entries.js';
import type { DeadLetter } from './dead-letter.js';

export interface ReplayResult {
  /** Dead letters put back on the queue, with the new job ids. */
  replayed: { id: string; jobId: string }[];
  /** Ids that were not (or no longer) dead letters. */
  missing: string[];
}

/** A dead letter found in the shard that holds it: the shard's keys, and its BullMQ queue (where the job goes back). */
export interface FoundDeadLetter {
  entry: DeadLetter;
  keys: QueueKeys;
  queue: Queue;
}

export interface ReplayContext {
  redis: RedisClient;
  /** The dead letter of an id, in whichever shard holds it. */
  find: (id: string) => Promise<FoundDeadLetter | undefined>;
  /** The `begin-replay-3` script: KEYS dead letters, replaying, batch; ARGV the dead letter's id. */
  beginReplay: (deadLetters: string, replaying: string, batch: string, id: string) => Promise<unknown>;
}

/**
 * Puts dead letters back on the queue with a fresh attempt budget and the same idempotency key, one
 * at a time, each into the shard that holds it, whose batch counters counted it.
 */
export async function replayDeadLetters(context: ReplayContext, replayIds: readonly string[]): Promise<ReplayResult> {
  const { redis, find, beginReplay } = context;
  const result: ReplayResult = { replayed: [], missing: [] };
  for (const id of replayIds) {
    const found = await find(id);
    if (!found) {
      result.missing.push(id);
      continue;
    }
    const { entry, keys, queue } = found;
    const replays = entry.replays + 1;
    // A deterministic id: replaying the same dead letter twice (a crash in between) adds one job.
    const jobId = `${entry.opId}.r${replays}`;
    const envelope: JobEnvelope = { op: entry.operation, opId: entry.opId, idempotencyKey: entry.idempotencyKey, replays };
    // A batch id an older version let in (`a:b`) could name another batch's keys: replayed without its batch.
    const batchId = isBatchId(entry.batchId) ? entry.batchId : undefined;
    if (batchId !== undefined) envelope.batchId = batchId;
    // 1. Un-count it (once, however often this is retried), so the batch waits for the new job.
    const begun = await beginReplay(keys.deadLetters, keys.replaying, batchId !== undefined ? keys.batch(batchId) : keys.none, id);
    if (begun === -1) {
      result.missing.push(id);
      continue;
    }
    // 2. The job; 3. then the dead letter goes. A crash between them leaves the dead letter listed
    //    and a replay of it finishes the work without counting twice or adding a second job.
    await queue.add('op', envelope, { jobId, priority: NEW_JOB_PRIORITY });
    await removeDeadLetter(keys, entry, redis.multi().srem(keys.replaying, id));
    result.replayed.push({ id, jobId });
  }
  return result;
}
