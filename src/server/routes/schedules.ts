import { z } from 'zod';
import type { RedisClient } from '../../redis/client.js';
import type { SluiceConfig } from '../../config/sluice-config.js';
import { SluiceError } from '../../errors.js';
import { QUEUE_NAME, QUEUE_NAME_RULE } from '../../redis/keys.js';
import { SCHEDULE_NAME, SCHEDULE_NAME_RULE } from '../../schedules/schedule-definition.js';
import { createSchedules, type Schedules } from '../../schedules/schedules.js';
import { ApiError } from '../api-errors.js';
import { errorSchema, queueQuerySchema } from '../api-schemas.js';
import { route, type AnyRoute } from '../route.js';

export interface ScheduleRoutesOptions {
  /** Borrowed. */
  redis: RedisClient;
  config: SluiceConfig;
  defaultQueue: string;
}

const nameParamsSchema = z.strictObject({ name: z.string().regex(SCHEDULE_NAME, SCHEDULE_NAME_RULE) });

export const scheduleBodySchema = z.strictObject({
  name: z.string().describe(`schedule name (${SCHEDULE_NAME_RULE}); its runs are batches NAME-<tick time>`),
  cron: z.string().optional().describe('cron expression, e.g. "0 2 * * *" (give cron or every)'),
  tz: z.string().optional().describe('IANA time zone of cron (default UTC)'),
  every: z.string().optional().describe('fixed interval: "2s", "15m", "1h", "1d"'),
  catchUp: z.enum(['one', 'none']).optional().describe('a tick missed while every worker was down: run it once (default) or skip it'),
  operations: z.array(z.unknown()).min(1).describe("the operations each run enqueues; strings may hold {{run}} (the run's batch id)"),
});

export const scheduleSchema = z.object({
  name: z.string(),
  queue: z.string(),
  cron: z.string().optional(),
  tz: z.string().optional(),
  every: z.string().optional(),
  catchUp: z.enum(['one', 'none']),
  paused: z.boolean(),
  operations: z.number().int().describe('operations each run enqueues'),
  createdAt: z.string(),
  source: z.string().optional(),
  nextRunAt: z.string().optional().describe('the next tick; absent while paused'),
});

export const runSchema = z.object({
  batchId: z.string(),
  tickAt: z.string(),
  startedAt: z.string(),
  status: z.enum(['enqueued', 'skipped', 'failed']),
  enqueued: z.number().int(),
  duplicates: z.number().int(),
  alreadyEnqueued: z.number().int(),
  error: z.string().optional(),
  batch: z
    .object({ total: z.number().int(), succeeded: z.number().int(), deadLettered: z.number().int(), pending: z.number().int() })
    .passthrough()
    .optional()
    .describe("the run's batch counters (absent once it expired)"),
});

const showQuerySchema = z.strictObject({
  queue: z.string().regex(QUEUE_NAME, QUEUE_NAME_RULE).optional(),
  runs: z.coerce.number().int().min(1).max(50).default(10).describe('newest runs listed'),
});

/** Schedule errors as API errors: a name that is not there is a 404, one that is there already a 409. */
function apiError(error: unknown): unknown {
  if (error instanceof SluiceError && error.code === 'SCHEDULE_NOT_FOUND') return new ApiError(404, 'NOT_FOUND', error.message);
  if (error instanceof SluiceError && error.code === 'SCHEDULE_EXISTS') return new ApiError(409, 'SCHEDULE_EXISTS', error.message);
  return error;
}

/** Recurring operations (see schedules/): reads with the read role, changes with admin. */
export function scheduleRoutes(options: ScheduleRoutesOptions): AnyRoute[] {
  /** Objects for one request, on the server's Redis client (no connection of their own), closed after it. */
  async function withSchedules<T>(queue: string | undefined, action: (schedules: Schedules) => Promise<T>): Promise<T> {
    const schedules = createSchedules({ connection: options.redis, queue: queue ?? options.defaultQueue, config: options.config });
    try {
      return await action(schedules);
    } catch (error) {
      throw apiError(error);
    } finally {
      await schedules.close();
    }
  }

  const list = route({
    method: 'GET',
    operationId: 'listSchedules',
    url: '/v1/schedules',
    role: 'read',
    tag: 'schedules',
    summary: "The queue's schedules, with their next run.",
    query: queueQuerySchema,
    responses: { 200: { description: 'schedules', schema: z.array(scheduleSchema) } },
    handler: async (_request, _reply, { query }) => withSchedules(query.queue, (schedules) => schedules.list()),
  });

  const show = route({
    method: 'GET',
    operationId: 'getSchedule',
    url: '/v1/schedules/:name',
    role: 'read',
    tag: 'schedules',
    summary: 'A schedule and its newest runs, each with its batch counters (as `sluice schedule show`).',
    params: nameParamsSchema,
    query: showQuerySchema,
    responses: {
      200: { description: 'the schedule', schema: scheduleSchema.extend({ runs: z.array(runSchema) }) },
      404: { description: 'no such schedule', schema: errorSchema },
    },
    handler: async (_request, _reply, { params, query }) =>
      withSchedules(query.queue, (schedules) => schedules.show(params.name, { runs: query.runs })),
  });

  const add = route({
    method: 'POST',
    operationId: 'addSchedule',
    url: '/v1/schedules',
    role: 'admin',
    tag: 'schedules',
    summary: 'Add a schedule: every operation is validated first (with {{run}} filled in); any problem and nothing is stored.',
    query: queueQuerySchema,
    body: scheduleBodySchema,
    responses: {
      201: { description: 'the schedule', schema: scheduleSchema },
      400: { description: 'an invalid schedule or operation (`errors` names each)', schema: errorSchema },
      409: { description: 'the queue has a schedule of that name', schema: errorSchema },
    },
    async handler(request, reply, { query, body }) {
      const { name, operations, ...spec } = body;
      const added = await withSchedules(query.queue, (schedules) => schedules.add(name, spec, operations, { source: 'api' }));
      request.log.info({ schedule: name, queue: added.queue }, 'schedule added');
      return reply.code(201).send(added);
    },
  });

  const pauseOrResume = (action: 'pause' | 'resume') =>
    route({
      method: 'POST',
      operationId: action === 'pause' ? 'pauseSchedule' : 'resumeSchedule',
      url: `/v1/schedules/:name/${action}`,
      role: 'admin',
      tag: 'schedules',
      summary: action === 'pause' ? 'Stop the ticks (the schedule stays).' : 'Tick again from the next tick after now.',
      params: nameParamsSchema,
      query: queueQuerySchema,
      responses: {
        200: { description: 'the schedule', schema: scheduleSchema },
        404: { description: 'no such schedule', schema: errorSchema },
      },
      async handler(request, _reply, { params, query }) {
        const changed = await withSchedules(query.queue, (schedules) => schedules[action](params.name));
        request.log.info({ schedule: params.name, queue: changed.queue }, action === 'pause' ? 'schedule paused' : 'schedule resumed');
        return changed;
      },
    });

  const remove = route({
    method: 'DELETE',
    operationId: 'removeSchedule',
    url: '/v1/schedules/:name',
    role: 'admin',
    tag: 'schedules',
    summary: 'Delete a schedule, its operations and its run history (its batches stay).',
    params: nameParamsSchema,
    query: queueQuerySchema,
    responses: {
      200: { description: 'removed', schema: z.object({ name: z.string(), removed: z.literal(true) }) },
      404: { description: 'no such schedule', schema: errorSchema },
    },
    async handler(request, _reply, { params, query }) {
      await withSchedules(query.queue, (schedules) => schedules.remove(params.name));
      request.log.info({ schedule: params.name }, 'schedule removed');
      return { name: params.name, removed: true as const };
    },
  });

  return [list, show, add, pauseOrResume('pause'), pauseOrResume('resume'), remove];
}
