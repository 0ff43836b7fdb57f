import { z } from 'zod';
import { BATCH_ID, BATCH_ID_RULE, MAX_SHARDS, QUEUE_NAME, QUEUE_NAME_RULE } from '../redis/keys.js';
import type { DeadLetter, DeadLetterReason } from '../outcomes/dead-letter.js';
import { cursorParamSchema } from './page-cursor.js';

/**
 * The API's request and response shapes. Requests are checked with them; `/openapi.json` is made
 * from them (so the documentation cannot drift from what the server accepts).
 */

export const DEAD_LETTER_REASONS = [
  'permanent-status',
  'schema-mismatch',
  'bad-response',
  'attempts-exhausted',
  'timeout',
  'max-duration-exceeded',
  'rate-limited',
  'stalled',
  'invalid-operation',
  'request-error',
  'auth-failed',
  'circuit-open',
  'internal-error',
] as const satisfies readonly DeadLetterReason[];

/** Every reason a dead letter can have is in the list above (a compile error otherwise). */
const everyReasonListed: Exclude<DeadLetterReason, (typeof DEAD_LETTER_REASONS)[number]> extends never ? true : never = true;
void everyReasonListed;

const queueName = z.string().regex(QUEUE_NAME, QUEUE_NAME_RULE);
const batchId = z.string().regex(BATCH_ID, BATCH_ID_RULE);
const booleanText = z.enum(['true', 'false']).transform((value) => value === 'true');

export const queueQuerySchema = z.strictObject({
  queue: queueName.optional().describe("queue name (default: the server's queue)"),
});

export const enqueueQuerySchema = z.strictObject({
  queue: queueName.optional().describe("queue name (default: the server's queue)"),
  batch: batchId.optional().describe('batch id to add to (default: a new one)'),
});

export const queueParamsSchema = z.strictObject({ queue: queueName });
export const idParamsSchema = z.strictObject({ id: z.string().min(1).max(256) });
export const keyParamsSchema = z.strictObject({ key: z.string().min(1).max(256).regex(/^\S+$/, 'limit keys may not contain white space') });

export const validationIssueSchema = z.object({
  index: z.number().int().optional().describe('the item of a bulk body (0-based)'),
  line: z.number().int().optional().describe('its NDJSON line (1-based)'),
  path: z.string().describe('the field, e.g. url, retry.attempts, query.limit'),
  message: z.string(),
});

/** Every error answer: RFC 9457 problem details (`application/problem+json`) with sluice's `code`. */
export const errorSchema = z.object({
  type: z.string().describe('the problem type, a URI reference naming the code: /problems/validation-failed, /problems/not-found, …'),
  title: z.string().describe('short, the same for every answer with this code'),
  status: z.number().int().describe('the HTTP status'),
  detail: z.string().describe('what went wrong this time'),
  instance: z.string().optional().describe('the request path'),
  code: z.string().describe('stable error code, e.g. VALIDATION_FAILED, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED'),
  message: z.string().meta({ deprecated: true }).describe('deprecated: the same as detail'),
  errors: z.array(validationIssueSchema).optional().describe('for VALIDATION_FAILED: every problem, by item index (and NDJSON line)'),
  heldMarks: z
    .number()
    .int()
    .optional()
    .describe("for SHARDS_CHANGE_REFUSED: the idempotency keys held in their dedup window, in the queue's shards"),
});

export const enqueueResponseSchema = z.object({
  batchId: z.string(),
  enqueued: z.number().int(),
  duplicates: z.number().int().describe('operations whose idempotency key was already enqueued within the dedup window'),
  ids: z.array(z.string()).describe("job id per operation, in order (a duplicate gets the first job's id)"),
});

export const attemptSchema = z.object({
  at: z.string(),
  durationMs: z.number(),
  status: z.number().int().optional(),
  error: z.string().optional(),
  message: z.string().optional(),
  excerpt: z.string().optional(),
  rateLimited: z.boolean().optional(),
  authRefreshed: z.boolean().optional(),
});

export const operationStateSchema = z.object({
  id: z.string(),
  queue: z.string(),
  state: z
    .enum(['queued', 'scheduled', 'active', 'succeeded', 'dead-lettered', 'unknown'])
    .describe('queued: waiting to start; scheduled: waiting for a retry or for its rate-limit slot; dead-lettered: see deadLetter'),
  opId: z.string(),
  batchId: z.string().nullable(),
  idempotencyKey: z.string(),
  failedAttempts: z.array(attemptSchema).describe('failed attempts so far'),
  createdAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  result: z.unknown().optional().describe('for succeeded: the result line (status, trimmed body, headers)'),
  deadLetter: z
    .object({ reason: z.string(), message: z.string(), status: z.number().int().nullable(), replays: z.number().int() })
    .optional(),
  operation: z.unknown().describe('the operation as enqueued'),
  lane: z
    .object({ id: z.string(), index: z.number().int() })
    .nullable()
    .describe('the lane the operation was enqueued in (one job carrying the operations of a bulk enqueue), or null'),
});

export const batchStatusSchema = z.object({
  batchId: z.string(),
  total: z.number().int(),
  succeeded: z.number().int(),
  deadLettered: z.number().int(),
  pending: z.number().int(),
  duplicates: z.number().int().describe('operations not run because an earlier one holds their idempotency key (listed in the results)'),
  retries: z.number().int().describe('attempts that failed and were retried'),
  enqueuing: z.boolean().describe('a producer is still adding operations'),
  done: z.boolean().describe('nothing pending and nobody adding'),
  createdAt: z.string().nullable(),
});

export const batchListQuerySchema = z.strictObject({
  queue: queueName.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(20).describe('batches per page, newest first'),
  cursor: cursorParamSchema.optional(),
});

const nextCursor = z
  .string()
  .nullable()
  .describe('pass it as ?cursor= for the next page (also in the Link rel="next" header); null: this is the last page');

export const batchPageSchema = z.object({ items: z.array(batchStatusSchema).describe('newest first'), nextCursor });

export const resultsQuerySchema = z.strictObject({
  queue: queueName.optional(),
  failed: booleanText.optional().describe('only dead-lettered operations'),
});

const deadLetterFilterFields = {
  batch: batchId.optional(),
  limitKey: z.string().min(1).max(256).optional(),
  status: z
    .string()
    .regex(/^([1-5]\d\d|none)$/, 'expected an HTTP status such as 404, or none')
    .transform((value) => (value === 'none' ? null : Number(value)))
    .optional()
    .describe('last HTTP status, or "none" for dead letters without one'),
  reason: z.enum(DEAD_LETTER_REASONS).optional(),
};

export const deadLettersQuerySchema = z.strictObject({
  queue: queueName.optional(),
  ...deadLetterFilterFields,
  limit: z.coerce.number().int().min(0).max(1_000).default(100).describe('dead letters per page, listed in full (the summary counts all)'),
  cursor: cursorParamSchema.optional(),
});

export const deadLetterFilterSchema = z.strictObject({
  batch: batchId.optional(),
  limitKey: z.string().min(1).max(256).nullable().optional().describe('null: dead letters without a limit key'),
  status: z.number().int().min(100).max(599).nullable().optional().describe('null: dead letters without a status'),
  reason: z.enum(DEAD_LETTER_REASONS).optional(),
});

export const deadLetterSelectionSchema = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(300)).min(1).max(10_000) }),
  z.strictObject({ filter: deadLetterFilterSchema.describe('every dead letter matching; {} selects all') }),
]);

export const deadLetterGroupSchema = z.object({
  limitKey: z.string().nullable(),
  status: z.number().int().nullable(),
  reason: z.string(),
  count: z.number().int(),
  latest: z.string().nullable().describe("when the group's newest dead letter in the queue was written (null if replayed or purged since)"),
  example: z.string().nullable().describe('its message'),
});

export const deadLetterSchema = z.object({
  id: z.string().describe('the job that died (replays get new job ids)'),
  opId: z.string().describe("the operation's id (its first job id): its results are keyed by it"),
  queue: z.string(),
  batchId: z.string().optional(),
  idempotencyKey: z.string(),
  limitKey: z.string().optional(),
  method: z.string().optional(),
  url: z.string().optional(),
  reason: z.enum(DEAD_LETTER_REASONS),
  message: z.string(),
  status: z.number().int().optional().describe('the last HTTP status, when there was one'),
  attempts: z.array(attemptSchema),
  operation: z.unknown().describe('the operation as enqueued (redacted on reads)'),
  replays: z.number().int(),
  deadLetteredAt: z.string(),
});

/** The schema names every field of a dead letter, with its type (a compile error otherwise). */
const deadLetterDocumented: [Exclude<keyof DeadLetter, keyof z.output<typeof deadLetterSchema>>] extends [never]
  ? DeadLetter extends z.output<typeof deadLetterSchema>
    ? true
    : never
  : never = true;
void deadLetterDocumented;

export const deadLettersResponseSchema = z.object({
  total: z.number().int(),
  groups: z.array(deadLetterGroupSchema),
  items: z.array(deadLetterSchema).describe('the newest matching dead letters in full (after the cursor), up to limit'),
  nextCursor,
});

const remaining = z.number().int().describe('dead letters that match the filter beyond the 10,000 handled: send the request again');

export const replayResponseSchema = z.object({
  replayed: z.number().int(),
  jobIds: z.array(z.string()),
  missing: z.array(z.string()),
  remaining,
});

export const purgeResponseSchema = z.object({ purged: z.number().int(), remaining });

export const limitChangeSchema = z.strictObject({
  rps: z.number().positive().optional().describe('requests per second (at most 100,000)'),
  rpm: z.number().positive().optional().describe('requests per minute'),
  burst: z.number().int().positive().optional(),
  concurrency: z.number().int().positive().optional().describe('requests in flight at most, across the fleet'),
  ttl: z.union([z.string(), z.number().positive()]).optional().describe('make it temporary: 90 (seconds), "90s", "5m", "2h", "1d"'),
});

export const limitStatusSchema = z.object({
  key: z.string(),
  configured: z.object({ rate: z.number().nullable(), burst: z.number(), concurrency: z.number().nullable() }).nullable(),
  override: z
    .object({
      rate: z.number().nullable(),
      burst: z.number().nullable(),
      concurrency: z.number().nullable(),
      expiresInMs: z.number().nullable(),
    })
    .nullable(),
  effectiveRate: z.number().nullable().describe('requests per second the workers use now'),
  inFlight: z.number().int(),
  paused: z.boolean(),
  pausedUntil: z.string().nullable(),
  recent429s: z.number().int().describe('429 answers in the last 5 minutes'),
  queued: z.number().int(),
  lastSeen: z.string().nullable(),
  circuit: z
    .object({
      state: z.enum(['open', 'closed']),
      openSince: z.string().nullable(),
      nextProbeAt: z.string().nullable(),
      attempts: z.number().int().describe("requests counted in the circuit's window"),
      failures: z.number().int().describe('of which failed as the circuit counts failures'),
      waiting: z.number().int().describe('operations waiting for it to close'),
      opened: z.number().int(),
      closed: z.number().int(),
    })
    .nullable()
    .describe("the key's circuit breaker; null when it is off"),
});

export const limitChangedSchema = z.object({
  key: z.string(),
  limit: limitStatusSchema.optional(),
  woken: z.number().int().describe('operations deferred under the old schedule, woken to book again'),
});

export const shardCountSchema = z.object({
  count: z.number().int().describe('the shards producers write to'),
  highest: z.number().int().describe('the most shards the queue ever had: workers run, and reads cover, this many'),
});

export const queueInfoSchema = z.object({
  name: z.string(),
  isDefault: z.boolean().describe("the server's queue (used when a request names none)"),
  shards: shardCountSchema.describe('how the queue is spread over Redis Cluster slots: shard 0 is `{q}`, shard i `{q#i}`'),
});

export const shardChangeSchema = z.strictObject({
  count: z.number().int().min(1).max(MAX_SHARDS).describe(`the shards producers write to from now on, 1 to ${MAX_SHARDS}`),
  force: z
    .boolean()
    .optional()
    .describe('change it even while idempotency keys are held: the same key enqueued again may pick another shard and run twice'),
});

export const shardsChangedSchema = z.object({
  name: z.string(),
  previous: z.number().int().describe('the count before'),
  shards: shardCountSchema,
});
