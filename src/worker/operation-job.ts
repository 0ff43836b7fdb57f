import type { Job } from 'bullmq';
import type { Followers } from '../limits/run-grants.js';

/**
 * What running one operation needs of its job: a BullMQ job (a single job), or one operation of a
 * lane standing in for one (see lane-op.ts). The processor and job-ending.ts use nothing else.
 */
export type OperationJob = Pick<
  Job,
  'id' | 'data' | 'timestamp' | 'stalledCounter' | 'attemptsMade' | 'priority' | 'changePriority' | 'moveToDelayed' | 'updateData'
> & {
  /** An operation of a lane: those that come next in it, whose slots its own booking may take too (see LaneOp). */
  followers?: Followers;
};
