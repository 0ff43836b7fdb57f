import type { JobEnvelope } from '../queue/job-data.js';
import type { Followers } from '../limits/run-grants.js';
import type { OperationJob } from './operation-job.js';

/** An operation in a lane that waits for its slot longer than this leaves the lane as a job of its own. */
export const MAX_IN_LANE_WAIT_MS = 5_000;

/** What an operation of a lane needs of its lane while it runs. */
export interface LaneOpHost {
  /** The lane job's creation time: its operations' outcome markers are named with it (see outcome-store.ts). */
  timestamp: number;
  stalledCounter: number;
  /** Aborted when the worker stops: an operation then stays in its lane, which is handed back. */
  stopping: AbortSignal;
  /** Writes the operation as a single job of its own, due `delayMs` from now, with the lane's timestamp. */
  depart(id: string, envelope: JobEnvelope, delayMs: number): Promise<void>;
  /** The lane's operations not started yet, in order (see OperationJob.followers). */
  followers: Followers;
}

/**
 * One operation of a lane standing in for a BullMQ job, so that the processor and job-ending.ts
 * run it as they run a single job. How it ended that a job would leave to BullMQ is kept here for
 * the lane runner: a requeue without new data (its slot is a little way off) waits in the lane
 * (`waitUntil`); one with new data (a retry, which carries its attempts), a long wait, or one while
 * the worker stops for a retry leaves the lane as a job (`departed`).
 */
export class LaneOp implements OperationJob {
  readonly priority = 0;
  readonly attemptsMade = 0;
  data: JobEnvelope;
  /** Set when it should run again in its lane at this time (ms). */
  waitUntil: number | undefined;
  /** Set when it left its lane as a job of its own. */
  departed = false;
  #updated = false;

  constructor(
    readonly id: string,
    envelope: JobEnvelope,
    private readonly host: LaneOpHost,
  ) {
    this.data = envelope;
  }

  get timestamp(): number {
    return this.host.timestamp;
  }

  get stalledCounter(): number {
    return this.host.stalledCounter;
  }

  get followers(): Followers {
    return this.host.followers;
  }

  changePriority(): Promise<void> {
    return Promise.resolve();
  }

  updateData(data: JobEnvelope): Promise<void> {
    this.data = data;
    this.#updated = true;
    return Promise.resolve();
  }

  async moveToDelayed(timestamp: number): Promise<void> {
    const delayMs = timestamp - Date.now();
    if (!this.#updated && (delayMs <= MAX_IN_LANE_WAIT_MS || this.host.stopping.aborted)) {
      this.waitUntil = timestamp;
      return;
    }
    await this.host.depart(this.id, this.data, delayMs);
    this.departed = true;
  }
}
