import type { AttemptRecord } from '../queue/job-data.js';

/** Why an operation was dead-lettered. */
export type DeadLetterReason =
  | 'permanent-status'
  /** An accepted status whose body does not match `expect.schema` (attempt error SCHEMA_MISMATCH). */
  | 'schema-mismatch'
  /** An accepted status whose body could not be used: RESPONSE_TOO_LARGE or BAD_ENCODING. */
  | 'bad-response'
  | 'attempts-exhausted'
  | 'timeout'
  | 'max-duration-exceeded'
  | 'rate-limited'
  | 'stalled'
  | 'invalid-operation'
  | 'request-error'
  | 'auth-failed'
  | 'internal-error';

/** A dead letter: the operation, every attempt and why it stopped. Kept until replayed or purged. */
export interface DeadLetter {
  /** The id of the job that died (replays get new job ids). */
  id: string;
  /** The operation's id (its first job id); results are keyed by it. */
  opId: string;
  queue: string;
  batchId?: string;
  idempotencyKey: string;
  limitKey?: string;
  method?: string;
  url?: string;
  reason: DeadLetterReason;
  message: string;
  /** The last HTTP status, when there was one. */
  status?: number;
  attempts: AttemptRecord[];
  /** The operation exactly as it was enqueued. */
  operation: unknown;
  replays: number;
  deadLetteredAt: string;
}
