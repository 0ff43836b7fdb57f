import type { Redis } from 'ioredis';
import { queueKeys } from './keys.js';
import { luaScript } from './lua-script.js';
import { groupField } from './dead-letter-groups.js';

/**
 * Records how an operation ended, atomically and at most once per job: batch counters, the batch's
 * result line and, for failures, the dead letter. A job that runs twice (a worker died after the
 * request but before BullMQ heard of it) is counted once.
 */

const RECORD_OUTCOME = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[6]) then return 0 end
local dead = ARGV[1] == 'deadLettered'
if dead then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[8], ARGV[2])
  redis.call('HINCRBY', KEYS[7], ARGV[10], 1)
  redis.call('HSET', KEYS[8], ARGV[10], ARGV[2])
end
if ARGV[9] == '1' then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
  if dead then
    redis.call('ZADD', KEYS[6], ARGV[8], ARGV[2])
    redis.call('HINCRBY', KEYS[9], ARGV[10], 1)
    redis.call('EXPIRE', KEYS[9], ARGV[7])
  end
end
return 1
`;

/** How long the "already recorded" marker of a job lives: far longer than a job can stay active. */
const OUTCOME_MARKER_TTL_MS = 6 * 60 * 60 * 1_000;

export interface OutcomeRecord {
  jobId: string;
  /**
   * The job's creation time (BullMQ `job.timestamp`). With the id it names one job instance: an
   * idempotency key enqueued again after its window gets the same job id, and must count again.
   */
  jobTimestamp: number;
  opId: string;
  batchId: string | undefined;
  outcome: 'succeeded' | 'deadLettered';
  /** The line `sluice results` prints for this operation. */
  resultLine: unknown;
  /** The dead letter, for `deadLettered`. */
  deadLetter?: unknown;
}

export interface OutcomeStore {
  /** Returns false when this job's outcome was already recorded. */
  record(record: OutcomeRecord): Promise<boolean>;
  /** Counts one retry against the batch (shown in summaries). */
  countRetry(batchId: string | undefined): Promise<void>;
}

export function createOutcomeStore(redis: Redis, queue: string, batchRetentionSeconds: number): OutcomeStore {
  const keys = queueKeys(queue);
  const recordOutcome = luaScript<(string | number)[]>(redis, 'sluiceRecordOutcome', 9, RECORD_OUTCOME);

  async function record(entry: OutcomeRecord): Promise<boolean> {
    const batch = entry.batchId;
    const written = await recordOutcome(
      keys.outcome(`${entry.jobId}:${entry.jobTimestamp}`),
      batch ? keys.batch(batch) : keys.none,
      batch ? keys.batchResults(batch) : keys.none,
      keys.deadLetters,
      keys.deadLetterIndex,
      batch ? keys.batchDeadLetters(batch) : keys.none,
      keys.deadLetterGroups,
      keys.deadLetterGroupLatest,
      batch ? keys.batchDeadLetterGroups(batch) : keys.none,
      entry.outcome,
      entry.jobId,
      entry.opId,
      JSON.stringify(entry.resultLine),
      entry.deadLetter === undefined ? '' : JSON.stringify(entry.deadLetter),
      OUTCOME_MARKER_TTL_MS,
      batchRetentionSeconds,
      Date.now(),
      batch ? '1' : '0',
      entry.deadLetter === undefined ? '' : groupField(entry.deadLetter as { limitKey?: string; status?: number; reason: string }),
    );
    return written === 1;
  }

  async function countRetry(batchId: string | undefined): Promise<void> {
    if (batchId) await redis.hincrby(keys.batch(batchId), 'retries', 1);
  }

  return { record, countRetry };
}
