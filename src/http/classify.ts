import { AuthError, NetworkError, RequestError, ShutdownAbortError, TimeoutError, UpstreamError } from '../errors.js';

/** Statuses that may succeed when asked again. Everything else outside `expect.status` is permanent. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export type AttemptClass =
  | { kind: 'success' }
  | { kind: 'retry'; retryAfterMs: number | undefined; code: string }
  | { kind: 'permanent'; code: string }
  | { kind: 'aborted' };

/** Does `status` count as success for an operation that accepts `expected` (default: any 2xx)? */
export function isExpectedStatus(status: number, expected: readonly number[] | undefined): boolean {
  return expected ? expected.includes(status) : status >= 200 && status < 300;
}

/** The one place that decides what an HTTP status means for an operation. */
export function classifyStatus(status: number, expected: readonly number[] | undefined, retryAfterMs?: number): AttemptClass {
  if (isExpectedStatus(status, expected)) return { kind: 'success' };
  if (RETRYABLE_STATUSES.has(status)) return { kind: 'retry', retryAfterMs, code: `HTTP_${status}` };
  return { kind: 'permanent', code: `HTTP_${status}` };
}

/** The one place that decides what a thrown error means for an operation. */
export function classifyError(error: unknown): AttemptClass {
  if (error instanceof ShutdownAbortError) return { kind: 'aborted' };
  if (error instanceof UpstreamError) {
    return error.retryable
      ? { kind: 'retry', retryAfterMs: error.retryAfterMs, code: error.code }
      : { kind: 'permanent', code: error.code };
  }
  if (error instanceof AuthError) {
    return error.retryable ? { kind: 'retry', retryAfterMs: undefined, code: error.code } : { kind: 'permanent', code: error.code };
  }
  if (error instanceof TimeoutError || error instanceof NetworkError) {
    return { kind: 'retry', retryAfterMs: undefined, code: error.code };
  }
  if (error instanceof RequestError) return { kind: 'permanent', code: error.code };
  // Unknown failures are treated as transient: retrying is bounded, losing an operation is not.
  return { kind: 'retry', retryAfterMs: undefined, code: 'UNKNOWN' };
}
