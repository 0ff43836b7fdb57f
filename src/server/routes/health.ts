import { z } from 'zod';
import type { RedisClient } from '../../redis/client.js';
import { ApiError } from '../api-errors.js';
import { errorSchema } from '../api-schemas.js';
import { route, type AnyRoute } from '../route.js';

const READY_TIMEOUT_MS = 1_000;

export function healthRoutes(options: { redis: RedisClient; metrics?: { contentType: string; render(): Promise<string> } }): AnyRoute[] {
  const routes: AnyRoute[] = [
    route({
      method: 'GET',
      url: '/healthz',
      operationId: 'checkLiveness',
      role: null,
      tag: 'health',
      summary: 'The process is up (liveness). Needs no token.',
      responses: { 200: { description: 'up', schema: z.object({ status: z.literal('ok') }) } },
      handler: async () => ({ status: 'ok' }),
    }),
    route({
      method: 'GET',
      url: '/readyz',
      operationId: 'checkReadiness',
      role: null,
      tag: 'health',
      summary: `Redis answers within ${READY_TIMEOUT_MS} ms (readiness). Needs no token.`,
      responses: {
        200: { description: 'ready', schema: z.object({ status: z.literal('ready') }) },
        503: { description: 'Redis is not answering', schema: errorSchema },
      },
      async handler() {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            options.redis.ping(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
            }),
          ]);
        } catch {
          throw new ApiError(503, 'REDIS_UNAVAILABLE', `Redis did not answer within ${READY_TIMEOUT_MS} ms`);
        } finally {
          clearTimeout(timer);
        }
        return { status: 'ready' };
      },
    }),
  ];
  const { metrics } = options;
  if (metrics) {
    routes.push(
      route({
        method: 'GET',
        url: '/metrics',
        operationId: 'getMetrics',
        role: 'read',
        tag: 'health',
        summary: 'Prometheus metrics of every worker process and of the queues and limiters.',
        responses: { 200: { description: 'Prometheus text format', schema: z.string(), contentType: 'text/plain' } },
        handler: async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()),
      }),
    );
  }
  return routes;
}
