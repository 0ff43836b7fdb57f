import { z } from 'zod';
import type { RedisClient } from '../../redis/client.js';
import type { LimitsAdmin, LineAfterChange } from '../../limits/limits-admin.js';
import { parseLimitChange } from '../../limits/limit-change.js';
import { totalWoken, wakeCircuitWaiters, wakeDeferredJobs } from '../../queue/wake-jobs.js';
import { SluiceError } from '../../errors.js';
import { ApiError, invalid } from '../api-errors.js';
import {
  errorSchema,
  keyParamsSchema,
  limitChangeSchema,
  limitChangedSchema,
  limitStatusSchema,
  queueQuerySchema,
} from '../api-schemas.js';
import { route, type AnyRoute } from '../route.js';

export interface LimitRoutesOptions {
  redis: RedisClient;
  limits: LimitsAdmin;
  defaultQueue: string;
}

export function limitRoutes(options: LimitRoutesOptions): AnyRoute[] {
  const { limits, redis } = options;
  const statusOf = async (key: string) => (await limits.list()).find((entry) => entry.key === key);
  /** Jobs deferred under the old schedule, in any queue, book again at once (as `sluice limits set` does). */
  const wake = async (queue: string | undefined, line: LineAfterChange) =>
    totalWoken(await wakeDeferredJobs(redis, line, queue ?? options.defaultQueue));

  const list = route({
    method: 'GET',
    url: '/v1/limits',
    operationId: 'listLimits',
    role: 'read',
    tag: 'limits',
    summary: 'Every known limit key: configured and effective rate, in flight, paused, recent 429s.',
    responses: { 200: { description: 'limit keys', schema: z.array(limitStatusSchema) } },
    handler: async () => limits.list(),
  });

  const set = route({
    method: 'PUT',
    url: '/v1/limits/:key',
    operationId: 'setLimit',
    role: 'admin',
    tag: 'limits',
    summary: 'Override a key for every running worker within a second (as `sluice limits set`); `ttl` makes it temporary.',
    params: keyParamsSchema,
    query: queueQuerySchema,
    body: limitChangeSchema,
    responses: {
      200: { description: 'the key after the change', schema: limitChangedSchema },
      400: { description: 'bad change', schema: errorSchema },
    },
    async handler(request, _reply, { params, query, body }) {
      const parsed = parseLimitChange(body);
      if (!parsed.ok)
        throw invalid(
          `invalid limit change for ${params.key}`,
          parsed.issues.map(({ path, message }) => ({ path, message })),
        );
      const deferred = await limits.set(params.key, parsed.change, parsed.ttlMs);
      const woken = await wake(query.queue, deferred);
      request.log.info({ limitKey: params.key, change: parsed.change, ttlMs: parsed.ttlMs, woken }, 'limit changed');
      return { key: params.key, limit: await statusOf(params.key), woken };
    },
  });

  const reset = route({
    method: 'DELETE',
    url: '/v1/limits/:key',
    operationId: 'resetLimit',
    role: 'admin',
    tag: 'limits',
    summary: 'Drop an override: the config file applies again (as `sluice limits reset`).',
    params: keyParamsSchema,
    query: queueQuerySchema,
    responses: { 200: { description: 'the key after the change', schema: limitChangedSchema } },
    async handler(request, _reply, { params, query }) {
      const woken = await wake(query.queue, await limits.reset(params.key));
      request.log.info({ limitKey: params.key, woken }, 'limit override removed');
      return { key: params.key, limit: await statusOf(params.key), woken };
    },
  });

  const pauseOrResume = (action: 'pause' | 'resume') =>
    route({
      method: 'POST',
      url: `/v1/limits/:key/${action}`,
      operationId: action === 'pause' ? 'pauseLimit' : 'resumeLimit',
      role: 'admin',
      tag: 'limits',
      summary:
        action === 'pause'
          ? 'Stop starting requests on a key, fleet-wide.'
          : 'Lift a pause (also one the target asked for with Retry-After).',
      params: keyParamsSchema,
      query: queueQuerySchema,
      responses: { 200: { description: 'the key after the change', schema: limitChangedSchema } },
      async handler(request, _reply, { params, query }) {
        if (action === 'pause') {
          await limits.pause(params.key);
          request.log.info({ limitKey: params.key }, 'limit key paused');
          return { key: params.key, limit: await statusOf(params.key), woken: 0 };
        }
        // Jobs that waited for the pause's end (a target's Retry-After of a day) go on now.
        const woken = await wake(query.queue, await limits.resume(params.key));
        request.log.info({ limitKey: params.key, woken }, 'limit key resumed');
        return { key: params.key, limit: await statusOf(params.key), woken };
      },
    });

  const openOrClose = (action: 'open' | 'close') =>
    route({
      method: 'POST',
      url: `/v1/limits/:key/circuit/${action}`,
      operationId: action === 'open' ? 'openCircuit' : 'closeCircuit',
      role: 'admin',
      tag: 'limits',
      summary:
        action === 'open'
          ? "Open a key's circuit by hand: nothing is sent on it but a probe now and then (as `sluice limits open`)."
          : "Close a key's circuit by hand: the operations waiting for it resume (as `sluice limits close`).",
      params: keyParamsSchema,
      responses: {
        200: { description: 'the key after the change', schema: limitChangedSchema },
        409: { description: 'the key has no circuit breaker (circuit: false)', schema: errorSchema },
      },
      async handler(request, _reply, { params }) {
        const transition = await limits.circuit(params.key, action).catch((error: unknown) => {
          if (error instanceof SluiceError && error.code === 'CIRCUIT_OFF') throw new ApiError(409, 'CIRCUIT_OFF', error.message);
          throw error;
        });
        const woken = transition === 'closed' ? await wakeCircuitWaiters(redis, params.key, options.defaultQueue) : 0;
        if (transition) request.log.info({ limitKey: params.key, transition, woken }, `circuit ${transition} by hand`);
        return { key: params.key, limit: await statusOf(params.key), woken };
      },
    });

  return [list, set, reset, pauseOrResume('pause'), pauseOrResume('resume'), openOrClose('open'), openOrClose('close')];
}
