import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { EnqueueIncompleteError, SluiceError, ValidationError } from '../errors.js';
import { PROBLEM_JSON, problemDetails, type ProblemExtensions, type ProblemIssue } from './problem-types.js';

/** One problem in a request, as the API reports it: which item (for bulk bodies), where (NDJSON: its 1-based line), what. */
export type ApiIssue = ProblemIssue;

/**
 * An error the API answers with: an HTTP status and a stable `code` that clients can switch on.
 * Every error response is problem details (`application/problem+json`, see problem-types.ts).
 */
export class ApiError extends SluiceError {
  readonly statusCode: number;
  readonly errors: readonly ApiIssue[] | undefined;
  /** Headers sent with the answer (e.g. `retry-after`). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Members of the problem details beyond sluice's own, for clients to act on (e.g. `heldMarks`). */
  readonly extensions: ProblemExtensions | undefined;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    errors?: readonly ApiIssue[],
    headers?: Record<string, string>,
    extensions?: ProblemExtensions,
  ) {
    super(message, { code });
    this.statusCode = statusCode;
    this.errors = errors;
    this.headers = headers;
    this.extensions = extensions;
  }
}

export const unauthorized = (message: string) => new ApiError(401, 'UNAUTHORIZED', message);
export const forbidden = (message: string) => new ApiError(403, 'FORBIDDEN', message);
export const notFound = (message: string) => new ApiError(404, 'NOT_FOUND', message);
export const invalid = (message: string, errors: readonly ApiIssue[]) => new ApiError(400, 'VALIDATION_FAILED', message, errors);

/** Fastify's own errors (body parsing, limits) mapped to our codes. */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'BODY_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_REQUEST'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'EMPTY_BODY'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'BAD_JSON'],
};

/** Clearer words than fastify's for the common ones. */
const MESSAGES: Record<string, string> = {
  UNSUPPORTED_MEDIA_TYPE:
    'unsupported Content-Type: send application/json (one operation or an array) or application/x-ndjson (one per line)',
  BODY_TOO_LARGE: 'the body is larger than SLUICE_API_MAX_BODY_BYTES: send fewer operations per request',
  EMPTY_BODY: 'the body is empty: send an operation, a JSON array of operations, or NDJSON',
};

/** Errors that mean Redis is not answering: the request may succeed later. */
const REDIS_DOWN =
  /ECONNREFUSED|Connection is closed|max retries per request|ETIMEDOUT|Stream isn't writeable|REDIS_UNREACHABLE|^OOM |^READONLY|^LOADING|^MASTERDOWN|^CLUSTERDOWN|^BUSY /i;

/** What an error answer says, before it becomes problem details: the code, and `message` (its `detail`). */
export interface ErrorBody {
  code: string;
  message: string;
  errors?: readonly ApiIssue[];
  extensions?: ProblemExtensions;
}

/** A ValidationError's first line, `invalid schedule "x"`: its issues are in `errors`, so no trailing colon introducing them. */
function validationSummary(error: ValidationError): string {
  return error.message.split('\n')[0]!.replace(/:$/, '');
}

/** Maps any error to a status, a code and a message. Unknown errors say nothing of their internals. */
export function errorResponse(error: unknown): { statusCode: number; body: ErrorBody; unexpected: boolean } {
  // What stopped an enqueue part-way decides the answer (a 503 when Redis went away).
  if (error instanceof EnqueueIncompleteError) return errorResponse(error.cause);
  if (error instanceof ApiError) {
    return {
      statusCode: error.statusCode,
      body: {
        code: error.code,
        message: error.message,
        ...(error.errors ? { errors: error.errors } : {}),
        ...(error.extensions ? { extensions: error.extensions } : {}),
      },
      unexpected: false,
    };
  }
  if (error instanceof ValidationError) {
    return {
      statusCode: 400,
      body: { code: 'VALIDATION_FAILED', message: validationSummary(error), errors: error.issues.map((issue) => ({ ...issue })) },
      unexpected: false,
    };
  }
  const fastifyError = error as Partial<FastifyError>;
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped)
    return {
      statusCode: mapped[0],
      body: { code: mapped[1], message: MESSAGES[mapped[1]] ?? fastifyError.message ?? mapped[1] },
      unexpected: false,
    };
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return { statusCode: 400, body: { code: 'BAD_JSON', message: `the body is not valid JSON: ${error.message}` }, unexpected: false };
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return {
      statusCode: fastifyError.statusCode,
      body: { code: 'BAD_REQUEST', message: fastifyError.message ?? 'bad request' },
      unexpected: false,
    };
  }
  if (fastifyError.code === 'ECONNRESET' || (error instanceof Error && error.message === 'aborted')) {
    // The client went away mid-body: nobody reads this answer; it is not the server's fault.
    return { statusCode: 400, body: { code: 'CLIENT_ABORTED', message: 'the request body was cut off' }, unexpected: false };
  }
  const message = error instanceof Error ? error.message : String(error);
  if ((error instanceof SluiceError && error.code === 'REDIS_UNREACHABLE') || REDIS_DOWN.test(message)) {
    return {
      statusCode: 503,
      body: { code: 'REDIS_UNAVAILABLE', message: 'Redis is not answering; try again shortly' },
      unexpected: false,
    };
  }
  return { statusCode: 500, body: { code: 'INTERNAL', message: 'internal error (see the server log)' }, unexpected: true };
}

/** Fastify's 413 names no number: the route's limit, and what sets it. */
function tooLargeMessage(request: FastifyRequest): string {
  const { bodyLimit, url } = request.routeOptions;
  if (typeof bodyLimit !== 'number' || !url) return MESSAGES['BODY_TOO_LARGE']!;
  const hint = url.startsWith('/v1/') ? ' (SLUICE_API_MAX_BODY_BYTES): send fewer operations per request' : '';
  return `the body is larger than ${bodyLimit} bytes, the most ${request.method} ${url} takes${hint}`;
}

/** How long a connection closed over an unread body still takes (and drops) what the client sends. */
const LINGER_MS = 2_000;

/**
 * Closing a socket with unread bytes makes the kernel reset the connection, and a client still
 * sending its body may then lose the answer before it reads it. So, as nginx's lingering close:
 * send the answer and a FIN, drop what still arrives until the client stops, for 2 s at most.
 */
function lingerBeforeClosing(socket: Socket | null): void {
  if (!socket || socket.destroyed) return;
  socket.destroySoon = function lingeringDestroySoon(this: Socket) {
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    this.once('close', () => clearTimeout(timer));
    this.once('end', () => this.destroy());
  };
}

/** Whether the request says it has a body (chunked, or a non-zero Content-Length). */
export function sendsBody(request: FastifyRequest): boolean {
  const { headers } = request;
  return headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
}

function bodyUnread(request: FastifyRequest): boolean {
  return sendsBody(request) && !request.raw.complete;
}

/** The one way an error is answered: status, headers and the problem details body. */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { statusCode, body, unexpected } = errorResponse(error);
  if (body.code === 'BODY_TOO_LARGE' && !(error instanceof ApiError)) body.message = tooLargeMessage(request);
  if (unexpected) request.log.error({ err: error }, 'request failed');
  else if (statusCode >= 500) request.log.warn({ code: body.code, err: error }, 'request failed');
  if (statusCode === 401) void reply.header('www-authenticate', 'Bearer realm="sluice"');
  if (error instanceof ApiError && error.headers) void reply.headers(error.headers);
  // An answer given before the body was read (too large, too slow, no valid token): the rest is
  // never read, so the connection is closed rather than drained.
  if (statusCode === 413 || bodyUnread(request)) {
    void reply.header('connection', 'close');
    lingerBeforeClosing(request.raw.socket);
  }
  const problem = problemDetails(statusCode, body.code, body.message, {
    // The path only: a query string may hold a token (`?access_token=`).
    instance: request.url.split('?')[0]!,
    ...(body.errors ? { errors: body.errors } : {}),
    ...(body.extensions ? { extensions: body.extensions } : {}),
  });
  return reply.code(statusCode).type(`${PROBLEM_JSON}; charset=utf-8`).send(problem);
}
