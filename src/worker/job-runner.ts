import { DelayedError, type Job } from 'bullmq';
import { LANE_JOB_NAME } from '../queue/add-jobs.js';
import { runLane, type LaneRunnerDeps } from './lane-runner.js';

/** What BullMQ runs for each job it fetches. */
export type JobRunner = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

export interface JobRunnerHand {
  run: JobRunner;
  /** Jobs (single jobs and lanes) this process holds now. */
  readonly inHand: number;
}

/**
 * Runs what BullMQ fetches: a lane through the lane runner, any other job as one operation. Both
 * share the process's permits (op-permits.ts); `onChange` hears when the jobs in hand change, so
 * the fetch gate (see sluice-worker.ts) can stop BullMQ fetching lanes this process has no permits for.
 */
export function createJobRunner(deps: LaneRunnerDeps, onChange: () => void): JobRunnerHand {
  let inHand = 0;
  const run: JobRunner = async (job, token, signal) => {
    inHand += 1;
    onChange();
    try {
      if (job.name === LANE_JOB_NAME) return await runLane(deps, job, token, signal);
      return await runSingle(deps, job, token, signal);
    } finally {
      inHand -= 1;
      onChange();
    }
  };
  return {
    run,
    get inHand() {
      return inHand;
    },
  };
}

async function runSingle(deps: LaneRunnerDeps, job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
  try {
    await deps.permits.take(signal);
  } catch {
    // Stopped while the permits were all in lanes' hands: back to the queue, not sent.
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }
  try {
    return await deps.runOp(job, token, signal);
  } finally {
    deps.permits.give();
  }
}
