import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { RedisClient } from '../../redis/client.js';
import { z } from 'zod';
import type { SluiceConfig } from '../../config/sluice-config.js';
import { operationSchema } from '../../operation/schema.js';
import { parseOperation, type OperationRules } from '../../operation/parse-operation.js';
import { operationRulesOf } from '../../limits/limit-keys.js';
import { readEnvelope, foreignIdempotencyKey } from '../../queue/job-data.js';
import { redacted } from '../../observability/redact.js';
import { ApiError, invalid, notFound, type ApiIssue } from '../api-errors.js';
import {
  enqueueQuerySchema,
  enqueueResponseSchema,
  errorSchema,
  idParamsSchema,
  operationStateSchema,
  queueQuerySchema,
} from '../api-schemas.js';
import { couldBeJobId, findJob } from '../job-lookup.js';
import { findLaneOp, type LaneOpFound } from '../lane-lookup.js';
import { laneOfOpId } from '../../queue/lanes.js';
import { LANE_JOB_NAME } from '../../queue/add-jobs.js';
import type { QueueRegistry } from '../queue-registry.js';
import { findInShards } from '../shard-lookup.js';
import { route, type AnyRoute } from '../route.js';
import { createJsonLineReader, type JsonLine } from '../../support/json-lines.js';

export const NDJSON = 'application/x-ndjson';

/** Problems listed in a 400 answer; the message counts the rest. */
const MAX_LISTED_ISSUES = 100;

/** Operations in one request at most: more is a 413 (send several requests with the same `?batch=`). */
export const MAX_OPERATIONS_PER_REQUEST = 100_000;

/** Items validated between two turns of the event loop, so a large body does not stall other requests. */
const VALIDATE_SLICE = 500;

const tooMany = () =>
  new ApiError(
    413,
    'TOO_MANY_OPERATIONS',
    `more than ${MAX_OPERATIONS_PER_REQUEST} operations in one request: split them over several requests with the same ?batch=`,
  );

export interface OperationRoutesOptions {
  queues: QueueRegistry;
  /** Borrowed: checks what a key holds before a job is read from it. */
  redis: RedisClient;
  config: SluiceConfig;
  /** The largest body accepted, in bytes (JSON and NDJSON alike). */
  bodyLimitBytes: number;
}

/** One item of a request body: where it came from (NDJSON line) and what it held. */
interface Item {
  line?: number;
  value: unknown;
  /** Set when the line was not JSON. */
  parseError?: string;
}

export function operationRoutes(options: OperationRoutesOptions): AnyRoute[] {
  return [enqueueRoute(options), showRoute(options)];
}

/** POST /v1/operations */
function enqueueRoute(options: OperationRoutesOptions): AnyRoute {
  const { queues, config } = options;
  return route({
    method: 'POST',
    url: '/v1/operations',
    operationId: 'enqueueOperations',
    role: 'enqueue',
    tag: 'operations',
    summary:
      'Enqueue one operation, a JSON array of them, or NDJSON (one per line, streamed). All or nothing: if any item is invalid, nothing is enqueued and every problem is listed.',
    query: enqueueQuerySchema,
    bodyEncodings: ['gzip', 'deflate', 'br'],
    bodyDoc: {
      description: 'an operation, an array of operations, or NDJSON; may be compressed (Content-Encoding gzip, deflate or br)',
      content: { 'application/json': z.union([operationSchema, z.array(operationSchema)]), [NDJSON]: operationSchema },
    },
    responses: {
      202: {
        description: 'enqueued: follow Location for the batch',
        schema: enqueueResponseSchema,
        headers: { Location: 'the batch: /v1/batches/{batchId}, with ?queue= when the request named a queue' },
      },
      400: { description: 'invalid items: nothing enqueued', schema: errorSchema },
      413: { description: 'body too large (compressed or decompressed)', schema: errorSchema },
      415: { description: 'an unsupported Content-Type or Content-Encoding', schema: errorSchema },
    },
    async handler(request, reply, { query }) {
      const resources = queues.get(query.queue);
      const items = await readItems(request, options.bodyLimitBytes);
      const operations = await checkItems(items, config, operationRulesOf(options.redis));
      // checkItems validated every item: the producer need not again.
      const summary = await resources.producer.enqueueMany(operations, {
        prevalidated: true,
        ...(query.batch !== undefined ? { batchId: query.batch } : {}),
      });
      request.log.info(
        { queue: resources.name, batchId: summary.batchId, enqueued: summary.enqueued, duplicates: summary.duplicates },
        'operations enqueued',
      );
      // Following Location reaches the batch: in the queue this request named, if it named one.
      const location = `/v1/batches/${encodeURIComponent(summary.batchId)}${query.queue !== undefined ? `?queue=${encodeURIComponent(query.queue)}` : ''}`;
      return reply
        .code(202)
        .header('location', location)
        .send({
          batchId: summary.batchId,
          enqueued: summary.enqueued,
          duplicates: summary.duplicates,
          ids: summary.results.map((result) => result.id),
        });
    },
  });
}

/** GET /v1/operations/:id */
function showRoute(options: OperationRoutesOptions): AnyRoute {
  const { queues } = options;
  return route({
    method: 'GET',
    url: '/v1/operations/:id',
    operationId: 'getOperation',
    role: 'read',
    tag: 'operations',
    summary: 'One operation by job id: its state, failed attempts so far, and its result or why it was dead-lettered.',
    params: idParamsSchema,
    query: queueQuerySchema,
    responses: {
      200: { description: 'the operation', schema: operationStateSchema },
      404: { description: 'no such job (or it was removed after SLUICE_KEEP_COMPLETED_SECONDS)', schema: errorSchema },
    },
    async handler(_request, _reply, { params, query }) {
      const resources = await queues.existing(query.queue);
      // The job is in one of the queue's shards: the one its id picks, unless the count changed since.
      const shards = await resources.shards();
      // An id naming another key of the queue (`meta`, `events`, `batch:x`) is no job: 404, not a WRONGTYPE 500.
      const [found, deadLetter] = couldBeJobId(params.id)
        ? await Promise.all([
            findInShards(shards, params.id, (shard) => findJob(options.redis, shard.queue, params.id)),
            resources.deadLetters.get(params.id),
          ])
        : [undefined, undefined];
      // A lane is a job, not an operation: its operations are `<lane id>-<index>`.
      const job = found?.name === LANE_JOB_NAME ? undefined : found;
      // An operation still in its lane (dead-lettered there or not: its lane says when it was enqueued).
      const inLane =
        !job && laneOf(params.id)
          ? await findInShards(shards, params.id, (shard) => findLaneOp(options.redis, shard, params.id))
          : undefined;
      if (inLane && !deadLetter) return redacted(laneOpState(inLane, resources.name));
      if (!job && !deadLetter)
        throw notFound(
          `no operation ${JSON.stringify(params.id)} in queue ${resources.name} (finished jobs are removed after SLUICE_KEEP_COMPLETED_SECONDS; results stay in their batch)`,
        );
      // What a read token sees of an operation is redacted as bull-board shows it; the job keeps it as enqueued.
      if (!job) {
        return redacted({
          id: params.id,
          queue: resources.name,
          state: 'dead-lettered',
          opId: deadLetter!.opId,
          batchId: deadLetter!.batchId ?? null,
          idempotencyKey: deadLetter!.idempotencyKey,
          failedAttempts: deadLetter!.attempts,
          createdAt: inLane ? new Date(inLane.createdAt).toISOString() : null,
          finishedAt: deadLetter!.deadLetteredAt,
          deadLetter: {
            reason: deadLetter!.reason,
            message: deadLetter!.message,
            status: deadLetter!.status ?? null,
            replays: deadLetter!.replays,
          },
          operation: deadLetter!.operation,
          lane: laneOf(params.id),
        });
      }
      const envelope = readEnvelope(job.data, job.id!, () => foreignIdempotencyKey(resources.name, job.id!, job.timestamp));
      const bullState = await job.getState();
      const state = STATES[bullState] ?? 'unknown';
      return redacted({
        id: job.id!,
        queue: resources.name,
        state,
        opId: envelope.opId,
        batchId: envelope.batchId ?? null,
        idempotencyKey: envelope.idempotencyKey,
        // The job keeps the attempts before its last; a dead letter has them all.
        failedAttempts: deadLetter?.attempts ?? envelope.attempts ?? [],
        createdAt: new Date(job.timestamp).toISOString(),
        finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
        ...(state === 'succeeded' ? { result: job.returnvalue } : {}),
        ...(deadLetter
          ? {
              deadLetter: {
                reason: deadLetter.reason,
                message: deadLetter.message,
                status: deadLetter.status ?? null,
                replays: deadLetter.replays,
              },
            }
          : {}),
        operation: envelope.op,
        lane: laneOf(job.id!),
      });
    },
  });
}

/** The lane an operation id names, as the API shows it. */
function laneOf(id: string): { id: string; index: number } | null {
  const where = laneOfOpId(id);
  return where ? { id: where.lane, index: where.index } : null;
}

/** An operation still in its lane: pending as the lane is, or ended as its result line says (dead-lettered when it was replayed since). */
function laneOpState(found: LaneOpFound, queue: string) {
  const { envelope, line } = found;
  const state =
    line?.outcome === 'succeeded' ? 'succeeded' : line || found.replayed ? 'dead-lettered' : (STATES[found.laneState] ?? 'unknown');
  return {
    // The id asked for: an operation's own, or a replayed one's place in the lane it was replayed in.
    id: `${found.lane.id}-${found.lane.index}`,
    queue,
    state,
    opId: envelope.opId,
    batchId: envelope.batchId ?? null,
    idempotencyKey: envelope.idempotencyKey,
    failedAttempts: envelope.attempts ?? [],
    createdAt: new Date(found.createdAt).toISOString(),
    // This run's end, from its result line (a replayed one's line is its replay's).
    finishedAt: found.line?.finishedAt ?? null,
    ...(state === 'succeeded' ? { result: line } : {}),
    operation: envelope.op,
    lane: found.lane,
  };
}

/** BullMQ's job states as the API names them. */
const STATES: Record<string, string> = {
  waiting: 'queued',
  prioritized: 'queued',
  'waiting-children': 'queued',
  delayed: 'scheduled',
  active: 'active',
  completed: 'succeeded',
  failed: 'dead-lettered',
};

/** The body's items: a JSON object or array (parsed by fastify), or NDJSON read line by line. */
async function readItems(request: FastifyRequest, limitBytes: number): Promise<Item[]> {
  if (isNdjson(request)) return readNdjson(request.body as Readable, limitBytes);
  const body = request.body;
  if (body === undefined || body === null)
    throw new ApiError(400, 'EMPTY_BODY', 'send an operation, a JSON array of operations, or NDJSON');
  if (Array.isArray(body) && body.length > MAX_OPERATIONS_PER_REQUEST) throw tooMany();
  return Array.isArray(body) ? body.map((value: unknown) => ({ value })) : [{ value: body }];
}

export function isNdjson(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === NDJSON;
}

/** NDJSON, streamed: blank lines are skipped; a line that is not JSON is an item with an error (see support/json-lines.ts). */
export async function readNdjson(stream: AsyncIterable<Uint8Array>, limitBytes: number): Promise<Item[]> {
  const items: Item[] = [];
  const reader = createJsonLineReader();
  let bytes = 0;
  const take = (lines: JsonLine[]) => {
    for (const item of lines) {
      if (items.length >= MAX_OPERATIONS_PER_REQUEST) throw tooMany();
      if ('value' in item) items.push(item);
      else items.push({ line: item.line, value: undefined, parseError: item.whole ? item.error : `not JSON: ${item.error}` });
    }
  };
  for await (const chunk of stream) {
    bytes += chunk.length;
    if (bytes > limitBytes) {
      // Not destroyed here: the 413 is answered first, then the connection closes (the rest unread).
      throw new ApiError(
        413,
        'BODY_TOO_LARGE',
        `the body is larger than ${limitBytes} bytes (SLUICE_API_MAX_BODY_BYTES): send fewer operations per request`,
      );
    }
    take(reader.write(chunk));
  }
  take(reader.end());
  return items;
}

/** Checks every item; any problem → 400 listing the first hundred (and counting all), nothing enqueued. */
async function checkItems(items: readonly Item[], config: SluiceConfig, rules: OperationRules): Promise<unknown[]> {
  if (items.length === 0) throw invalid('no operations in the body', [{ path: '', message: 'send at least one operation' }]);
  const issues: ApiIssue[] = [];
  let problems = 0;
  let invalidItems = 0;
  for (let index = 0; index < items.length; index += 1) {
    if (index > 0 && index % VALIDATE_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    const item = items[index]!;
    const where = item.line === undefined ? { index } : { index, line: item.line };
    let found: readonly { path: string; message: string }[] = [];
    if (item.parseError !== undefined) found = [{ path: '', message: item.parseError }];
    else {
      const parsed = parseOperation(item.value, config, rules);
      if (!parsed.ok) found = parsed.issues;
    }
    if (found.length === 0) continue;
    invalidItems += 1;
    problems += found.length;
    for (const issue of found) if (issues.length < MAX_LISTED_ISSUES) issues.push({ ...where, path: issue.path, message: issue.message });
  }
  if (invalidItems === 0) return items.map((item) => item.value);
  throw invalid(
    `${invalidItems} of ${items.length} operations are invalid; nothing was enqueued${problems > issues.length ? ` (the first ${issues.length} of ${problems} problems are listed)` : ''}`,
    issues,
  );
}
