/**
 * The error taxonomy. Imports nothing internal so every layer can use it.
 *
 * Every error sluice raises is a `SluiceError` with a stable `code`. Whether a failed HTTP attempt
 * may be retried is decided in one place (`http/classify.ts`), from these types.
 */

export interface SluiceErrorOptions {
  code: string;
  cause?: unknown;
}

export class SluiceError extends Error {
  readonly code: string;

  constructor(message: string, options: SluiceErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
  }
}

/** One problem found while validating input: where (`path`) and what. */
export interface Issue {
  path: string;
  message: string;
}

export function formatIssues(issues: readonly Issue[], prefix = ''): string {
  return issues.map((issue) => `${prefix}${issue.path ? `${issue.path}: ` : ''}${issue.message}`).join('\n');
}

/** Bad configuration (environment or config file): the process refuses to start. */
export class ConfigError extends SluiceError {
  readonly issues: readonly Issue[];

  constructor(source: string, issues: readonly Issue[]) {
    super(`invalid configuration in ${source}:\n${formatIssues(issues, '  ')}`, { code: 'CONFIG_INVALID' });
    this.issues = issues;
  }
}

/** An operation (or other user input) that does not match its schema. Never retried. */
export class ValidationError extends SluiceError {
  readonly issues: readonly Issue[];

  constructor(what: string, issues: readonly Issue[]) {
    super(`invalid ${what}:\n${formatIssues(issues, '  ')}`, { code: 'VALIDATION_FAILED' });
    this.issues = issues;
  }
}

export type TimeoutPhase = 'connect' | 'headers' | 'body' | 'total';

/** A request ran past one of its time bounds. Retryable. */
export class TimeoutError extends SluiceError {
  readonly phase: TimeoutPhase;

  constructor(phase: TimeoutPhase, timeoutMs: number, cause?: unknown) {
    super(`request timed out (${phase} timeout of ${timeoutMs} ms)`, { code: `TIMEOUT_${phase.toUpperCase()}`, cause });
    this.phase = phase;
  }
}

/** The connection failed or broke (refused, reset, DNS). Retryable. */
export class NetworkError extends SluiceError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { code, cause });
  }
}

/**
 * A local file of an upload or download could not be read or written (no permission, a full disk).
 * Retryable: the cause is on the worker's side and may pass. A file that is missing or lies outside
 * its configured directory is a RequestError instead.
 */
export class FileAccessError extends SluiceError {
  constructor(message: string, cause: unknown) {
    const code = (cause as { code?: unknown } | null)?.code;
    super(message, { code: `FILE_${typeof code === 'string' ? code : 'ERROR'}`, cause });
  }
}

/** The request could not be built or sent as described (bad header value, bad URL). Never retried. */
export class RequestError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'REQUEST_INVALID', cause });
  }
}

/**
 * The TLS handshake with the target failed in a way that asking again will not cure: a server
 * certificate that is not trusted, expired or for another name; a client certificate the server
 * refused or required; no protocol version both sides accept. `code` says which (TLS_CERT_UNTRUSTED,
 * TLS_CERT_EXPIRED, TLS_CERT_NAME_MISMATCH, TLS_CLIENT_CERT_REFUSED, TLS_PROTOCOL_VERSION,
 * TLS_HANDSHAKE_FAILED). Never retried: the target's tls settings (or the server) must change first.
 */
export class TlsError extends SluiceError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { code, cause });
  }
}

/** A connection refused by sluice itself: the address is internal and no target allows it. Never retried. */
export class AddressRefusedError extends SluiceError {
  constructor(message: string) {
    super(message, { code: 'ADDRESS_REFUSED' });
  }
}

/**
 * A response body that is not what its `content-encoding` says (corrupt or cut gzip, deflate or br
 * data). The target sent bad bytes; asking again would most likely get the same, so it is not
 * retried (like curl's CURLE_BAD_CONTENT_ENCODING). The HTTP client reports it as a body problem.
 */
export class ContentDecodingError extends SluiceError {
  constructor(contentEncoding: string, cause: unknown) {
    super(`cannot decode the response body (content-encoding: ${contentEncoding}): ${errorMessage(cause)}`, {
      code: 'BAD_ENCODING',
      cause,
    });
  }
}

/**
 * Credentials for a target could not be had: a token endpoint that failed or refused, or a 401 that
 * a fresh token did not cure. Retryable when the cause may pass (a 5xx, a network error).
 */
export class AuthError extends SluiceError {
  readonly retryable: boolean;

  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { code: 'AUTH_FAILED', cause: options.cause });
    this.retryable = options.retryable;
  }
}

/** The job was aborted because its worker is shutting down; it goes back to the queue. */
export class ShutdownAbortError extends SluiceError {
  constructor() {
    super('aborted: the worker is shutting down', { code: 'SHUTDOWN_ABORT' });
  }
}

/** What an enqueue had written when it stopped. */
export interface EnqueueProgress {
  enqueued: number;
  duplicates: number;
  alreadyEnqueued: number;
}

/**
 * An `enqueueMany` that stopped part-way (Redis went away, the input failed): the chunks written
 * before stay written (`written` counts them; a chunk in flight may be written too). Enqueuing the
 * same input into the same batch again adds what is missing and nothing twice (see
 * EnqueueManyOptions.resumable). `cause` is what stopped it.
 */
export class EnqueueIncompleteError extends SluiceError {
  readonly batchId: string;
  readonly written: EnqueueProgress;

  constructor(batchId: string, written: EnqueueProgress, cause: unknown) {
    const count = written.enqueued + written.duplicates + written.alreadyEnqueued;
    super(`enqueue into batch ${batchId} stopped after ${count} operations were written: ${errorMessage(cause)}`, {
      code: 'ENQUEUE_INCOMPLETE',
      cause,
    });
    this.batchId = batchId;
    this.written = written;
  }
}

/** A command-line usage problem; the CLI prints it and exits 2. */
export class UsageError extends SluiceError {
  constructor(message: string) {
    super(message, { code: 'USAGE' });
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A schedule name that names no schedule of the queue. */
export class ScheduleNotFoundError extends SluiceError {
  constructor(queue: string, name: string) {
    super(`no schedule ${JSON.stringify(name)} in queue ${queue}`, { code: 'SCHEDULE_NOT_FOUND' });
  }
}

/** A schedule added under a name the queue already has. */
export class ScheduleExistsError extends SluiceError {
  constructor(queue: string, name: string) {
    super(`queue ${queue} has a schedule ${JSON.stringify(name)} already; remove it first`, { code: 'SCHEDULE_EXISTS' });
  }
}
