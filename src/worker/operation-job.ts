import type { Job } from 'bullmq';

/** The operations of a lane that come next (see limits/run-grants.ts Followers, which names them by holder). */
export interface LaneFollowers {
  /** Their ids, in order, at most `count`. */
  next(count: number): readonly string[];
  /** The slots of these were booked: they should start soon. */
  booked(ids: readonly string[]): void;
}

/**
 * What running one operation needs of its job: a BullMQ job (a single job), or one operation of a
 * lane standing in for one (see lane-op.ts). The processor and job-ending.ts use nothing else.
 */
export type OperationJob = Pick<
  Job,
  'id' | 'data' | 'timestamp' | 'stalledCounter' | 'attemptsMade' | 'priority' | 'changePriority' | 'moveToDelayed' | 'updateData'
> & {
  /** An operation of a lane: those that come next in it, whose slots its own booking may take too (by id, see LaneOp). */
  followers?: LaneFollowers;
};
