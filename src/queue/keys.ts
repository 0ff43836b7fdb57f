import { createHash } from 'node:crypto';

/** BullMQ's key prefix; with the hash-tagged queue name every key of a queue shares one cluster slot. */
export const PREFIX = 'sluice';

/** The BullMQ queue name for a sluice queue: hash-tagged so a Redis Cluster keeps it in one slot. */
export function bullQueueName(queue: string): string {
  return `{${queue}}`;
}

/** Redis keys sluice keeps beside BullMQ's, all in the queue's slot. */
export function queueKeys(queue: string) {
  const base = `${PREFIX}:{${queue}}`;
  return {
    idempotency: (key: string) => `${base}:idem:${sha256(key)}`,
    outcome: (jobId: string) => `${base}:outcome:${jobId}`,
    batch: (batchId: string) => `${base}:batch:${batchId}`,
    batchResults: (batchId: string) => `${base}:batch:${batchId}:results`,
    /** Exists while a producer is still adding to the batch (expires if that producer dies). */
    batchEnqueuing: (batchId: string) => `${base}:batch:${batchId}:enqueuing`,
    batchDeadLetters: (batchId: string) => `${base}:batch:${batchId}:dlq`,
    /** Batch ids by creation time (ms), for listing recent batches; trimmed to the retention. */
    batchIndex: `${base}:batches`,
    deadLetters: `${base}:dlq`,
    deadLetterIndex: `${base}:dlq:index`,
    /** Dead letters per group (see dead-letter-groups.ts): field → count. */
    deadLetterGroups: `${base}:dlq:groups`,
    /** The newest dead letter's id per group: field → id. */
    deadLetterGroupLatest: `${base}:dlq:groups:latest`,
    batchDeadLetterGroups: (batchId: string) => `${base}:batch:${batchId}:dlq:groups`,
    /** Dead letters whose replay has begun (their batch count is already lowered). */
    replaying: `${base}:dlq:replaying`,
    /** A placeholder key in the same slot, for scripts whose optional keys are absent. */
    none: `${base}:none`,
  };
}

export type QueueKeys = ReturnType<typeof queueKeys>;

/** The job id for an operation with an idempotency key: stable, so BullMQ itself dedups live jobs. */
export function jobIdForKey(idempotencyKey: string): string {
  return `k-${sha256(idempotencyKey).slice(0, 40)}`;
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
