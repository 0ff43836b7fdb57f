import type { RedisClient } from '../redis/client.js';
import { laneOfOpId } from '../queue/lanes.js';
import { queueKeys, type QueueKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { groupField } from './dead-letter-groups.js';
import { readResultLine, storedResultLine, type ResultLine } from './result-line.js';

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
  /** The line `sluice results` prints for this operation (its id is opId: the field its batch keeps it in). */
  resultLine: ResultLine;
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

export function createOutcomeStore(redis: RedisClient, queue: string, batchRetentionSeconds: number): OutcomeStore {
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
    const marker = outcomeMarker(keys, job.jobId, job.jobTimestamp);
    // One round trip: the marker, and the result line a batch keeps (the job's result when it succeeded).
    const pipeline = redis.pipeline();
    if (marker.index === undefined) pipeline.get(marker.key);
    else pipeline.getBuffer(marker.key);
    if (job.batchId) pipeline.hget(keys.batchResults(job.batchId), job.opId);
    const [ended, line] = ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value as unknown;
    });
    const outcome = marker.index === undefined ? ended : laneOutcomeAt(ended as Buffer | null, marker.index);
    if (outcome !== 'succeeded' && outcome !== 'deadLettered') return undefined;
    return { outcome, resultLine: outcome === 'succeeded' && typeof line === 'string' ? readResultLine(job.opId, line) : undefined };
  }

  async function countRetry(batchId: string | undefined): Promise<void> {
    if (batchId) await redis.hincrby(keys.batch(batchId), 'retries', 1);
  }

  return { record, recorded, countRetry };
}

/**
 * Where a job instance's outcome is marked: a single job's in a key of its own; an operation of a
 * lane (also one that left its lane as a job of its own: same id, the lane's timestamp) in two bits
 * of its lane's marker, at its index (see record-outcomes.lua).
 */
export function outcomeMarker(keys: QueueKeys, jobId: string, jobTimestamp: number): { key: string; index?: number } {
  const inLane = laneOfOpId(jobId);
  return inLane
    ? { key: laneMarkerKey(keys, inLane.lane, jobTimestamp), index: inLane.index }
    : { key: keys.outcome(`${jobId}:${jobTimestamp}`) };
}

/** The outcome marker of the operations of the lane `lane` (its id, `l-…`) created at `timestamp`. */
export function laneMarkerKey(keys: QueueKeys, lane: string, timestamp: number): string {
  return keys.outcome(`${lane}:${timestamp}`);
}

/** How the operation at `index` of a lane ended, from its lane's marker (the string's bytes, or null when none ended). */
export function laneOutcomeAt(marker: Buffer | null, index: number): RecordedOutcome['outcome'] | undefined {
  const bits = ((marker?.[index >> 2] ?? 0) >> (6 - 2 * (index & 3))) & 3;
  return bits === 3 ? 'deadLettered' : bits === 2 ? 'succeeded' : undefined;
}

/**
 * record-outcomes.lua's arguments for these outcomes: the number of keys, the keys (the queue's four
 * dead-letter keys, five per batch, then the markers, each once), then the ARGV.
 */
function scriptArgs(keys: QueueKeys, entries: readonly OutcomeRecord[], batchRetentionSeconds: number): (string | number)[] {
  const scriptKeys: string[] = [keys.deadLetters, keys.deadLetterIndex, keys.deadLetterGroups, keys.deadLetterGroupLatest];
  /** Where a marker (by key) or a batch's five keys (by batch id) begin in KEYS (from 1), added when first named. */
  const markers = new Map<string, number>();
  const batches = new Map<string, number>();
  const place = <K>(places: Map<K, number>, name: K, keysOf: () => string[]): number => {
    let at = places.get(name);
    if (at === undefined) {
      at = scriptKeys.length + 1;
      places.set(name, at);
      scriptKeys.push(...keysOf());
    }
    return at;
  };
  const now = Date.now();
  const args: (string | number)[] = [OUTCOME_MARKER_TTL_MS, batchRetentionSeconds];
  for (const entry of entries) {
    const batch = entry.batchId;
    const marker = outcomeMarker(keys, entry.jobId, entry.jobTimestamp);
    args.push(
      place(markers, marker.key, () => [marker.key]),
      marker.index ?? '',
      // A batch's keys are made once per call, not once per outcome.
      batch
        ? place(batches, batch, () => [
            keys.batch(batch),
            keys.batchResults(batch),
            keys.batchDeadLetters(batch),
            keys.batchDeadLetterGroups(batch),
            keys.batchPlaces(batch),
          ])
        : 0,
      entry.outcome,
      entry.opId,
      storedResultLine(entry.resultLine),
    );
    if (entry.outcome === 'deadLettered') {
      const letter = entry.deadLetter as { limitKey?: string; status?: number; reason: string; deadLetteredAt?: string } | undefined;
      // Indexed at the time it shows, so newest first is by that time (also for two written in one call).
      const at = letter?.deadLetteredAt === undefined ? NaN : Date.parse(letter.deadLetteredAt);
      args.push(
        entry.jobId,
        letter === undefined ? '' : JSON.stringify(letter),
        letter === undefined ? '' : groupField(letter),
        Number.isFinite(at) ? at : now,
      );
    }
  }
  return [scriptKeys.length, ...scriptKeys, ...args];
}
