import type { RedisClient } from '../redis/client.js';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { ValidationError } from '../errors.js';
import { createBatches, type BatchStatus } from '../outcomes/batches.js';
import { closeRedis, createRedisConnection } from '../redis/connection.js';
import { queueKeys } from '../redis/keys.js';
import { operationRulesOf } from '../limits/limit-keys.js';
import type { OperationRules } from '../operation/parse-operation.js';
import {
  operationIssues,
  parseScheduleSpec,
  sampleRun,
  timingOf,
  type ScheduleDefinition,
  type ScheduleSpec,
} from './schedule-definition.js';
import { createScheduleStore, type ScheduleRun } from './schedule-store.js';
import { openTickQueue, removeTicks, upsertTicks } from './tick-queue.js';

export interface SchedulesOptions {
  /** A Redis URL (opened and closed here) or a client to borrow. */
  connection: string | RedisClient;
  /** Queue name. Default `default`. */
  queue?: string;
  /** Targets the operations may name (checked at `add`). Default: none. */
  config?: SluiceConfig;
}

export interface AddScheduleOptions {
  /** Every operation was already checked with `parseOperation` (with `{{run}}` filled in), as `sluice schedule add` does. */
  prevalidated?: boolean;
  /** What the operations were read from, shown by `schedule show`. */
  source?: string;
}

/** A schedule as the CLI, the API and callers see it. */
export interface ScheduleInfo {
  name: string;
  queue: string;
  cron?: string;
  tz?: string;
  every?: string;
  catchUp: 'one' | 'none';
  paused: boolean;
  /** Operations each run enqueues. */
  operations: number;
  createdAt: string;
  source?: string;
  /** The next tick (ISO 8601), as BullMQ has it; absent while paused. */
  nextRunAt?: string;
}

/** A run and how its batch is doing (undefined once the batch expired or when nothing was enqueued). */
export interface ScheduleRunInfo extends ScheduleRun {
  batch?: BatchStatus;
}

export interface Schedules {
  readonly queue: string;
  /**
   * Validates the spec and every operation (with `{{run}}` filled in by a sample run id) and stores
   * them: each tick enqueues the operations as batch `NAME-<tick time>`. With any problem nothing
   * is stored and a ValidationError lists them (`operations[3].url`).
   */
  add(
    name: string,
    spec: ScheduleSpec,
    operations: Iterable<unknown> | AsyncIterable<unknown>,
    options?: AddScheduleOptions,
  ): Promise<ScheduleInfo>;
  list(): Promise<ScheduleInfo[]>;
  /** A schedule and its newest runs (default 10) with their batches' counters. */
  show(name: string, options?: { runs?: number }): Promise<ScheduleInfo & { runs: ScheduleRunInfo[] }>;
  /** No ticks until resumed (the definition stays). */
  pause(name: string): Promise<ScheduleInfo>;
  /** Ticks again from the next tick after now (ticks missed while paused are not run). */
  resume(name: string): Promise<ScheduleInfo>;
  /** Deletes the schedule, its operations and its run history (its batches stay). */
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

export function createSchedules(options: SchedulesOptions): Schedules {
  const queue = options.queue ?? 'default';
  queueKeys(queue);
  const config = options.config ?? EMPTY_CONFIG;
  const ownsConnection = typeof options.connection === 'string';
  const redis =
    typeof options.connection === 'string' ? createRedisConnection(options.connection, { name: 'sluice:schedules' }) : options.connection;
  const store = createScheduleStore(redis, queue);
  const ticks = openTickQueue(redis, queue);
  const batches = createBatches(redis, queue);
  let closing: Promise<void> | undefined;

  async function info(definition: ScheduleDefinition): Promise<ScheduleInfo> {
    const { name, cron, tz, every, catchUp, paused, operations, createdAt, source } = definition;
    const scheduler = paused ? undefined : await ticks.getJobScheduler(name);
    return {
      name,
      queue,
      ...(cron !== undefined ? { cron } : {}),
      ...(tz !== undefined ? { tz } : {}),
      ...(every !== undefined ? { every } : {}),
      catchUp,
      paused,
      operations,
      createdAt,
      ...(source !== undefined ? { source } : {}),
      ...(scheduler?.next ? { nextRunAt: new Date(scheduler.next).toISOString() } : {}),
    };
  }

  async function add(
    name: string,
    spec: ScheduleSpec,
    operations: Iterable<unknown> | AsyncIterable<unknown>,
    addOptions: AddScheduleOptions = {},
  ) {
    const parsed = parseScheduleSpec(name, spec);
    if (!parsed.ok) throw new ValidationError(`schedule ${JSON.stringify(name)}`, parsed.issues);
    let items = operations;
    if (!addOptions.prevalidated) {
      items = await checkOperations(operations, config, sampleRun(name), operationRulesOf(redis));
    }
    const definition: ScheduleDefinition = {
      name,
      ...('everyMs' in parsed.timing ? { every: spec.every!, everyMs: parsed.timing.everyMs } : { cron: parsed.timing.cron }),
      ...(spec.tz !== undefined ? { tz: spec.tz } : {}),
      catchUp: parsed.catchUp,
      paused: false,
      operations: 0,
      createdAt: new Date().toISOString(),
      ...(addOptions.source !== undefined ? { source: addOptions.source } : {}),
    };
    const stored = await store.create(definition, items);
    await upsertTicks(ticks, name, parsed.timing, Date.now());
    return info(stored);
  }

  return {
    queue,
    add,
    async list() {
      const definitions = await Promise.all((await store.names()).map((name) => store.get(name)));
      return Promise.all(definitions.flatMap((definition) => (definition ? [info(definition)] : [])));
    },
    async show(name, showOptions = {}) {
      const definition = await store.need(name);
      const runs = await store.runs(name, showOptions.runs ?? 10);
      const withBatches = await Promise.all(
        runs.map(async (run) => {
          const batch = run.status === 'skipped' ? undefined : await batches.status(run.batchId);
          return batch ? { ...run, batch } : run;
        }),
      );
      return { ...(await info(definition)), runs: withBatches };
    },
    async pause(name) {
      const definition = await store.setPaused(name, true);
      await removeTicks(ticks, name);
      return info(definition);
    },
    async resume(name) {
      const definition = await store.setPaused(name, false);
      await upsertTicks(ticks, name, timingOf(definition), Date.now());
      return info(definition);
    },
    async remove(name) {
      await store.need(name);
      await removeTicks(ticks, name);
      await store.delete(name);
    },
    close() {
      closing ??= (async () => {
        await ticks.close();
        if (ownsConnection) await closeRedis(redis);
      })();
      return closing;
    },
  };
}

/** Every operation checked with `{{run}}` filled in; all of them, or a ValidationError naming each problem's index. */
async function checkOperations(
  operations: Iterable<unknown> | AsyncIterable<unknown>,
  config: SluiceConfig,
  run: string,
  rules: OperationRules,
): Promise<unknown[]> {
  const items: unknown[] = [];
  const issues = await operationIssues(operations, config, run, (operation) => items.push(operation), rules);
  if (items.length === 0) issues.push({ path: 'operations', message: 'a schedule needs at least one operation' });
  if (issues.length) throw new ValidationError('schedule operations', issues);
  return items;
}
