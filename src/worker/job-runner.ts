import { DelayedError, type Job } from 'bullmq';
import { LANE_JOB_NAME } from '../queue/add-jobs.js';
import { runLane, type LaneRunnerDeps } from './lane-runner.js';

/** What BullMQ runs for each job it fetches. */
export type JobRunner = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

export interface JobRunnerHand {
  run: JobRunner;
  /** BullMQ fetched this job and will run it (it fetches several in a row before it starts any). */
  fetched(job: Job): void;
  /** A job fetched that will not run after all (BullMQ failed it without running it); nothing if it ran. */
  forget(job: Job): void;
  /** Jobs (single jobs and lanes) this process holds now. */
  readonly inHand: number;
  /** Jobs fetched and not started yet, and how many of those are lanes. */
  readonly waiting: { jobs: number; lanes: number };
  /** BullMQ could not renew these jobs' locks (another worker holds them now): lanes among them stop starting operations. */
  lockLost(jobIds: readonly string[]): void;
}

/**
 * Runs what BullMQ fetches: a lane through the lane runner, any other job as one operation. Both
 * share the process's permits (op-permits.ts); `onChange` hears when the jobs fetched or in hand
 * change, so the fetch gate (see fetch-gate.ts) can stop BullMQ fetching lanes this process has no permits for.
 */
export function createJobRunner(deps: LaneRunnerDeps, onChange: () => void): JobRunnerHand {
  let inHand = 0;
  // Fetched and not started: job id → whether it is a lane.
  const waiting = new Map<string, boolean>();
  let waitingLanes = 0;
  const leaveWaiting = (job: Job): boolean => {
    const lane = waiting.get(job.id!);
    if (lane === undefined) return false;
    waiting.delete(job.id!);
    if (lane) waitingLanes -= 1;
    return true;
  };
  // Running lanes: job id → aborted when its lock is lost.
  const lanes = new Map<string, AbortController>();
  const run: JobRunner = async (job, token, signal) => {
    leaveWaiting(job);
    inHand += 1;
    onChange();
    try {
      if (job.name !== LANE_JOB_NAME) return await runSingle(deps, job, token, signal);
      const lost = new AbortController();
      lanes.set(job.id!, lost);
      try {
        return await runLane(deps, job, token, signal, lost.signal);
      } finally {
        if (lanes.get(job.id!) === lost) lanes.delete(job.id!);
      }
    } finally {
      inHand -= 1;
      onChange();
    }
  };
  return {
    run,
    fetched(job) {
      if (waiting.has(job.id!)) return;
      const lane = job.name === LANE_JOB_NAME;
      waiting.set(job.id!, lane);
      if (lane) waitingLanes += 1;
      onChange();
    },
    forget(job) {
      if (leaveWaiting(job)) onChange();
    },
    get inHand() {
      return inHand;
    },
    lockLost(jobIds) {
      for (const id of jobIds) lanes.get(id)?.abort();
    },
    get waiting() {
      return { jobs: waiting.size, lanes: waitingLanes };
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
