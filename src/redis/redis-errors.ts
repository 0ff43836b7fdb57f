/** Socket errors that say the way to Redis failed, not what was asked. */
const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

/** ioredis's own errors of a Redis Cluster it cannot reach or follow. */
const CLUSTER_TROUBLE =
  /^(Too many Cluster redirections|None of startup nodes is available|Failed to refresh slots cache|Cluster isn't ready)/;

/**
 * Whether an error came from Redis or the way to it rather than from what was asked, so that the
 * same command may succeed later: an error reply (OOM when a `noeviction` Redis is full, READONLY
 * during a failover, LOADING after a restart), or a lost connection. BullMQ's own refusals (a lost
 * lock, a job in another state) are plain errors: they are not.
 */
export function isRedisFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError' || error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  // A cluster that failed over or moved a slot more often than ioredis follows, or none of whose nodes answers.
  if (CLUSTER_TROUBLE.test(error.message)) return true;
  const code = (error as { code?: unknown }).code;
  return error.message === 'Connection is closed.' || (typeof code === 'string' && CONNECTION_CODES.has(code));
}
