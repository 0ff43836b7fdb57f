import { runSchema, scheduleBodySchema, scheduleSchema } from './routes/schedules.js';
import { z } from 'zod';
import { operationSchema } from '../operation/schema.js';
import {
  attemptSchema,
  batchStatusSchema,
  deadLetterFilterSchema,
  deadLetterGroupSchema,
  deadLetterSchema,
  deadLetterSelectionSchema,
  deadLettersResponseSchema,
  enqueueResponseSchema,
  errorSchema,
  limitChangeSchema,
  limitChangedSchema,
  limitStatusSchema,
  operationStateSchema,
  purgeResponseSchema,
  queueInfoSchema,
  replayResponseSchema,
  shardChangeSchema,
  shardsChangedSchema,
  validationIssueSchema,
} from './api-schemas.js';
import { overviewSchema } from './overview.js';
import { PROBLEM_JSON } from './problem-types.js';
import { resultLineSchema } from './result-line-schema.js';
import type { AnyRoute } from './route.js';

/** The schemas `components.schemas` names (generated clients get a type for each); every use is a `$ref`. */
export const NAMED_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  Operation: operationSchema,
  Enqueued: enqueueResponseSchema,
  OperationState: operationStateSchema,
  Attempt: attemptSchema,
  Batch: batchStatusSchema,
  Result: resultLineSchema,
  DeadLetter: deadLetterSchema,
  DeadLetterGroup: deadLetterGroupSchema,
  DeadLetterList: deadLettersResponseSchema,
  DeadLetterFilter: deadLetterFilterSchema,
  DeadLetterSelection: deadLetterSelectionSchema,
  Replayed: replayResponseSchema,
  Purged: purgeResponseSchema,
  Limit: limitStatusSchema,
  LimitChange: limitChangeSchema,
  LimitChanged: limitChangedSchema,
  Overview: overviewSchema,
  Queue: queueInfoSchema,
  ShardChange: shardChangeSchema,
  ShardsChanged: shardsChangedSchema,
  ValidationIssue: validationIssueSchema,
  Schedule: scheduleSchema,
  NewSchedule: scheduleBodySchema,
  ScheduleRun: runSchema,
  Error: errorSchema,
};

const schemaRef = (id: string) => `#/components/schemas/${id}`;
const problemContent = { [PROBLEM_JSON]: { schema: { $ref: schemaRef('Error') } } };

/** The error answers many operations share, as `components.responses`. */
const SHARED_RESPONSES: Record<string, { description: string; headers?: Record<string, unknown> }> = {
  BadRequest: {
    description: 'the request is invalid (VALIDATION_FAILED, BAD_JSON, EMPTY_BODY, BAD_REQUEST); `errors` lists every problem',
  },
  Unauthorized: { description: 'missing or unknown token (UNAUTHORIZED); sent with WWW-Authenticate: Bearer' },
  NotFound: { description: 'no such resource (NOT_FOUND)' },
  BodyTooLarge: {
    description: 'the body is over SLUICE_API_MAX_BODY_BYTES (BODY_TOO_LARGE) or holds over 100,000 operations (TOO_MANY_OPERATIONS)',
  },
  UnsupportedMediaType: { description: 'a Content-Type this operation does not take (UNSUPPORTED_MEDIA_TYPE)' },
  TooManyAuthFailures: {
    description:
      'too many failed tokens or sign-ins from this address (TOO_MANY_AUTH_FAILURES): every credential is refused until Retry-After',
    headers: { 'Retry-After': { description: 'seconds until credentials are taken again', schema: { type: 'integer' } } },
  },
  ServiceUnavailable: {
    description: 'Redis is not answering (REDIS_UNAVAILABLE) or the server is shutting down (SHUTTING_DOWN): try again',
  },
};
const sharedResponse = (name: keyof typeof SHARED_RESPONSES) => ({ $ref: `#/components/responses/${name}` });

/** JSON Schema of a zod schema as a request would be written (inputs: defaults optional, text before coercion). */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** `/v1/operations/:id` → `/v1/operations/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

function parameters(route: AnyRoute): unknown[] {
  const out: unknown[] = [];
  const add = (where: 'path' | 'query', schema: z.ZodType | undefined) => {
    if (!schema) return;
    const doc = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, property] of Object.entries(doc.properties ?? {})) {
      const { description, ...propertySchema } = property;
      out.push({
        name,
        in: where,
        required: where === 'path' || (doc.required ?? []).includes(name),
        schema: propertySchema,
        ...(typeof description === 'string' ? { description } : {}),
      });
    }
  };
  add('path', route.params);
  add('query', route.query);
  return out;
}

function responseHeaders(headers: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }]));
}

/**
 * The OpenAPI 3 document of the routes: paths, parameters, bodies and answers, from their zod
 * schemas. Bodies and answers refer to the named schemas (`$ref`); every error answer is problem details.
 */
export function openApiDocument(routes: readonly AnyRoute[], info: { title: string; version: string }): Record<string, unknown> {
  // Every body and answer schema is converted in one registry, so the named ones become `$ref`s;
  // the others are placeholders filled in with their conversion below.
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(NAMED_SCHEMAS)) registry.add(schema, { id });
  const idOf = new Map<z.ZodType, string>(Object.entries(NAMED_SCHEMAS).map(([id, schema]) => [schema, id]));
  const inline = new Map<string, Record<string, unknown>>();
  const schemaOf = (schema: z.ZodType): Record<string, unknown> => {
    let id = idOf.get(schema);
    if (id === undefined) {
      id = `inline-${idOf.size}`;
      idOf.set(schema, id);
      registry.add(schema, { id });
      inline.set(id, {});
    }
    return inline.get(id) ?? { $ref: schemaRef(id) };
  };
  const content = (schema: z.ZodType, type: string) => (schema === errorSchema ? problemContent : { [type]: { schema: schemaOf(schema) } });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(route.responses)) {
      responses[status] = {
        description: doc.description,
        ...(doc.schema ? { content: content(doc.schema, doc.contentType ?? 'application/json') } : {}),
        ...(doc.headers ? { headers: responseHeaders(doc.headers) } : {}),
      };
    }
    const takesBody = route.body !== undefined || route.bodyDoc !== undefined;
    if (takesBody || route.query) responses['400'] ??= sharedResponse('BadRequest');
    if (route.role !== null) {
      responses['401'] ??= sharedResponse('Unauthorized');
      responses['403'] ??= { description: `the token's role may not do this: needs ${route.role} (FORBIDDEN)`, content: problemContent };
      responses['429'] ??= sharedResponse('TooManyAuthFailures');
    }
    if (route.params) responses['404'] ??= sharedResponse('NotFound');
    if (takesBody) {
      responses['413'] ??= sharedResponse('BodyTooLarge');
      responses['415'] ??= sharedResponse('UnsupportedMediaType');
    }
    responses['503'] ??= sharedResponse('ServiceUnavailable');
    let requestBody: unknown;
    if (route.body) requestBody = { required: true, content: content(route.body, 'application/json') };
    else if (route.bodyDoc) {
      requestBody = {
        required: true,
        description: route.bodyDoc.description,
        content: Object.fromEntries(Object.entries(route.bodyDoc.content).map(([type, schema]) => [type, { schema: schemaOf(schema) }])),
      };
    }
    const operation = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      ...(route.role === null ? { security: [] } : { 'x-sluice-role': route.role }),
      parameters: parameters(route),
      ...(requestBody ? { requestBody } : {}),
      responses,
    };
    (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation;
  }

  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    unrepresentable: 'any',
    target: 'openapi-3.0',
    uri: schemaRef,
  }) as { schemas: Record<string, Record<string, unknown>> };
  const named: Record<string, unknown> = {};
  for (const [id, converted] of Object.entries(schemas)) {
    const { $id: _id, ...schema } = withoutLoneAllOf(converted) as Record<string, unknown>;
    const placeholder = inline.get(id);
    if (placeholder) Object.assign(placeholder, schema);
    else named[id] = schema;
  }
  const tags = [...new Set(routes.map((route) => route.tag))];
  return {
    openapi: '3.0.3',
    info: {
      ...info,
      description:
        'Enqueue and follow rate-limited HTTP operations. Authenticate with `Authorization: Bearer <token>`; tokens and their roles (read, enqueue, admin) come from SLUICE_API_TOKENS. Every error is problem details (RFC 9457, `application/problem+json`) with a stable `code`.',
      license: { name: 'MIT', url: 'https://opensource.org/license/mit' },
    },
    servers: [{ url: '/', description: 'this server' }],
    tags: tags.map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? name })),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: named,
      responses: Object.fromEntries(
        Object.entries(SHARED_RESPONSES).map(([name, response]) => [name, { ...response, content: problemContent }]),
      ),
    },
    security: [{ bearer: [] }],
    paths,
  };
}

const TAG_DESCRIPTIONS: Record<string, string> = {
  operations: 'Enqueue operations and follow one',
  batches: "Batches' counters and results",
  'dead letters': 'Inspect, replay and delete dead letters',
  limits: 'Steer rate limits and circuit breakers',
  queues: 'Queues and their shards',
  health: 'Liveness, readiness and metrics',
  dashboard: "The dashboard's data and sessions",
};

/** zod wraps a lone `$ref` in `allOf: [ref]` (OpenAPI 3.0 ignores a `$ref`'s siblings); with no siblings the ref says it plainly. */
function withoutLoneAllOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutLoneAllOf);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const only = (value as { allOf?: unknown[] }).allOf;
  if (entries.length === 1 && Array.isArray(only) && only.length === 1) return withoutLoneAllOf(only[0]);
  return Object.fromEntries(entries.map(([key, inner]) => [key, withoutLoneAllOf(inner)]));
}
