import { Readable } from 'node:stream';
import type { BatchStatus } from '../../outcomes/batches.js';
import { notFound } from '../api-errors.js';
import {
  batchListQuerySchema,
  batchPageSchema,
  batchStatusSchema,
  errorSchema,
  idParamsSchema,
  queueQuerySchema,
  resultsQuerySchema,
} from '../api-schemas.js';
import type { QueueRegistry } from '../queue-registry.js';
import { route, type AnyRoute } from '../route.js';
import { NDJSON } from './operations.js';
import { resultLineSchema } from '../result-line-schema.js';
import { nextPage } from '../page-cursor.js';

export function batchView(status: BatchStatus) {
  return {
    batchId: status.batchId,
    total: status.total,
    succeeded: status.succeeded,
    deadLettered: status.deadLettered,
    pending: status.pending,
    duplicates: status.duplicates,
    retries: status.retries,
    enqueuing: status.enqueuing,
    done: status.pending === 0 && !status.enqueuing,
    createdAt: status.createdAt ?? null,
  };
}

export function batchRoutes(options: { queues: QueueRegistry }): AnyRoute[] {
  const queueOf = (name: string | undefined) => options.queues.existing(name);
  const unknownBatch = (id: string, queue: string) =>
    notFound(`no batch ${JSON.stringify(id)} in queue ${queue} (wrong queue, a typo, or it expired after SLUICE_BATCH_RETENTION_SECONDS)`);

  const list = route({
    method: 'GET',
    url: '/v1/batches',
    operationId: 'listBatches',
    role: 'read',
    tag: 'batches',
    summary:
      'The batches of a queue with their counters, newest first, a page at a time: follow nextCursor (batches are kept SLUICE_BATCH_RETENTION_SECONDS).',
    query: batchListQuerySchema,
    responses: {
      200: {
        description: 'a page, newest first',
        schema: batchPageSchema,
        headers: { Link: '<…?cursor=…>; rel="next" unless this is the last page' },
      },
      400: { description: 'bad query (e.g. a cursor this API did not give out)', schema: errorSchema },
    },
    async handler(request, reply, { query }) {
      const page = await (await queueOf(query.queue)).batches.page({ limit: query.limit, after: query.cursor });
      return { items: page.items.map(batchView), nextCursor: nextPage(request, reply, page.next) };
    },
  });

  const status = route({
    method: 'GET',
    url: '/v1/batches/:id',
    operationId: 'getBatch',
    role: 'read',
    tag: 'batches',
    summary: 'Counters of a batch. Poll it until `done`.',
    params: idParamsSchema,
    query: queueQuerySchema,
    responses: {
      200: { description: 'the counters', schema: batchStatusSchema },
      404: { description: 'no such batch', schema: errorSchema },
    },
    async handler(_request, _reply, { params, query }) {
      const resources = await queueOf(query.queue);
      const found = await resources.batches.status(params.id);
      if (!found) throw unknownBatch(params.id, resources.name);
      return batchView(found);
    },
  });

  const results = route({
    method: 'GET',
    url: '/v1/batches/:id/results',
    operationId: 'getBatchResults',
    role: 'read',
    tag: 'batches',
    summary: 'One JSON line per finished operation of the batch (NDJSON, streamed); `failed=true` keeps the dead-lettered ones.',
    params: idParamsSchema,
    query: resultsQuerySchema,
    responses: {
      200: { description: 'result lines', schema: resultLineSchema, contentType: NDJSON },
      404: { description: 'no such batch', schema: errorSchema },
    },
    async handler(_request, reply, { params, query }) {
      const resources = await queueOf(query.queue);
      if (!(await resources.batches.status(params.id))) throw unknownBatch(params.id, resources.name);
      const lines = resources.batches.results(params.id, { failed: query.failed ?? false });
      async function* ndjson() {
        for await (const line of lines) yield `${JSON.stringify(line)}\n`;
      }
      return reply.type(`${NDJSON}; charset=utf-8`).send(Readable.from(ndjson()));
    },
  });

  return [list, status, results];
}
