import { Redis } from 'ioredis';
import { SluiceError, errorMessage } from '../errors.js';
import { describeConnectionFailure } from './connection-failure.js';

export type { Redis };

export interface RedisConnectionOptions {
  /** Shown in `CLIENT LIST` (e.g. `sluice:worker`). */
  name?: string;
  /**
   * BullMQ workers need `null` (commands wait for a reconnect rather than fail); producers and the
   * CLI prefer a bounded number so a dead Redis gives an error instead of a hang. Default 3.
   */
  maxRetriesPerRequest?: number | null;
}

/** A new ioredis client. Whoever calls this owns it and must `quit()` it. */
export function createRedisConnection(url: string, options: RedisConnectionOptions = {}): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 3 : options.maxRetriesPerRequest,
    connectionName: options.name,
    enableReadyCheck: true,
    // After `disconnect()`, ioredis waits this long for the socket's 'close' before destroying it;
    // a socket that never connected (refused) has closed already, and its timer would keep a CLI
    // process alive for the default 2 s.
    disconnectTimeout: 200,
  });
  // Connection errors reach callers through the commands that fail (and BullMQ's own 'error'
  // events); without a listener ioredis would also print each reconnect attempt to the console.
  client.on('error', () => undefined);
  return client;
}

/** How long the start-up check waits for PING's answer by default. */
export const REACHABLE_TIMEOUT_MS = 2_000;

/**
 * Fails fast when Redis does not answer PING within `timeoutMs`, with the URL (password masked)
 * and the cause in the message: refused, unknown host, timed out, or connected but silent
 * (`REDIS_UNREACHABLE`); or credentials Redis refuses, WRONGPASS or NOAUTH (`REDIS_AUTH_FAILED`,
 * at once: waiting does not fix a password).
 */
export async function assertRedisReachable(redis: Redis, url: string, timeoutMs = REACHABLE_TIMEOUT_MS): Promise<void> {
  const timeout = new Error(`no answer within ${timeoutMs} ms`);
  let timer: NodeJS.Timeout | undefined;
  let lastError: unknown;
  let refuseCredentials: ((error: unknown) => void) | undefined;
  const onError = (error: unknown): void => {
    // ioredis also emits the wrapper the command fails with; the error before it names the cause.
    if (!(error instanceof Error && error.name === 'MaxRetriesPerRequestError')) lastError = error;
    if (/^(WRONGPASS|NOAUTH)/.test(errorMessage(error))) refuseCredentials?.(error);
  };
  redis.on('error', onError);
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        refuseCredentials = reject;
        timer = setTimeout(() => reject(timeout), timeoutMs);
      }),
    ]);
  } catch (error) {
    const timedOut = error === timeout;
    const failure = describeConnectionFailure({
      ...(timedOut ? {} : { error }),
      lastError,
      timedOut,
      timeoutMs,
      status: redis.status,
      host: hostOf(url),
      tls: /^rediss:/i.test(url),
    });
    const where = redactUrl(url);
    const message =
      failure.code === 'REDIS_AUTH_FAILED'
        ? `Redis at ${where} ${failure.reason}. ${failure.hint}`
        : `cannot reach Redis at ${where}: ${failure.reason}. ${failure.hint}`;
    // The cause the message names: a retry wrapper or a timeout says less than the socket's error.
    const wrapper = timedOut || (error instanceof Error && error.name === 'MaxRetriesPerRequestError');
    throw new SluiceError(message, { code: failure.code, cause: wrapper ? (lastError ?? error) : error });
  } finally {
    clearTimeout(timer);
    redis.off('error', onError);
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

/**
 * A Redis URL without its password, for messages and logs. The user part ends at the last `@`
 * before the path (as URL parsers read it, so `:p@ss@host` hides all of `p@ss`), and ioredis also
 * takes a `?password=` from the query.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/** Closes a client we own: QUIT, falling back to a hard disconnect when Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  // QUIT only on a connection that is up: queued for a reconnect, it would wait out the race.
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  } catch {
    // Already closed or unreachable.
  } finally {
    redis.disconnect();
  }
}
