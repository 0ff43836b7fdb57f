import { SluiceError } from '../errors.js';

/**
 * Redis answers of a server that is down, restarting, loading its data or failing over, and
 * ioredis errors for a connection that is gone: the same command may succeed a little later.
 */
const UNAVAILABLE_MESSAGE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|EPIPE|Connection is closed|max retries per request|Stream isn't writeable|^LOADING |^MASTERDOWN |^CLUSTERDOWN |^TRYAGAIN |^BUSY |^Too many Cluster redirections|^None of startup nodes is available|^Failed to refresh slots cache|^Cluster isn't ready/i;

/** Whether `error` means Redis is not answering now (rather than that the command was wrong). */
export function isRedisUnavailable(error: unknown): boolean {
  if (error instanceof SluiceError) return error.code === 'REDIS_UNREACHABLE';
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  return UNAVAILABLE_MESSAGE.test(error.message) || UNAVAILABLE_MESSAGE.test(String((error as { code?: unknown }).code ?? ''));
}

/**
 * `reply`, or a `REDIS_UNREACHABLE` error once `timeoutMs` passed without it: a Redis that accepts
 * the connection but never answers (stopped, or swapping) must not hang whoever waits.
 */
export async function answerWithin<T>(reply: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      reply,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new SluiceError(`Redis did not answer within ${timeoutMs} ms`, { code: 'REDIS_UNREACHABLE' })),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    // A reply that lost the race may still fail later: nobody waits for it.
    reply.catch(() => undefined);
  }
}

/** What to say of an outage: the first cause, without the wrappers' advice. */
export function outageReason(error: unknown): string {
  const cause = error instanceof SluiceError && error.cause !== undefined ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
