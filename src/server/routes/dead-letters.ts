import type { z } from 'zod';
import type { DeadLetterFilter } from '../../outcomes/dead-letter-store.js';
import { redacted } from '../../observability/redact.js';
import {
  deadLetterFilterSchema,
  deadLetterSelectionSchema,
  deadLettersQuerySchema,
  deadLettersResponseSchema,
  errorSchema,
  purgeResponseSchema,
  queueQuerySchema,
  replayResponseSchema,
} from '../api-schemas.js';
import type { QueueRegistry, QueueResources } from '../queue-registry.js';
import { route, type AnyRoute } from '../route.js';
import { nextPage } from '../page-cursor.js';

type Selection = z.infer<typeof deadLetterSelectionSchema>;

function filterOf(given: z.infer<typeof deadLetterFilterSchema>): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (given.batch !== undefined) filter.batchId = given.batch;
  if (given.limitKey !== undefined) filter.limitKey = given.limitKey;
  if (given.status !== undefined) filter.status = given.status;
  if (given.reason !== undefined) filter.reason = given.reason;
  return filter;
}

/** Dead letters one replay or delete request handles at most; `remaining` says how many more match. */
const MAX_SELECTED = 10_000;

async function selectedIds(resources: QueueResources, selection: Selection): Promise<{ ids: string[]; remaining: number }> {
  if ('ids' in selection) return { ids: selection.ids, remaining: 0 };
  const matching = await resources.deadLetters.ids(filterOf(selection.filter));
  return { ids: matching.slice(0, MAX_SELECTED), remaining: Math.max(0, matching.length - MAX_SELECTED) };
}

export function deadLetterRoutes(options: { queues: QueueRegistry }): AnyRoute[] {
  const queueOf = (name: string | undefined) => options.queues.existing(name);

  const list = route({
    method: 'GET',
    url: '/v1/dead-letters',
    operationId: 'listDeadLetters',
    role: 'read',
    tag: 'dead letters',
    summary:
      'Dead letters matching the filter: counts grouped by (limit key, status, reason), and the newest in full, a page at a time: follow nextCursor.',
    query: deadLettersQuerySchema,
    responses: {
      200: {
        description: 'summary and a page of items',
        schema: deadLettersResponseSchema,
        headers: { Link: '<…?cursor=…>; rel="next" unless this is the last page' },
      },
      400: { description: 'bad filter or cursor', schema: errorSchema },
    },
    async handler(request, reply, { query }) {
      const resources = await queueOf(query.queue);
      const filter = filterOf(query);
      const [summary, page] = await Promise.all([
        resources.deadLetters.summary(filter),
        resources.deadLetters.page(filter, { limit: query.limit, after: query.cursor }),
      ]);
      // A read token sees dead letters redacted, as bull-board shows jobs; replays send them as stored.
      return {
        total: summary.total,
        groups: summary.groups,
        items: page.items.map(redacted),
        nextCursor: nextPage(request, reply, page.next),
      };
    },
  });

  const replay = route({
    method: 'POST',
    url: '/v1/dead-letters/replay',
    operationId: 'replayDeadLetters',
    role: 'admin',
    tag: 'dead letters',
    summary:
      'Put dead letters back on the queue (by ids, or those matching a filter, 10,000 per request) with a fresh attempt budget and the same idempotency key.',
    query: queueQuerySchema,
    body: deadLetterSelectionSchema,
    responses: {
      200: { description: 'what was replayed', schema: replayResponseSchema },
      400: { description: 'bad selection', schema: errorSchema },
    },
    async handler(request, _reply, { query, body }) {
      const resources = await queueOf(query.queue);
      const { ids, remaining } = await selectedIds(resources, body);
      const result = await resources.deadLetters.replay(ids);
      request.log.info(
        { queue: resources.name, replayed: result.replayed.length, missing: result.missing.length, remaining },
        'dead letters replayed',
      );
      return { replayed: result.replayed.length, jobIds: result.replayed.map((entry) => entry.jobId), missing: result.missing, remaining };
    },
  });

  const purge = route({
    method: 'DELETE',
    url: '/v1/dead-letters',
    operationId: 'purgeDeadLetters',
    role: 'admin',
    tag: 'dead letters',
    summary: 'Delete dead letters for good (by ids, or those matching a filter, 10,000 per request).',
    query: queueQuerySchema,
    body: deadLetterSelectionSchema,
    responses: {
      200: { description: 'how many were deleted', schema: purgeResponseSchema },
      400: { description: 'bad selection', schema: errorSchema },
    },
    async handler(request, _reply, { query, body }) {
      const resources = await queueOf(query.queue);
      const { ids, remaining } = await selectedIds(resources, body);
      const purged = await resources.deadLetters.purge(ids);
      request.log.info({ queue: resources.name, purged, remaining }, 'dead letters purged');
      return { purged, remaining };
    },
  });

  return [list, replay, purge];
}
