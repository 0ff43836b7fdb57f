import { createHash } from 'node:crypto';

/**
 * Every Redis key sluice reads or writes, by family (docs/architecture.md has the map: type, who
 * writes, who reads, lifetime). Keys that a script touches together share a hash tag, so they sit
 * in one Redis Cluster slot: a queue's keys `{queue}`, the limiter's `{limits}`.
 */

/** BullMQ's key prefix: BullMQ's own keys of a queue are `sluice:{queue}:…`. */
export const PREFIX = 'sluice';

/** The BullMQ queue name for a sluice queue: hash-tagged so a Redis Cluster keeps it in one slot. */
export function bullQueueName(queue: string): string {
  return `{${queue}}`;
}

/** BullMQ's meta hash of a queue: it exists once the queue was used, and while it has jobs or history. */
export function queueMetaKey(queue: string): string {
  return `${PREFIX}:{${queue}}:meta`;
}

/** What SCAN matches to find the queues (`sluice:{name}:meta`); `queueOfMetaKey` reads the name back. */
export const QUEUE_META_PATTERN = `${PREFIX}:{*}:meta`;

export function queueOfMetaKey(key: string): string {
  return key.slice(`${PREFIX}:{`.length, -'}:meta'.length);
}

/** Every key of a queue, BullMQ's and sluice's, for SCAN. */
export function queueKeyPattern(queue: string): string {
  return `${PREFIX}:{${queue}}:*`;
}

/** sluice's own keys beside BullMQ's, all in the queue's slot. */
export function queueKeys(queue: string) {
  const base = `${PREFIX}:{${queue}}`;
  return {
    idempotency: (key: string) => `${base}:idem:${sha256(key)}`,
    outcome: (jobInstance: string) => `${base}:outcome:${jobInstance}`,
    batch: (batchId: string) => `${base}:batch:${batchId}`,
    batchResults: (batchId: string) => `${base}:batch:${batchId}:results`,
    /** Exists while a producer is still adding to the batch (expires if that producer dies). */
    batchEnqueuing: (batchId: string) => `${base}:batch:${batchId}:enqueuing`,
    batchDeadLetters: (batchId: string) => `${base}:batch:${batchId}:dlq`,
    /** Batch ids by creation time (ms), for listing recent batches; trimmed to the retention. */
    batchIndex: `${base}:batches`,
    deadLetters: `${base}:dlq`,
    deadLetterIndex: `${base}:dlq:index`,
    /** Dead letters per group (see outcomes/dead-letter-groups.ts): field → count. */
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

/** The limiter's keys: one slot for all of them, so an operation naming several keys acquires them in one script. */
const LIMITS = `${PREFIX}:{limits}`;

export const limiterKeys = {
  /** Every limit key name in use (set). */
  index: `${LIMITS}:keys`,
  /** Bumped on every change workers must notice (string). */
  version: `${LIMITS}:version`,
  /** Live limiter processes (zset, score: heartbeat expiry). */
  processes: `${LIMITS}:processes`,
  state: (key: string) => `${LIMITS}:state:${key}`,
  override: (key: string) => `${LIMITS}:override:${key}`,
  leases: (key: string) => `${LIMITS}:leases:${key}`,
  bookings: (key: string) => `${LIMITS}:bookings:${key}`,
  recent429: (key: string) => `${LIMITS}:429:${key}`,
};

/** A target's shared OAuth2 token and the lock of whoever is requesting a new one; `client` fingerprints the client. */
export function oauth2Keys(client: string) {
  return { token: `${PREFIX}:auth:${client}:token`, lock: `${PREFIX}:auth:${client}:lock` };
}

/** Every worker's latest metrics snapshot (hash: worker id → `<staleAtMs>|<json>`); one key, so no hash tag. */
export const WORKER_SNAPSHOTS_KEY = `${PREFIX}:metrics:workers`;

/** A dashboard session (hash: `role`, `token`, `createdAt`, `expiresAt`), by the SHA-256 of its id: Redis never holds the id. */
export function sessionKey(sessionId: string): string {
  return `${PREFIX}:session:${sha256(sessionId)}`;
}

/** Failed sign-ins and bearer tokens from one client address in the current window (string counter). */
export function authFailuresKey(address: string): string {
  return `${PREFIX}:auth-failures:${address}`;
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The job id of an operation with an idempotency key: stable, so BullMQ itself dedups live jobs. */
export function jobIdForKey(idempotencyKey: string): string {
  return `k-${sha256(idempotencyKey).slice(0, 40)}`;
}
