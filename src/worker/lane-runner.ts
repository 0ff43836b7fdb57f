import { setMaxListeners } from 'node:events';
import { DelayedError, type Job } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import type { AddJobs } from '../queue/add-jobs.js';
import type { JobEnvelope } from '../queue/job-data.js';
import { isLaneData, laneEnvelope, laneMembers, LANE_WITH_GAPS_VERSION, type LaneData } from '../queue/lanes.js';
import { bullQueueName, PREFIX, queueKeys } from '../redis/keys.js';
import { bookingHolder } from '../queue/wake-jobs.js';
import { isRedisFailure } from '../redis/redis-errors.js';
import { laneMarkerKey, laneOutcomeAt } from '../outcomes/outcome-store.js';
import { LaneOp, type LaneOpHost } from './lane-op.js';
import type { OpPermits } from './op-permits.js';
import type { OperationJob } from './operation-job.js';
import { deadLetterUnexpectedFailure, isDeadLettered, type UnexpectedFailureDeps } from './unexpected-failure.js';

/** A lane back from this many stalls sends its operations on as jobs of their own: a poison one then stalls only itself. */
export const LANE_SPLIT_STALLS = 2;
/** A lane of a format this worker does not know waits this long for a newer worker. */
const UNKNOWN_LANE_DELAY_MS = 30_000;

export interface LaneRunnerDeps extends UnexpectedFailureDeps {
  redis: RedisClient;
  permits: OpPermits;
  /** Runs one operation as the processor runs a single job (processor.ts). */
  runOp: (job: OperationJob, token: string | undefined, signal: AbortSignal | undefined) => Promise<unknown>;
  /** Adds single jobs (an operation leaving its lane). */
  addJobs: AddJobs;
  /** Aborted when the worker begins to stop. */
  stopping: AbortSignal;
}

/** What a lane's run returns to BullMQ (its `returnvalue`): counts, not result lines (those are in the batch). */
export interface LaneSummary {
  operations: number;
  succeeded: number;
  deadLettered: number;
  /** Left the lane as jobs of their own (retries, long waits). */
  departed: number;
  /** Ended on an earlier run of the lane (a worker died or stopped part-way). */
  endedBefore: number;
}

/**
 * Runs a lane (queue/lanes.ts): its operations one by one as permits free (op-permits.ts), each
 * through the processor with a LaneOp for a job, so each keeps its own limiter slot, attempts,
 * outcome and dead letter. An operation whose slot is a little way off waits in the lane without a
 * permit; a retry leaves the lane as a single job (LaneOp). A lane back after a worker died or
 * stopped skips the operations that ended (their outcome markers) or left (their jobs); those in
 * flight when it died are sent again with the same key. A stopping worker starts no more of a
 * lane's operations and hands the lane back once those in flight have ended.
 */
export async function runLane(
  deps: LaneRunnerDeps,
  job: Job,
  token: string | undefined,
  signal: AbortSignal | undefined,
  lockLost?: AbortSignal,
): Promise<unknown> {
  const lane: unknown = job.data;
  if (!isLaneData(lane)) return laterVersion(deps, job, token);
  const host: LaneOpHost = {
    timestamp: job.timestamp,
    stalledCounter: job.stalledCounter,
    stopping: deps.stopping,
    depart: (id, envelope, delayMs) => depart(deps, [{ id, envelope, delayMs }], job.timestamp),
    followers: { next: () => [], booked: () => undefined },
  };
  const again = job.attemptsStarted > 1 || job.stalledCounter > 0;
  const all = laneMembers(lane);
  const pending = again
    ? await notEnded(deps, lane, job.timestamp, all).catch((error: unknown) => redisTrouble(deps, job, token, error))
    : all;
  if (pending.length < all.length)
    deps.logger.info(
      { jobId: job.id, endedBefore: all.length - pending.length, pending: pending.length },
      'lane back: operations already ended (or sent on as jobs of their own) are not sent again',
    );
  const summary: LaneSummary = {
    operations: all.length,
    succeeded: 0,
    deadLettered: 0,
    departed: 0,
    endedBefore: all.length - pending.length,
  };
  if (job.stalledCounter >= LANE_SPLIT_STALLS) {
    deps.logger.warn(
      { jobId: job.id, stalls: job.stalledCounter, operations: pending.length },
      'lane stalled again: its operations go on as jobs of their own',
    );
    // All in one call: written together, or none of them (the lane, back, splits again).
    const leaving = pending.map((index) => ({ id: `${lane.lane}-${index}`, envelope: laneEnvelope(lane, index), delayMs: 1 }));
    await depart(deps, leaving, job.timestamp).catch((error: unknown) => redisTrouble(deps, job, token, error));
    return { ...summary, departed: pending.length };
  }
  const left = await runPending(deps, lane, host, pending, summary, token, signal, lockLost);
  if (lockLost?.aborted) {
    // Its lock is another worker's now (the stalled-job check gave the lane away while this one ran
    // it): that worker runs what this one did not start, and nothing is moved from here.
    deps.logger.warn(
      { jobId: job.id, pending: left.pending },
      "lost the lane's lock: stopped starting its operations; the worker that holds it now runs the rest",
    );
    throw new DelayedError();
  }
  if (left.stranded) {
    // An operation's end could not be written while the worker stops: the lane stays active, and the
    // stalled-job check gives it to another worker, which finds what did end (see job-ending.ts).
    throw new DelayedError();
  }
  if (left.pending > 0) {
    deps.logger.info({ jobId: job.id, pending: left.pending }, 'worker stopping: lane handed back with its operations not yet sent');
    await job.moveToDelayed(Date.now(), token).catch((error: unknown) => {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not hand the lane back; it returns once its lock lapses');
    });
    throw new DelayedError();
  }
  return summary;
}

/** After a Redis error, the lane is tried again this much later (a single job is requeued the same way). */
const REDIS_ERROR_DELAY_MS = 1_000;

/**
 * Redis failed while the lane was read or split (restarting, failing over, full): the lane goes back
 * to the queue to be tried again, rather than fail (and have its operations dead-lettered). Any other
 * error is thrown on.
 */
async function redisTrouble(deps: LaneRunnerDeps, job: Job, token: string | undefined, error: unknown): Promise<never> {
  if (!isRedisFailure(error)) throw error;
  deps.logger.warn({ err: error, jobId: job.id, outcome: 'requeued' }, 'could not read or split the lane; it is tried again shortly');
  await job.moveToDelayed(Date.now() + REDIS_ERROR_DELAY_MS, token).catch(() => undefined);
  throw new DelayedError();
}

/** The operations of a lane back from a stall or a hand-back that have not ended: not marked ended in the lane's outcome marker, no job of their own. */
async function notEnded(deps: LaneRunnerDeps, lane: LaneData, timestamp: number, indexes: number[]): Promise<number[]> {
  const jobKey = (id: string) => `${PREFIX}:${bullQueueName(deps.queue)}:${id}`;
  const pipeline = deps.redis.pipeline();
  for (const index of indexes) pipeline.exists(jobKey(`${lane.lane}-${index}`));
  // The marker after the jobs: a job of its own records its outcome there before it is removed.
  pipeline.getBuffer(laneMarkerKey(queueKeys(deps.queue), lane.lane, timestamp));
  const replies = (await pipeline.exec()) ?? [];
  const [markerError, marker] = replies[indexes.length]!;
  if (markerError) throw markerError;
  return indexes.filter((index, i) => {
    const [existsError, exists] = replies[i]!;
    if (existsError) throw existsError;
    return exists === 0 && laneOutcomeAt(marker as Buffer | null, index) === undefined;
  });
}

interface Left {
  /** Not sent, or sent and aborted: the lane is handed back with them. */
  pending: number;
  /** Whether an operation's end could not be written (see job-ending.ts, leftIfStopped). */
  stranded: boolean;
}

/** Runs the pending operations in order, each with a permit; waits for a slot without one. */
async function runPending(
  deps: LaneRunnerDeps,
  lane: LaneData,
  host: LaneOpHost,
  pending: number[],
  summary: LaneSummary,
  token: string | undefined,
  signal: AbortSignal | undefined,
  lockLost: AbortSignal | undefined,
): Promise<Left> {
  const ready = [...pending];
  // The operations not started yet, in order: a start books their slots with its own when it can,
  // and those booked start at once (see nextToStart).
  // None once the lane stops (a booked operation that does not start loses its slot, and its place
  // in line), and no more than the permits this lane holds or could take now: the operations it
  // runs start at their slots within a moment and give theirs back.
  // Named as the processor books them (its queue, the operation's id: see bookingHolder); each
  // holder's index is kept, since calls in flight at once may name different ones.
  const booked = new Set<number>();
  const indexOf = new Map<string, number>();
  host.followers = {
    next(count) {
      if (stop.aborted) return [];
      const named = ready.filter((index) => !booked.has(index)).slice(0, Math.min(count, deps.permits.free + running));
      return named.map((index) => {
        const holder = bookingHolder(deps.queue, `${lane.lane}-${index}`);
        indexOf.set(holder, index);
        return holder;
      });
    },
    booked(holders) {
      for (const holder of holders) {
        const index = indexOf.get(holder);
        if (index !== undefined && ready.includes(index)) booked.add(index);
      }
      changed();
    },
  };
  const envelopes = new Map<number, JobEnvelope>();
  /** Operations waiting in the lane for their turn: each one's timer, and its index. */
  const timers = new Map<NodeJS.Timeout, number>();
  let running = 0;
  let stranded = false;
  let notify: (() => void) | undefined;
  const changed = () => {
    notify?.();
    notify = undefined;
  };
  // Every operation in flight listens to the lane's signal (its request, its waits): as many as permits.
  if (signal) setMaxListeners(0, signal);
  const stop = AbortSignal.any([deps.stopping, ...(signal ? [signal] : []), ...(lockLost ? [lockLost] : [])]);
  stop.addEventListener('abort', changed, { once: true });

  const runOne = async (index: number) => {
    const id = `${lane.lane}-${index}`;
    const op = new LaneOp(id, envelopes.get(index) ?? laneEnvelope(lane, index), host);
    try {
      await deps.runOp(op, token, signal);
      summary.succeeded += 1;
    } catch (error) {
      if (isDeadLettered(error)) summary.deadLettered += 1;
      else if (!(error instanceof Error) || error.name !== 'DelayedError') {
        await deadLetterUnexpectedFailure(deps, op, error instanceof Error ? error : new Error(String(error)));
        summary.deadLettered += 1;
      } else if (op.departed) summary.departed += 1;
      else if (op.waitUntil === undefined) stranded = true;
      else {
        envelopes.set(index, op.data);
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            insertInOrder(ready, index);
            changed();
          },
          Math.max(0, op.waitUntil - Date.now()),
        );
        timers.set(timer, index);
      }
    }
  };

  // Not while an operation before it waits in the lane for its turn: behind it in the keys' lines,
  // it would only ask to be told to wait too. The one ahead, at its turn, books the slots of those
  // that follow it when it can (see run-grants.ts): a binding key is asked once per run of them.
  /** Where in `ready` the next operation to start is: a booked one first, else the head unless one before it waits; -1 for none. */
  const nextToStart = () => {
    const bookedAt = booked.size === 0 ? -1 : ready.findIndex((index) => booked.has(index));
    if (bookedAt >= 0) return bookedAt;
    if (ready.length === 0) return -1;
    for (const waiting of timers.values()) if (waiting < ready[0]!) return -1;
    return 0;
  };
  while (!stop.aborted) {
    if (nextToStart() < 0) {
      if (ready.length === 0 && running === 0 && timers.size === 0) break;
      await new Promise<void>((resolve) => (notify = resolve));
      continue;
    }
    try {
      await deps.permits.take(stop);
    } catch {
      break;
    }
    const at = nextToStart();
    if (at < 0) {
      // What could start changed while the permit was awaited: give it back and look again.
      deps.permits.give();
      continue;
    }
    const [index] = ready.splice(at, 1) as [number];
    booked.delete(index);
    running += 1;
    void runOne(index).finally(() => {
      running -= 1;
      deps.permits.give();
      changed();
    });
  }
  while (running > 0) await new Promise<void>((resolve) => (notify = resolve));
  for (const timer of timers.keys()) clearTimeout(timer);
  return { pending: ready.length + timers.size, stranded };
}

function insertInOrder(list: number[], value: number): void {
  let at = list.length;
  while (at > 0 && list[at - 1]! > value) at -= 1;
  list.splice(at, 0, value);
}

/** Writes operations of a lane as jobs of their own, in one call, with the lane's timestamp (see LaneOpHost.depart). */
async function depart(
  deps: LaneRunnerDeps,
  leaving: readonly { id: string; envelope: JobEnvelope; delayMs: number }[],
  timestamp: number,
): Promise<void> {
  // Always delayed (at least 1 ms): each comes back ahead of the jobs not started yet, as a requeued job does.
  const jobs = leaving.map(({ id, envelope, delayMs }) => ({
    id,
    json: JSON.stringify(envelope),
    delayMs: Math.max(1, Math.round(delayMs)),
  }));
  await deps.addJobs(jobs, { timestamp });
}

/** A lane this worker cannot read: of a newer format, it waits for a newer worker; anything else runs as an operation (and is refused as one). */
async function laterVersion(deps: LaneRunnerDeps, job: Job, token: string | undefined): Promise<unknown> {
  const version = (job.data as { v?: unknown } | null)?.v;
  if (typeof version === 'number' && version > LANE_WITH_GAPS_VERSION) {
    deps.logger.warn({ jobId: job.id, version }, 'lane of a newer format; left for a newer worker');
    await job.moveToDelayed(Date.now() + UNKNOWN_LANE_DELAY_MS, token);
    throw new DelayedError();
  }
  return deps.runOp(job, token, undefined);
}

/** The `failed` safety net for a lane: each of its operations that has not ended is dead-lettered (internal-error). */
export async function deadLetterLane(deps: LaneRunnerDeps, job: Job, error: Error): Promise<void> {
  const lane: unknown = job.data;
  if (!isLaneData(lane)) return deadLetterUnexpectedFailure(deps, job, error);
  const pending = await notEnded(deps, lane, job.timestamp, laneMembers(lane));
  for (const index of pending) {
    const op = { id: `${lane.lane}-${index}`, data: laneEnvelope(lane, index), timestamp: job.timestamp };
    await deadLetterUnexpectedFailure(deps, op, error);
  }
}
