import { hash } from 'node:crypto';
import { ValidationError } from '../errors.js';

/**
 * Every Redis key sluice reads or writes, by family (docs/architecture.md has the map: type, who
 * writes, who reads, lifetime). Keys that a script touches together share a hash tag, so they sit
 * in one Redis Cluster slot: a queue's keys `{queue}`, a limit key group's `{limits:<group>}`.
 */

/** BullMQ's key prefix: BullMQ's own keys of a queue are `sluice:{queue}:…`. */
export const PREFIX = 'sluice';

/**
 * The names keys are made of. Neither may hold `:` (which separates a key's parts: a batch id
 * `x:results` would name batch `x`'s results) nor `{` `}` (a queue name is the hash tag).
 * test/unit/redis-keys.test.ts shows that no two families then make the same key.
 */
export const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
export const QUEUE_NAME_RULE = 'letters, digits and _ . - only, at most 100';
/**
 * A queue spread over S shards (see queue/shards.ts) is S BullMQ queues: shard 0 is the queue
 * itself (`{q}`), shard i > 0 is `{q#i}`, a hash tag of its own, so a Redis Cluster places it in
 * another slot. A queue name cannot hold `#`, so no queue's keys are another's shard's. Everything
 * that acts on one BullMQ queue (a worker, the outcome store, add-jobs) takes a shard's name where
 * it took a queue's.
 */
export const SHARD_NAME = /^[A-Za-z0-9_.-]{1,100}(#[1-9][0-9]?)?$/;
/** The most shards a queue may have. */
export const MAX_SHARDS = 64;

/** The name of shard `index` of `queue`: the queue's own for shard 0. */
export function shardName(queue: string, index: number): string {
  return index === 0 ? queue : `${queue}#${index}`;
}

/** The queue a shard belongs to, and its index (a queue's own name is its shard 0). */
export function shardOf(name: string): { queue: string; index: number } {
  const at = name.indexOf('#');
  return at < 0 ? { queue: name, index: 0 } : { queue: name.slice(0, at), index: Number(name.slice(at + 1)) };
}

export const BATCH_ID = /^[A-Za-z0-9_.-]{1,128}$/;
export const BATCH_ID_RULE = 'letters, digits and _ . - only, at most 128';

export function isBatchId(value: unknown): value is string {
  return typeof value === 'string' && BATCH_ID.test(value);
}

/**
 * BullMQ's key prefix for the schedules' tick queue of a sluice queue (named like the queue: its
 * keys are `sluice:schedules:{queue}:…`, in the queue's slot, and not `sluice:{…}:meta`, so queue
 * discovery never lists it).
 */
export const SCHEDULES_PREFIX = `${PREFIX}:schedules`;

/** The BullMQ queue name for a sluice queue (or one of its shards): hash-tagged so a Redis Cluster keeps it in one slot. */
export function bullQueueName(queue: string): string {
  assertShardName(queue);
  return `{${queue}}`;
}

/** One of BullMQ's own keys of a queue (`delayed`, `marker`, …), for sluice's scripts that act on them beside BullMQ's. */
export function bullQueueKey(queue: string, part: 'delayed' | 'marker'): string {
  return `${PREFIX}:${bullQueueName(queue)}:${part}`;
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

/** Every key of a queue's tick queue (BullMQ's, see SCHEDULES_PREFIX), for SCAN. */
export function schedulesKeyPattern(queue: string): string {
  return `${SCHEDULES_PREFIX}:{${queue}}:*`;
}

/** Throws like assertQueueName for a name that is neither a queue's nor a shard's (`q#i`). */
function assertShardName(name: string): void {
  if (!SHARD_NAME.test(name)) assertQueueName(name);
}

/** Throws a ValidationError naming the queue when it is not a valid queue name. */
export function assertQueueName(queue: string): void {
  if (!QUEUE_NAME.test(queue)) {
    throw new ValidationError('queue name', [{ path: 'queue', message: `${JSON.stringify(queue)}: ${QUEUE_NAME_RULE}` }]);
  }
}

/** sluice's own keys beside BullMQ's, all in the queue's (or shard's) slot (the name is checked: see QUEUE_NAME, SHARD_NAME). */
export function queueKeys(queue: string) {
  assertShardName(queue);
  const base = `${PREFIX}:{${queue}}`;
  return {
    idempotency: (key: string) => `${base}:idem:${sha256(key)}`,
    /** A chunk of a resumable input packed into lanes, by the SHA-256 of its batch and places: the ids it gave its operations (add-jobs.lua). */
    chunk: (hash: string) => `${base}:chunk:${hash}`,
    outcome: (jobInstance: string) => `${base}:outcome:${jobInstance}`,
    batch: (batchId: string) => `${base}:batch:${batchId}`,
    batchResults: (batchId: string) => `${base}:batch:${batchId}:results`,
    /** Exists while a producer is still adding to the batch (expires if that producer dies). */
    batchEnqueuing: (batchId: string) => `${base}:batch:${batchId}:enqueuing`,
    /**
     * The places of the lines of resumable inputs enqueued into the batch (hash: a part of 64 lines
     * → its entries, each a place's first 16 hex digits and the id it keeps, if any; see add-jobs.lua).
     */
    batchPlaces: (batchId: string) => `${base}:batch:${batchId}:places`,
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
    /** The names of the queue's schedules (set). */
    schedules: `${base}:schedules`,
    /** A schedule's definition (hash: `definition` → JSON; see schedules/schedule-definition.ts). */
    schedule: (name: string) => `${base}:schedule:${name}`,
    /** A schedule's operations, one JSON operation per element, `{{run}}` not yet filled in (list). */
    scheduleOperations: (name: string) => `${base}:schedule:${name}:operations`,
    /** A schedule's recent runs: batch id → tick time in ms (zset), and batch id → the run as JSON (hash). */
    scheduleRuns: (name: string) => `${base}:schedule:${name}:runs`,
    scheduleRunData: (name: string) => `${base}:schedule:${name}:runs:data`,
    /** How many shards the queue is spread over (hash: `count` now, `highest` ever; on shard 0 only; see queue/shards.ts). */
    shards: `${base}:shards`,
    /** A placeholder key in the same slot, for scripts whose optional keys are absent. */
    none: `${base}:none`,
    /** BullMQ's lock of a running job (string: the running worker's token); sluice only renews it (keep-job-locks.lua). */
    jobLock: (jobId: string) => `${base}:${jobId}:lock`,
    /** BullMQ's set of the jobs its next stalled-job check looks at. */
    stalled: `${base}:stalled`,
  };
}

export type QueueKeys = ReturnType<typeof queueKeys>;

/**
 * A limit key's group: the part of its name before the first `:` (`crm` and `crm:tenant-42` are both
 * `crm`), the whole name when it has none; an IPv6 host's key (`[::1]:8080`, a URL's default) is
 * grouped by its bracketed address. A group's keys share a hash tag, `{limits:<group>}`, so
 * on a Redis Cluster they sit in one slot and an operation naming several of them acquires them in
 * one script; other groups' keys are spread over the cluster's slots (docs/limits.md).
 */
export function limitGroupOf(key: string): string {
  const bracket = key.startsWith('[') ? key.indexOf(']') : -1;
  if (bracket > 0) return key.slice(0, bracket + 1);
  const colon = key.indexOf(':');
  return colon < 0 ? key : key.slice(0, colon);
}

/**
 * The kinds of keys the limiter keeps per limit key, each with its segment in the key's name
 * (`…:state:<key>`): the grouped layout and the earlier one name them alike.
 */
const LIMIT_KEY_SEGMENTS = {
  state: 'state',
  override: 'override',
  leases: 'leases',
  line: 'line',
  catchUpClaim: 'catch-up',
  recent429: '429',
  circuitWindow: 'circuit',
  circuitWaiting: 'circuit-waiting',
} as const;
export type LimitKeyKind = keyof typeof LIMIT_KEY_SEGMENTS;
/** Every kind, in one list (a key's keys are copied or deleted together). */
export const LIMIT_KEY_KINDS = Object.keys(LIMIT_KEY_SEGMENTS) as LimitKeyKind[];

/** A limit key's key of one kind, in its group's slot. */
const limitKeyOf = (kind: LimitKeyKind) => (key: string) => `${PREFIX}:{limits:${limitGroupOf(key)}}:${LIMIT_KEY_SEGMENTS[kind]}:${key}`;

/**
 * The limiter's keys. Each limit key's own keys are in its group's slot (see limitGroupOf); the
 * three fleet-wide ones are each a key of its own, written by separate calls, never by a script
 * beside a key's state (limits/limit-index.ts).
 */
export const limiterKeys = {
  /** Every limit key name in use (set). */
  index: `${PREFIX}:limits:keys`,
  /** Bumped on every change workers must notice (string). */
  version: `${PREFIX}:limits:version`,
  /** Live limiter processes (zset, score: heartbeat expiry). */
  processes: `${PREFIX}:limits:processes`,
  state: limitKeyOf('state'),
  override: limitKeyOf('override'),
  leases: limitKeyOf('leases'),
  /** A key's line: the jobs waiting for its slots (zset: holder `{queue}jobId` → ticket; see redis/lua/includes/line.lua). */
  line: limitKeyOf('line'),
  /** Who is having a key's line catch up (string: a caller's token, expiring; see redis/lua/line-catch-up-4.lua). */
  catchUpClaim: limitKeyOf('catchUpClaim'),
  recent429: limitKeyOf('recent429'),
  /** A key's circuit breaker window: attempts and failures per tenth of the window (hash). */
  circuitWindow: limitKeyOf('circuitWindow'),
  /** Jobs waiting for a key's circuit to close, to wake when it does (zset: `queue\tjobId` → since). */
  circuitWaiting: limitKeyOf('circuitWaiting'),
};

/**
 * The limiter's layout before its keys were grouped (every key in `{limits}`): read once, to copy
 * what it holds to the grouped layout (limits/limit-layout.ts).
 */
export const legacyLimiterKeys = {
  index: `${PREFIX}:{limits}:keys`,
  of: (kind: LimitKeyKind, key: string) => `${PREFIX}:{limits}:${LIMIT_KEY_SEGMENTS[kind]}:${key}`,
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

/** Hex SHA-256 of a string. The one-shot `hash` makes no Hash object: it is called once per enqueued operation. */
export function sha256(value: string): string {
  return hash('sha256', value, 'hex');
}

/** The job id of an operation with an idempotency key: stable, so BullMQ itself dedups live jobs. */
export function jobIdForKey(idempotencyKey: string): string {
  return `k-${sha256(idempotencyKey).slice(0, 40)}`;
}

/**
 * The job id of an operation without a key at a place of a resumable input (see
 * queue/prepare-job.ts): the same input enqueued again into the same batch finds it.
 */
export function jobIdForPlace(place: string): string {
  return `p-${place}`;
}
