import type { Redis } from 'ioredis';
import { queueKeys, type QueueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { groupField } from './dead-letter-groups.js';

/**
 * Records how an operation ended, atomically and at most once per job: batch counters, the batch's
 * result line and, for failures, the dead letter. A job that runs twice (a worker died after the
 * request but before BullMQ heard of it) is counted once.
 */

/** Outcomes written per call at most (more wait for the next call). */
const MAX_OUTCOMES_PER_CALL = 200;

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

/** An outcome found recorded: for a succeeded operation of a batch, with its result line. */
export interface RecordedOutcome {
  outcome: OutcomeRecord['outcome'];
  resultLine: unknown;
}

export interface RecordOptions {
  /**
   * Written at once, alone, even when a `noeviction` Redis is full (past `maxmemory` by this one
   * outcome): the last try of a worker that is stopping (see worker/job-ending.ts). Redis 7 or later.
   */
  evenIfFull?: boolean;
}

export interface OutcomeStore {
  /** Returns false when this job's outcome was already recorded. */
  record(record: OutcomeRecord, options?: RecordOptions): Promise<boolean>;
  /** How this job instance ended, when its outcome is recorded (the marker `record` sets). */
  recorded(job: Pick<OutcomeRecord, 'jobId' | 'jobTimestamp' | 'opId' | 'batchId'>): Promise<RecordedOutcome | undefined>;
  /** Counts one retry against the batch (shown in summaries). */
  countRetry(batchId: string | undefined): Promise<void>;
}

export function createOutcomeStore(redis: Redis, queue: string, batchRetentionSeconds: number): OutcomeStore {
  const keys = queueKeys(queue);
  const recordOutcomes = defineScript(redis, 'record-outcomes');
  const recordEvenIfFull = defineScript(redis, 'record-outcomes', { allowOom: true });
  interface Pending {
    entry: OutcomeRecord;
    resolve: (written: boolean) => void;
    reject: (error: unknown) => void;
  }
  const pending: Pending[] = [];
  let sending = false;
  let scheduled = false;

  /**
   * Outcomes are written in groups: those recorded while a call is on its way (or in the same turn
   * of the event loop) go together in the next call. An idle worker writes each at once; a busy one
   * saves a round trip and a script call per job. Each caller still waits for its own write.
   */
  function schedule(): void {
    if (scheduled || sending || pending.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void send();
    });
  }

  async function send(): Promise<void> {
    const group = pending.splice(0, MAX_OUTCOMES_PER_CALL);
    sending = true;
    try {
      const written = (await recordOutcomes(
        ...scriptArgs(
          keys,
          group.map((item) => item.entry),
          batchRetentionSeconds,
        ),
      )) as number[];
      group.forEach((item, i) => item.resolve(written[i] === 1));
    } catch (error) {
      for (const item of group) item.reject(error);
    } finally {
      sending = false;
      schedule();
    }
  }

  async function record(entry: OutcomeRecord, options: RecordOptions = {}): Promise<boolean> {
    if (options.evenIfFull) {
      const [written] = (await recordEvenIfFull(...scriptArgs(keys, [entry], batchRetentionSeconds))) as number[];
      return written === 1;
    }
    return new Promise<boolean>((resolve, reject) => {
      pending.push({ entry, resolve, reject });
      schedule();
    });
  }

  async function recorded(job: Pick<OutcomeRecord, 'jobId' | 'jobTimestamp' | 'opId' | 'batchId'>): Promise<RecordedOutcome | undefined> {
    const marker = keys.outcome(`${job.jobId}:${job.jobTimestamp}`);
    // One round trip: the marker, and the result line a batch keeps (the job's result when it succeeded).
    const [outcome, line] = job.batchId
      ? ((await redis.pipeline().get(marker).hget(keys.batchResults(job.batchId), job.opId).exec()) ?? []).map(([error, value]) => {
          if (error) throw error;
          return value as string | null;
        })
      : [await redis.get(marker), null];
    if (outcome !== 'succeeded' && outcome !== 'deadLettered') return undefined;
    return { outcome, resultLine: outcome === 'succeeded' && line ? (JSON.parse(line) as unknown) : undefined };
  }

  async function countRetry(batchId: string | undefined): Promise<void> {
    if (batchId) await redis.hincrby(keys.batch(batchId), 'retries', 1);
  }

  return { record, recorded, countRetry };
}

/** record-outcomes.lua's arguments for these outcomes: the number of keys, nine keys per outcome, then the ARGV. */
function scriptArgs(keys: QueueKeys, entries: readonly OutcomeRecord[], batchRetentionSeconds: number): (string | number)[] {
  const scriptKeys: string[] = [];
  const args: (string | number)[] = [OUTCOME_MARKER_TTL_MS, batchRetentionSeconds, Date.now()];
  for (const entry of entries) {
    const batch = entry.batchId;
    scriptKeys.push(
      keys.outcome(`${entry.jobId}:${entry.jobTimestamp}`),
      batch ? keys.batch(batch) : keys.none,
      batch ? keys.batchResults(batch) : keys.none,
      keys.deadLetters,
      keys.deadLetterIndex,
      batch ? keys.batchDeadLetters(batch) : keys.none,
      keys.deadLetterGroups,
      keys.deadLetterGroupLatest,
      batch ? keys.batchDeadLetterGroups(batch) : keys.none,
    );
    args.push(
      entry.outcome,
      entry.jobId,
      entry.opId,
      JSON.stringify(entry.resultLine),
      entry.deadLetter === undefined ? '' : JSON.stringify(entry.deadLetter),
      batch ? '1' : '0',
      entry.deadLetter === undefined ? '' : groupField(entry.deadLetter as { limitKey?: string; status?: number; reason: string }),
    );
  }
  return [scriptKeys.length, ...scriptKeys, ...args];
}
