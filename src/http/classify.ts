import {
  AddressRefusedError,
  AuthError,
  FileAccessError,
  NetworkError,
  RequestError,
  ShutdownAbortError,
  TimeoutError,
  TlsError,
} from '../errors.js';
import { checkJson } from '../operation/json-schema.js';
import type { Operation } from '../operation/schema.js';
import type { HttpResponseSummary } from './http-client.js';
import { isExpectedStatus } from './expected-status.js';

/** Statuses that may succeed when asked again. Everything else outside `expect.status` is permanent. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export type AttemptClass =
  | { kind: 'success' }
  | { kind: 'retry'; retryAfterMs: number | undefined; code: string }
  /** `message`: what was wrong, when the code alone does not say (a body that fails `expect.schema`). */
  | { kind: 'permanent'; code: string; message?: string }
  | { kind: 'aborted' };

/** The one place that decides what an HTTP status means for an operation. */
export function classifyStatus(status: number, expected: readonly number[] | undefined, retryAfterMs?: number): AttemptClass {
  if (isExpectedStatus(status, expected)) return { kind: 'success' };
  if (RETRYABLE_STATUSES.has(status)) return { kind: 'retry', retryAfterMs, code: `HTTP_${status}` };
  return { kind: 'permanent', code: `HTTP_${status}` };
}

/**
 * The one place that decides what a response means for an operation: its status first (a 503
 * stays retryable whatever its body), then, for an accepted status, its body. A body that is too
 * large (RESPONSE_TOO_LARGE), cannot be decoded (BAD_ENCODING) or fails `expect.schema`
 * (SCHEMA_MISMATCH) is permanent: the target answered, and asking again would get the same.
 */
export function classifyResponse(response: HttpResponseSummary, expect: Operation['expect']): AttemptClass {
  const verdict = classifyStatus(response.status, expect?.status, response.retryAfterMs);
  if (verdict.kind !== 'success') return verdict;
  const { problem, text } = response.body;
  if (problem) return { kind: 'permanent', code: problem.code, message: problem.message };
  if (expect?.schema) {
    // The client keeps the whole body when the operation has a schema (RequestSpec.keepBodyText).
    const mismatch = checkJson(expect.schema, text ?? '');
    if (mismatch) return { kind: 'permanent', code: 'SCHEMA_MISMATCH', message: mismatch.message };
  }
  return verdict;
}

/** The one place that decides what a thrown error means for an operation. */
export function classifyError(error: unknown): AttemptClass {
  if (error instanceof ShutdownAbortError) return { kind: 'aborted' };
  if (error instanceof AuthError) {
    return error.retryable ? { kind: 'retry', retryAfterMs: undefined, code: error.code } : { kind: 'permanent', code: error.code };
  }
  if (error instanceof TimeoutError || error instanceof NetworkError || error instanceof FileAccessError) {
    return { kind: 'retry', retryAfterMs: undefined, code: error.code };
  }
  // A TLS failure (untrusted certificate, refused client certificate) needs the config or the server to change first.
  if (error instanceof RequestError || error instanceof AddressRefusedError || error instanceof TlsError) {
    return { kind: 'permanent', code: error.code };
  }
  // Unknown failures are treated as transient: retrying is bounded, losing an operation is not.
  return { kind: 'retry', retryAfterMs: undefined, code: 'UNKNOWN' };
}
