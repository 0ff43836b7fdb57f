import { ShardChangeRefusedError, readShardCount, setShardCount } from '../../queue/shards.js';
import type { RedisClient } from '../../redis/client.js';
import { ApiError } from '../api-errors.js';
import { errorSchema, queueInfoSchema, queueParamsSchema, shardChangeSchema, shardsChangedSchema } from '../api-schemas.js';
import type { QueueRegistry } from '../queue-registry.js';
import { route, type AnyRoute } from '../route.js';

export interface QueueRoutesOptions {
  queues: QueueRegistry;
  /** Borrowed: the shard count is read and written through it. */
  redis: RedisClient;
  defaultQueue: string;
}

/** A queue, and the admin's control of its shards (queue/shards.ts, docs/design/cluster.md). */
export function queueRoutes(options: QueueRoutesOptions): AnyRoute[] {
  const { queues, redis } = options;

  const show = route({
    method: 'GET',
    url: '/v1/queues/:queue',
    operationId: 'getQueue',
    role: 'read',
    tag: 'queues',
    summary: "A queue: whether it is the server's, and its shards (how many producers write to, and the most it ever had).",
    params: queueParamsSchema,
    responses: {
      200: { description: 'the queue', schema: queueInfoSchema },
      404: { description: 'no such queue (nothing was ever enqueued into it)', schema: errorSchema },
    },
    async handler(_request, _reply, { params }) {
      const resources = await queues.existing(params.queue);
      return {
        name: resources.name,
        isDefault: resources.name === options.defaultQueue,
        shards: await readShardCount(redis, resources.name),
      };
    },
  });

  const setShards = route({
    method: 'PUT',
    url: '/v1/queues/:queue/shards',
    operationId: 'setQueueShards',
    role: 'admin',
    tag: 'queues',
    summary:
      'Spread the queue over `count` shards (as `sluice shards N --queue Q`): producers write to that many from now on; workers keep running, and reads keep covering, every shard it ever had. Refused while idempotency keys are held, unless `force`. A queue not used yet may be spread before its first enqueue.',
    params: queueParamsSchema,
    body: shardChangeSchema,
    responses: {
      200: { description: 'the count changed (or already so)', schema: shardsChangedSchema },
      409: {
        description:
          'SHARDS_CHANGE_REFUSED: idempotency keys are held in their dedup window (`heldMarks` counts them); wait, or send force',
        schema: errorSchema,
      },
    },
    async handler(request, _reply, { params, body }) {
      const change = await setShardCount(redis, params.queue, body.count, { force: body.force ?? false }).catch((error: unknown) => {
        if (error instanceof ShardChangeRefusedError) {
          throw new ApiError(409, 'SHARDS_CHANGE_REFUSED', error.message, undefined, undefined, { heldMarks: error.heldMarks });
        }
        throw error;
      });
      if (change.previous !== change.now.count) {
        request.log.info(
          { queue: params.queue, previous: change.previous, count: change.now.count, force: body.force ?? false },
          'shard count changed',
        );
      }
      return { name: params.queue, previous: change.previous, shards: change.now };
    },
  });

  return [show, setShards];
}
