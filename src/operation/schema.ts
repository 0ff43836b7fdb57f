import { z } from 'zod';
import { headersSchema, isSendableHeaderValue, UNSENDABLE_HEADER_VALUE } from '../config/headers-schema.js';
import { paginateSchema } from './paginate-schema.js';
import { jsonSchemaProblems } from './json-schema.js';
import { downloadSchema, fileFieldConflicts, multipartSchema, relativeFilePathSchema } from './file-fields.js';

/**
 * The operation: one HTTP call described as data. This schema is the one source of truth: it is
 * checked when an operation is enqueued and again when a worker takes it. Objects are strict, so a
 * misspelt field is an error rather than silently ignored.
 */

export const DEFAULT_TIMEOUTS = { connect: 5_000, headers: 30_000, total: 60_000 } as const;
export const DEFAULT_RETRY = {
  attempts: 8,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  maxDurationMs: 24 * 60 * 60 * 1_000,
} as const;

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Methods sent without an `Idempotency-Key` header (see http/request-spec.ts); every other one carries the operation's key. */
export const METHODS_WITHOUT_IDEMPOTENCY_HEADER: ReadonlySet<string> = new Set(['GET', 'HEAD']);
const NO_CR_LF = /^[^\r\n]*$/;

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const paramValue = z.union([scalar, z.array(scalar)], { error: 'expected a string, number, boolean or an array of them' });

const limitKeyName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\s]+$/, 'limit keys may not contain white space');

const positiveMs = (max: number) => z.number().int().positive().max(max);

export const timeoutSchema = z.strictObject({
  connect: positiveMs(5 * 60_000).default(DEFAULT_TIMEOUTS.connect),
  headers: positiveMs(60 * 60_000).default(DEFAULT_TIMEOUTS.headers),
  total: positiveMs(60 * 60_000).default(DEFAULT_TIMEOUTS.total),
});

export const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(100).default(DEFAULT_RETRY.attempts),
  baseDelayMs: z
    .number()
    .int()
    .min(0)
    .max(24 * 3_600_000)
    .default(DEFAULT_RETRY.baseDelayMs),
  maxDelayMs: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3_600_000)
    .default(DEFAULT_RETRY.maxDelayMs),
  maxDurationMs: z
    .number()
    .int()
    .positive()
    .max(30 * 24 * 3_600_000)
    .default(DEFAULT_RETRY.maxDurationMs),
});

export const expectSchema = z.strictObject({
  status: z.array(z.number().int().min(100).max(599)).min(1, 'list at least one status').optional(),
  /** A JSON Schema (draft-07) the whole body of an accepted response must match; compiled here, so a bad one is refused at enqueue. */
  schema: z
    .record(z.string(), z.unknown(), { error: 'expected a JSON Schema object' })
    .superRefine((schema, ctx) => {
      for (const problem of jsonSchemaProblems(schema)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    })
    .optional(),
});

/** The fields that give a request body: an operation gives at most one. */
const BODY_FIELDS = ['json', 'form', 'body', 'multipart', 'bodyFile'] as const;

export const operationSchema = z
  .strictObject({
    method: z
      .string()
      .regex(METHOD, 'expected an HTTP method such as GET or POST')
      // The HTTP client would hand the connection over rather than send a request and read an answer.
      .refine((method) => method.toUpperCase() !== 'CONNECT', 'CONNECT opens a tunnel, not a request sluice can send')
      .transform((method) => method.toUpperCase()),
    // An empty string is reported by the URL check in superRefine (one issue, not two).
    url: z.string(),
    target: z.string().min(1).optional(),
    query: z.record(z.string(), paramValue).optional(),
    headers: headersSchema.optional(),
    json: z
      .unknown()
      .refine((value) => value !== undefined, 'expected a JSON value')
      .optional(),
    form: z.record(z.string(), paramValue).optional(),
    body: z.string().optional(),
    /** Uploads (see file-fields.ts): a multipart/form-data body, or a raw body streamed from a file. */
    multipart: multipartSchema.optional(),
    bodyFile: relativeFilePathSchema.optional(),
    /** Write an accepted response's body to a file under files.downloadDir instead of keeping it. */
    download: downloadSchema.optional(),
    timeoutMs: timeoutSchema.default(() => ({ ...DEFAULT_TIMEOUTS })),
    idempotencyKey: z.string().min(1).max(256).regex(NO_CR_LF, 'may not contain CR or LF').optional(),
    limitKey: z
      .union([
        limitKeyName,
        z
          .array(limitKeyName)
          .min(1, 'list at least one key')
          .max(8, 'at most 8 keys')
          .refine((keys) => new Set(keys).size === keys.length, 'keys must be distinct'),
      ])
      .optional(),
    retry: retrySchema.default(() => ({ ...DEFAULT_RETRY })),
    expect: expectSchema.optional(),
    paginate: paginateSchema.optional(),
    meta: z.unknown().optional(),
  })
  .superRefine((op, ctx) => {
    // The first two bodies given, found without making a list (this runs for every operation checked).
    let first: (typeof BODY_FIELDS)[number] | undefined;
    for (const field of BODY_FIELDS) {
      if (op[field] === undefined) continue;
      if (first === undefined) first = field;
      else {
        ctx.addIssue({ code: 'custom', path: [field], message: `give at most one body; also got ${first}` });
        break;
      }
    }
    for (const issue of fileFieldConflicts(op)) ctx.addIssue({ code: 'custom', path: issue.path.split('.'), message: issue.message });
    if (op.url.startsWith('/')) {
      if (op.target === undefined) {
        ctx.addIssue({ code: 'custom', path: ['url'], message: 'a path needs a target whose baseUrl it is resolved against' });
      }
    } else if (!isHttpUrl(op.url)) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: `expected an absolute http(s) URL or a path starting with /, got ${JSON.stringify(op.url)}`,
      });
    }
    if (
      op.idempotencyKey !== undefined &&
      !METHODS_WITHOUT_IDEMPOTENCY_HEADER.has(op.method) &&
      !isSendableHeaderValue(op.idempotencyKey)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['idempotencyKey'],
        message: `sent as the Idempotency-Key header of a ${op.method}, so it ${UNSENDABLE_HEADER_VALUE}`,
      });
    }
    if (op.paginate !== undefined && op.method !== 'GET') {
      ctx.addIssue({ code: 'custom', path: ['paginate'], message: `pagination walks GET requests; this operation is ${op.method}` });
    }
    if (op.retry.maxDelayMs < op.retry.baseDelayMs) {
      ctx.addIssue({ code: 'custom', path: ['retry', 'maxDelayMs'], message: 'must be at least retry.baseDelayMs' });
    }
  });

/** What a caller writes (defaults may be left out). */
export type OperationInput = z.input<typeof operationSchema>;
/** A validated operation with every default filled in. */
export type Operation = z.output<typeof operationSchema>;

function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\//i.test(value)) return false;
  return URL.canParse(value);
}
