import { Redis } from 'ioredis';
import { SluiceError, errorMessage } from '../errors.js';

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
  });
  // Connection errors reach callers through the commands that fail (and BullMQ's own 'error'
  // events); without a listener ioredis would also print each reconnect attempt to the console.
  client.on('error', () => undefined);
  return client;
}

/** Fails fast, with the URL in the message, when Redis does not answer. */
export async function assertRedisReachable(redis: Redis, url: string, timeoutMs = 3_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    throw new SluiceError(
      `cannot reach Redis at ${redactUrl(url)}: ${errorMessage(error)}. Is it running? Set REDIS_URL to point elsewhere.`,
      {
        code: 'REDIS_UNREACHABLE',
        cause: error,
      },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Closes a client we own: QUIT, falling back to a hard disconnect when Redis is gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  } catch {
    // Already closed or unreachable.
  } finally {
    redis.disconnect();
  }
}
