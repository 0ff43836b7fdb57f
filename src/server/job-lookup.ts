import type { Job, Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';

/**
 * sluice's own job ids: `u-<uuid>`, `k-<40 hex>` (idempotency key), `p-<40 hex>` (a place in a
 * resumable input), a lane `l-<24 hex>` and an operation of one `l-<24 hex>-<index>` (see
 * queue/lanes.ts), and a replay's `<id>.r<N>-<t>` (`<id>.r<N>` before the dead letter's time was in it).
 */
const SLUICE_JOB_ID =
  /^(?:u-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[kp]-[0-9a-f]{40}|l-[0-9a-f]{24}(?:-\d{1,6})?)(?:\.r[1-9]\d*(?:-[0-9a-z]{1,11})?)?$/;

/**
 * Names beside the job hashes under a queue's prefix, BullMQ's and sluice's: never a job. BullMQ
 * refuses custom ids with a colon (but for legacy `repeat:<key>:<ms>`), which covers the rest
 * (`batch:…`, `idem:…`, `<jobId>:logs`, `metrics:…`).
 */
const QUEUE_KEY_NAMES = new Set([
  'active',
  'batches',
  'completed',
  'de',
  'delayed',
  'dlq',
  'drained',
  'events',
  'failed',
  'id',
  'limiter',
  'marker',
  'meta',
  'metrics',
  'none',
  'paused',
  'pc',
  'prioritized',
  'repeat',
  'stalled',
  'stalled-check',
  'wait',
  'waiting',
  'waiting-children',
]);

const LEGACY_REPEAT_ID = /^repeat:[^:]+:\d+$/;

/** Whether `id` could name a job of a queue: false for the queue's other keys, whatever is stored there. */
export function couldBeJobId(id: string): boolean {
  if (SLUICE_JOB_ID.test(id)) return true;
  if (QUEUE_KEY_NAMES.has(id)) return false;
  return !id.includes(':') || LEGACY_REPEAT_ID.test(id);
}

/**
 * The job with this id, or undefined. sluice's ids are read directly; another client's are read
 * only when their key holds a hash (a key of another type would make BullMQ's read fail with
 * WRONGTYPE), and only if what it holds has a job's fields.
 */
export async function findJob(redis: RedisClient, queue: Queue, id: string): Promise<Job | undefined> {
  if (!couldBeJobId(id)) return undefined;
  if (!SLUICE_JOB_ID.test(id) && (await redis.type(queue.toKey(id))) !== 'hash') return undefined;
  const job = await queue.getJob(id);
  return job && Number.isFinite(job.timestamp) && typeof job.name === 'string' ? job : undefined;
}
