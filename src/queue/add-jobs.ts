import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { defineScript } from '../redis/scripts.js';

export interface NewJob {
  id: string;
  data: unknown;
}

export type AddJobs = (jobs: readonly NewJob[]) => Promise<boolean[]>;

/**
 * Adds chunks of prioritized jobs, one script call each (redis/lua/add-jobs.lua), written exactly as
 * BullMQ's own add writes a job: BullMQ's addBulk runs a script per job, and Redis time bounds an
 * enqueue. `name` and `priority` are the same for every job (sluice adds `op` jobs at NEW_JOB_PRIORITY).
 */
export function createJobAdder(redis: Redis, queue: Queue, name: string, priority: number): AddJobs {
  const addJobs = defineScript(redis, 'add-jobs');
  const { meta, prioritized, pc, marker, events, active } = queue.keys as Record<string, string>;
  return async (jobs) => {
    if (jobs.length === 0) return [];
    const keys = [meta!, prioritized!, pc!, marker!, events!, active!, ...jobs.map((job) => queue.toKey(job.id))];
    const args: (string | number)[] = [Date.now(), name, priority];
    for (const job of jobs) args.push(job.id, JSON.stringify(job.data), JSON.stringify({ jobId: job.id, priority, attempts: 0 }));
    const added = (await addJobs(keys.length, ...keys, ...args)) as number[];
    return added.map((value) => value === 1);
  };
}
