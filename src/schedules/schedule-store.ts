import type { RedisClient } from '../redis/client.js';
import { z } from 'zod';
import { ScheduleExistsError, ScheduleNotFoundError } from '../errors.js';
import { queueKeys } from '../redis/keys.js';
import { scheduleDefinitionSchema, scheduleKeys, type ScheduleDefinition } from './schedule-definition.js';

/** Runs kept per schedule (the newest). */
export const KEPT_RUNS = 50;
/** Operations written per RPUSH, and read per LRANGE. */
const PAGE = 1_000;

/** One tick of a schedule, as recorded by the worker that ran it. */
export const scheduleRunSchema = z.object({
  batchId: z.string(),
  tickAt: z.string(),
  startedAt: z.string(),
  /** `enqueued`: the batch holds the run; `skipped`: a missed tick under `catchUp: "none"`; `failed`: nothing or part enqueued (`error`). */
  status: z.enum(['enqueued', 'skipped', 'failed']),
  enqueued: z.number(),
  duplicates: z.number(),
  alreadyEnqueued: z.number(),
  error: z.string().optional(),
});
export type ScheduleRun = z.infer<typeof scheduleRunSchema>;

/** Schedules' definitions, operations and runs in Redis (see redis/keys.ts). Borrows its client. */
export function createScheduleStore(redis: RedisClient, queue: string) {
  const keys = queueKeys(queue);

  async function get(name: string): Promise<ScheduleDefinition | undefined> {
    const json = await redis.hget(keys.schedule(name), 'definition');
    return json === null ? undefined : scheduleDefinitionSchema.parse(JSON.parse(json));
  }

  async function need(name: string): Promise<ScheduleDefinition> {
    const definition = await get(name);
    if (!definition) throw new ScheduleNotFoundError(queue, name);
    return definition;
  }

  return {
    get,
    need,

    /**
     * Writes the operations, then the definition (the schedule exists from then on). A failure
     * part-way leaves operations without a definition, which the next save of the name replaces.
     */
    async create(definition: ScheduleDefinition, operations: Iterable<unknown> | AsyncIterable<unknown>): Promise<ScheduleDefinition> {
      const own = scheduleKeys(keys, definition.name);
      if (await redis.exists(own.definition)) throw new ScheduleExistsError(queue, definition.name);
      await redis.del(own.operations, own.runs, own.runData);
      let count = 0;
      let page: string[] = [];
      for await (const operation of operations) {
        page.push(JSON.stringify(operation));
        count += 1;
        if (page.length === PAGE) {
          await redis.rpush(own.operations, ...page);
          page = [];
        }
      }
      if (page.length) await redis.rpush(own.operations, ...page);
      const stored = { ...definition, operations: count };
      const created = await redis
        .multi()
        .hsetnx(own.definition, 'definition', JSON.stringify(stored))
        .sadd(keys.schedules, definition.name)
        .exec();
      // Another add of the same name won the race: its operations are the ones stored now.
      if (created?.[0]?.[1] === 0) throw new ScheduleExistsError(queue, definition.name);
      return stored;
    },

    async setPaused(name: string, paused: boolean): Promise<ScheduleDefinition> {
      const definition = { ...(await need(name)), paused };
      await redis.hset(keys.schedule(name), 'definition', JSON.stringify(definition));
      return definition;
    },

    async delete(name: string): Promise<boolean> {
      const own = scheduleKeys(keys, name);
      const [[, removed] = []] = (await redis
        .multi()
        .del(own.definition)
        .del(own.operations, own.runs, own.runData)
        .srem(keys.schedules, name)
        .exec()) ?? [[]];
      return removed === 1;
    },

    async names(): Promise<string[]> {
      return (await redis.smembers(keys.schedules)).sort();
    },

    /** The operations, `{{run}}` unfilled, read a page at a time. */
    async *operations(name: string): AsyncGenerator<unknown> {
      const key = keys.scheduleOperations(name);
      for (let start = 0; ; start += PAGE) {
        const page = await redis.lrange(key, start, start + PAGE - 1);
        for (const line of page) yield JSON.parse(line) as unknown;
        if (page.length < PAGE) return;
      }
    },

    /** Records a run (a second record of the same batch replaces the first) and drops the oldest past KEPT_RUNS. */
    async recordRun(name: string, run: ScheduleRun): Promise<void> {
      const own = scheduleKeys(keys, name);
      const results = await redis
        .multi()
        .zadd(own.runs, Date.parse(run.tickAt), run.batchId)
        .hset(own.runData, run.batchId, JSON.stringify(run))
        .zrange(own.runs, 0, -(KEPT_RUNS + 1))
        .exec();
      const old = (results?.[2]?.[1] ?? []) as string[];
      if (old.length)
        await redis
          .multi()
          .zrem(own.runs, ...old)
          .hdel(own.runData, ...old)
          .exec();
    },

    /** The newest runs first. */
    async runs(name: string, limit: number): Promise<ScheduleRun[]> {
      const own = scheduleKeys(keys, name);
      const ids = await redis.zrange(own.runs, 0, limit - 1, 'REV');
      if (ids.length === 0) return [];
      const data = await redis.hmget(own.runData, ...ids);
      return data.flatMap((json) => (json === null ? [] : [scheduleRunSchema.parse(JSON.parse(json))]));
    },
  };
}

export type ScheduleStore = ReturnType<typeof createScheduleStore>;
