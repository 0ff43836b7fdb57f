import type { Job } from 'bullmq';

/**
 * What running one operation needs of its job: a BullMQ job (a single job), or one operation of a
 * lane standing in for one (see lane-op.ts). The processor and job-ending.ts use nothing else.
 */
export type OperationJob = Pick<
  Job,
  'id' | 'data' | 'timestamp' | 'stalledCounter' | 'attemptsMade' | 'priority' | 'changePriority' | 'moveToDelayed' | 'updateData'
>;
