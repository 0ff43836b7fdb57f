import { STATUS_CODES } from 'node:http';

/**
 * The API's error answers are RFC 9457 problem details (`application/problem+json`). Each stable
 * `code` is one problem type: its `type` is the relative URI `/problems/<code in kebab case>` (an
 * identifier, not a page: RFC 9457 §3.1.1 lets type URIs be unresolvable), its `title` is fixed.
 */
export const PROBLEM_JSON = 'application/problem+json';

/** The title of each code: short, the same for every occurrence (`detail` says what happened this time). */
export const PROBLEM_TITLES: Readonly<Record<string, string>> = {
  VALIDATION_FAILED: 'The request is invalid',
  BAD_JSON: 'The body is not valid JSON',
  EMPTY_BODY: 'The body is empty',
  BAD_REQUEST: 'Malformed request',
  CLIENT_ABORTED: 'The request body was cut off',
  UNAUTHORIZED: 'Missing or unknown token',
  FORBIDDEN: 'Not allowed for this role',
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed on this path',
  REQUEST_TIMEOUT: 'The request did not arrive in time',
  CIRCUIT_OFF: 'The limit key has no circuit breaker',
  SCHEDULE_EXISTS: 'A schedule of that name exists',
  SHARDS_CHANGE_REFUSED: 'Idempotency marks are held: shards unchanged',
  // bull-board's guard (/dashboard): actions that would bypass the dead-letter queue or strand batches.
  REPLAY_DEAD_LETTERS_INSTEAD: 'Replay dead letters instead',
  WOULD_STRAND_BATCHES: 'The batches would never finish',
  BODY_TOO_LARGE: 'The body is too large',
  TOO_MANY_OPERATIONS: 'Too many operations in one request',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported Content-Type',
  UNSUPPORTED_CONTENT_ENCODING: 'Unsupported Content-Encoding',
  BAD_CONTENT_ENCODING: 'The body is not valid in its Content-Encoding',
  TOO_MANY_AUTH_FAILURES: 'Too many failed credentials from this address',
  HEADERS_TOO_LARGE: 'The request headers are too large',
  INTERNAL: 'Internal error',
  REDIS_UNAVAILABLE: 'Redis is not answering',
  SHUTTING_DOWN: 'The server is shutting down',
};

/** One issue of a VALIDATION_FAILED problem: which item (bulk bodies), which NDJSON line, where, what. */
export interface ProblemIssue {
  index?: number;
  line?: number;
  path: string;
  message: string;
}

/** Further members of one kind of problem (RFC 9457 §3.2 extensions), e.g. SHARDS_CHANGE_REFUSED's `heldMarks`. */
export type ProblemExtensions = Readonly<Record<string, string | number | boolean>>;

/** A problem details body: the RFC 9457 members, then sluice's extensions. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** The stable code clients switch on (the type's last segment says the same, in kebab case). */
  code: string;
  /** Deprecated alias of `detail`, kept for clients written before problem details. */
  message: string;
  errors?: readonly ProblemIssue[];
  /** For SHARDS_CHANGE_REFUSED: the idempotency keys' marks held. */
  heldMarks?: number;
}

/** `TOO_MANY_AUTH_FAILURES` → `/problems/too-many-auth-failures`. */
export const problemType = (code: string) => `/problems/${code.toLowerCase().replaceAll('_', '-')}`;

/** The problem body of an error answer; a code without a title gets its status's reason phrase. */
export function problemDetails(
  status: number,
  code: string,
  detail: string,
  extra: { instance?: string; errors?: readonly ProblemIssue[]; extensions?: ProblemExtensions } = {},
): Problem {
  return {
    type: problemType(code),
    title: PROBLEM_TITLES[code] ?? STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    ...(extra.instance !== undefined ? { instance: extra.instance } : {}),
    code,
    message: detail,
    ...(extra.errors ? { errors: extra.errors } : {}),
    // Named unlike the members above (sluice's own code sets them).
    ...extra.extensions,
  };
}
