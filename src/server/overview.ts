import { z } from 'zod';
import type { Metrics, Queue } from 'bullmq';
import type { LimitsAdmin } from '../limits/limits-admin.js';
import { ApiError } from './api-errors.js';
import { batchStatusSchema, deadLetterGroupSchema, limitStatusSchema } from './api-schemas.js';
import type { QueueDirectory } from './queue-directory.js';
import type { QueueRegistry, QueueResources } from './queue-registry.js';
import { batchView } from './routes/batches.js';

/** Minutes of throughput shown, the current (partial) minute last. */
export const THROUGHPUT_MINUTES = 15;
/** How long one reading of the overview answers every request. */
const READING_REUSE_MS = 1_000;
/** Batches shown per queue, newest first. */
export const RECENT_BATCHES = 10;

const counts = z.object({
  waiting: z.number().int().describe('waiting to start (BullMQ wait list and prioritized set), unless the queue is paused'),
  active: z.number().int(),
  delayed: z.number().int().describe('waiting for a retry or a rate-limit slot'),
  completed: z.number().int().describe('kept SLUICE_KEEP_COMPLETED_SECONDS'),
  failed: z.number().int().describe('dead-lettered jobs, kept SLUICE_KEEP_FAILED_SECONDS'),
  paused: z.number().int().describe('waiting jobs of a paused queue'),
});

export const queueOverviewSchema = z.object({
  name: z.string(),
  isDefault: z.boolean(),
  paused: z.boolean().describe('every shard of the queue is paused (a shard paused alone shows its waiting jobs under jobs.paused)'),
  jobs: counts.describe("the queue's shards added up"),
  throughput: z
    .object({
      since: z.string().describe('start of the first minute (ISO)'),
      completed: z.array(z.number().int()).describe(`jobs completed per minute, oldest first; the last is the current minute so far`),
      failed: z.array(z.number().int()).describe('jobs failed (dead-lettered) per minute, likewise'),
    })
    .describe(`the last ${THROUGHPUT_MINUTES} minutes, from the per-minute counts the workers record`),
  batches: z.array(batchStatusSchema).describe(`the ${RECENT_BATCHES} newest batches`),
  deadLetters: z.object({
    total: z.number().int(),
    groups: z.array(deadLetterGroupSchema).describe('by (limit key, status, reason), largest first'),
  }),
});

export const overviewSchema = z.object({
  generatedAt: z.string(),
  viewer: z.object({ role: z.enum(['read', 'enqueue', 'admin']) }).describe('the caller'),
  queues: z.array(queueOverviewSchema).describe("the server's queue first, then every other queue found in Redis"),
  limits: z.array(limitStatusSchema),
});

export type QueueOverview = z.infer<typeof queueOverviewSchema>;
export type Overview = Omit<z.infer<typeof overviewSchema>, 'viewer'>;

/**
 * Per-minute counts over the last `minutes` minutes, oldest first, ending with the current minute,
 * from BullMQ's metrics. BullMQ records lazily: `data` (newest first) holds the minutes before the
 * one of `meta.prevTS`, which are pushed when the first job of a later minute finishes; the jobs of
 * the `prevTS` minute so far are `meta.count - meta.prevCount`; minutes after it saw no job.
 */
export function perMinute(metrics: Metrics, nowMs: number, minutes = THROUGHPUT_MINUTES): number[] {
  const now = Math.floor(nowMs / 60_000);
  const out = new Array<number>(minutes).fill(0);
  if (!metrics.meta.prevTS) return out;
  const last = Math.floor(metrics.meta.prevTS / 60_000);
  for (let i = 0; i < minutes; i++) {
    const minute = now - (minutes - 1 - i);
    if (minute > last) continue;
    out[i] = minute === last ? Math.max(0, metrics.meta.count - metrics.meta.prevCount) : (metrics.data[last - 1 - minute] ?? 0);
  }
  return out;
}

/** One shard's share of its queue's overview: its counts (a paused shard's waiting jobs shown as paused) and throughput. */
async function readShard(queue: Queue, nowMs: number) {
  const [jobs, paused, completed, failed] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'),
    queue.isPaused(),
    queue.getMetrics('completed', 0, THROUGHPUT_MINUTES),
    queue.getMetrics('failed', 0, THROUGHPUT_MINUTES),
  ]);
  const waiting = (jobs['waiting'] ?? 0) + (jobs['prioritized'] ?? 0);
  return {
    paused,
    jobs: {
      // BullMQ 6 keeps a paused queue's jobs in its wait list; they are shown as paused.
      waiting: paused ? 0 : waiting,
      active: jobs['active'] ?? 0,
      delayed: jobs['delayed'] ?? 0,
      completed: jobs['completed'] ?? 0,
      failed: jobs['failed'] ?? 0,
      paused: paused ? waiting : 0,
    },
    completed: perMinute(completed, nowMs),
    failed: perMinute(failed, nowMs),
  };
}

/** Records of counts added up field by field. */
function sumEach(records: readonly Record<string, number>[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const record of records) for (const [field, value] of Object.entries(record)) sum[field] = (sum[field] ?? 0) + value;
  return sum;
}

/** Per-minute series (of one length) added up minute by minute. */
function sumByMinute(series: readonly number[][]): number[] {
  return series.reduce((sum, one) => sum.map((value, minute) => value + (one[minute] ?? 0)));
}

export interface OverviewReader {
  /** Reads everything; concurrent callers share one reading. */
  read(): Promise<Overview>;
}

export function createOverviewReader(options: {
  queues: QueueRegistry;
  directory: QueueDirectory;
  limits: LimitsAdmin;
  defaultQueue: string;
  /** Default READING_REUSE_MS. */
  reuseMs?: number;
}): OverviewReader {
  const reuseMs = options.reuseMs ?? READING_REUSE_MS;
  let current: Promise<Overview> | undefined;

  async function readQueue(resources: QueueResources, nowMs: number): Promise<QueueOverview> {
    // A bounded number of commands per queue and shard, whatever they hold: per shard the counts and the two
    // metrics readings (one script each) and the pause flag; per queue the batch index and one pipeline per
    // recent batch, HLEN and the dead-letter group counters (plus one read of each group's newest dead letter).
    const [{ shards }, batches, total, summary] = await Promise.all([
      resources.shards(),
      resources.batches.list({ limit: RECENT_BATCHES }),
      resources.deadLetters.count(),
      resources.deadLetters.summary(),
    ]);
    const read = await Promise.all(shards.map(({ queue }) => readShard(queue, nowMs)));
    const paused = read.every((shard) => shard.paused);
    return {
      name: resources.name,
      isDefault: resources.name === options.defaultQueue,
      paused,
      // The queue's shards added up: each is a BullMQ queue of its own (queue/shards.ts).
      jobs: sumEach(read.map((shard) => shard.jobs)) as QueueOverview['jobs'],
      throughput: {
        since: new Date((Math.floor(nowMs / 60_000) - THROUGHPUT_MINUTES + 1) * 60_000).toISOString(),
        completed: sumByMinute(read.map((shard) => shard.completed)),
        failed: sumByMinute(read.map((shard) => shard.failed)),
      },
      batches: batches.map(batchView),
      deadLetters: { total, groups: summary.groups },
    };
  }

  async function readAll(): Promise<Overview> {
    const nowMs = Date.now();
    const [names, limits] = await Promise.all([options.directory.names(), options.limits.list()]);
    const read = await Promise.all(
      names.map(async (name) => {
        try {
          return await readQueue(await options.queues.existing(name), nowMs);
        } catch (error) {
          // Deleted since the directory listed it (existing() never creates a queue).
          if (error instanceof ApiError && error.statusCode === 404) return undefined;
          throw error;
        }
      }),
    );
    const queues = read.filter((queue): queue is QueueOverview => queue !== undefined);
    return { generatedAt: new Date(nowMs).toISOString(), queues, limits };
  }

  // A reading serves every request for a second: each open dashboard polls every 2 s, and a reading
  // costs commands per queue and per limit key.
  let last: { at: number; overview: Overview } | undefined;
  return {
    read() {
      if (last && Date.now() - last.at < reuseMs) return Promise.resolve(last.overview);
      current ??= readAll()
        .then((overview) => {
          last = { at: Date.now(), overview };
          return overview;
        })
        .finally(() => {
          current = undefined;
        });
      return current;
    },
  };
}
