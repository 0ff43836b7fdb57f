import type { RedisClient } from '../redis/client.js';
import { LANE_JOB_NAME } from '../queue/add-jobs.js';
import { holdsOperation, isLaneData, laneEnvelope, laneOfOpId } from '../queue/lanes.js';
import type { JobEnvelope } from '../queue/job-data.js';
import { readResultLine, type ResultLine } from '../outcomes/result-line.js';
import { laneMarkerKey, laneOutcomeAt } from '../outcomes/outcome-store.js';
import { queueKeys } from '../redis/keys.js';
import type { ShardQueue } from './queue-registry.js';

/** An operation found in its lane (queue/lanes.ts): its envelope, the lane's job, and its result line once it has ended. */
export interface LaneOpFound {
  lane: { id: string; index: number };
  envelope: JobEnvelope;
  /** The lane job's BullMQ state (waiting, prioritized, delayed, active, completed, failed). */
  laneState: string;
  createdAt: number;
  /** Its line in the batch's results, once it has ended. */
  line: ResultLine | undefined;
  /**
   * This run ended dead-lettered and the operation was replayed since (only dead letters are), as
   * a job of its own or in another lane: its lane's outcome marker says so (kept 6 h), or, past
   * that, its lane has ended and its operation's line names another run of it. (While the lane is
   * pending and its marker says nothing, such a line is an earlier run's: this run is the replay.)
   */
  replayed: boolean;
}

/**
 * The operation `l-<lane>-<index>` inside its lane in one shard of its queue, or undefined (no such
 * lane, index or a lane already removed). The lane's result lines are in its shard's batch keys. An operation that left its lane (a retry) is a job of its own, and one that was
 * dead-lettered has a dead letter: the caller looks for both first.
 */
export async function findLaneOp(
  redis: RedisClient,
  shard: Pick<ShardQueue, 'name' | 'queue'>,
  id: string,
): Promise<LaneOpFound | undefined> {
  const where = laneOfOpId(id);
  if (!where) return undefined;
  const job = await shard.queue.getJob(where.lane);
  if (!job || job.name !== LANE_JOB_NAME || !isLaneData(job.data) || !holdsOperation(job.data, where.index)) return undefined;
  const envelope = laneEnvelope(job.data, where.index);
  const keys = queueKeys(shard.name);
  const [laneState, line, marker] = await Promise.all([
    job.getState(),
    redis.hget(keys.batchResults(job.data.batchId), envelope.opId),
    redis.getBuffer(laneMarkerKey(keys, where.lane, job.timestamp)),
  ]);
  const ended = line ? readResultLine(envelope.opId, line) : undefined;
  // How this run of it ended, when it has (also after it left its lane for a retry: the same marker).
  const endedHere = laneOutcomeAt(marker, where.index);
  return {
    lane: { id: where.lane, index: where.index },
    envelope,
    laneState,
    createdAt: job.timestamp,
    // The operation's line is its last run's: a replayed operation (its id is not its place in this
    // lane) has ended here only once the line names this lane's run of it.
    line: ended && ended.jobId === id ? ended : undefined,
    replayed:
      ended?.jobId !== id &&
      (endedHere === 'deadLettered' || (ended !== undefined && (laneState === 'completed' || laneState === 'failed'))),
  };
}
