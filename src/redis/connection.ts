import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SluiceError, errorMessage } from '../errors.js';
import type { RedisClient } from './client.js';
import { describeConnectionFailure } from './connection-failure.js';
import { hostOf, parseRedisUrl, redactUrl } from './redis-url.js';

export type { Redis, RedisClient };
export { redactUrl };

export interface RedisConnectionOptions {
  /** Shown in `CLIENT LIST` (e.g. `sluice:worker`). */
  name?: string;
  /**
   * BullMQ workers need `null` (commands wait for a reconnect rather than fail); producers and the
   * CLI prefer a bounded number so a dead Redis gives an error instead of a hang. Default 3.
   */
  maxRetriesPerRequest?: number | null;
  /**
   * A cluster client that finds none of the cluster's nodes answering gives up after about 20 s
   * (CLUSTER_GIVE_UP_ATTEMPTS): the commands it held fail, and the client is ended for good. For a
   * one-shot command (the CLI), which would otherwise wait for the cluster forever; a long-lived
   * process (server, worker, a producer in a service) keeps waiting for it. Default false.
   */
  giveUpOnClusterOutage?: boolean;
}

/**
 * A new ioredis client: a `Redis` for `redis://` and `rediss://`, a `Cluster` for
 * `redis+cluster://` and `rediss+cluster://` (see redis-url.ts). Whoever calls this owns it and
 * must `quit()` it.
 */
export function createRedisConnection(url: string, options: RedisConnectionOptions = {}): RedisClient {
  const common: RedisOptions = {
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 3 : options.maxRetriesPerRequest,
    connectionName: options.name,
    enableReadyCheck: true,
    // After `disconnect()`, ioredis waits this long for the socket's 'close' before destroying it;
    // a socket that never connected (refused) has closed already, and its timer would keep a CLI
    // process alive for the default 2 s.
    disconnectTimeout: 200,
  };
  const target = parseRedisUrl(url);
  const client = target.cluster
    ? new Cluster(
        target.seeds,
        clusterOptions(
          {
            ...common,
            ...(target.username ? { username: target.username } : {}),
            ...(target.password !== undefined ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
          },
          target.natMap,
          options.giveUpOnClusterOutage ?? false,
        ),
      )
    : new Redis(url, common);
  // Connection errors reach callers through the commands that fail (and BullMQ's own 'error'
  // events); without a listener ioredis would also print each reconnect attempt to the console.
  client.on('error', () => undefined);
  return client;
}

/**
 * How a cluster client rides out a failover or a slot's move: a command for a master that is down
 * waits, retried every 300 ms (CLUSTERDOWN, TRYAGAIN while a slot moves, and connection errors
 * that refresh the slots), instead of failing while a replica is promoted (~3 s with a node timeout
 * of 2 s); MOVED and ASK are followed. `maxRetriesPerRequest` bounds the retries as for one server.
 * With `givesUp` (the CLI), a cluster none of whose nodes answers is given up after about 20 s
 * (CLUSTER_GIVE_UP_ATTEMPTS): the commands held until then fail (an enqueue says what it wrote and
 * how to finish) instead of waiting for good.
 */
function clusterOptions(redisOptions: RedisOptions, natMap: ClusterOptions['natMap'], givesUp: boolean): ClusterOptions {
  return {
    redisOptions,
    ...(natMap && Object.keys(natMap).length > 0 ? { natMap } : {}),
    // TLS certificates name the host: keep the names the cluster gives, do not resolve them first.
    ...(redisOptions.tls
      ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) }
      : {}),
    // No ready check (CLUSTER INFO) on connect: a check that fails (cluster_state:fail, while a
    // master is down and before its replica is promoted) makes ioredis reconnect by itself but never
    // settle the promise connect() returned, and BullMQ awaits that promise when it makes its
    // blocking connection again: the shard's worker fetched nothing more, for good. Commands sent
    // meanwhile are retried on CLUSTERDOWN (retryDelayOnClusterDown) instead.
    enableReadyCheck: false,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 300,
    retryDelayOnMoved: 0,
    maxRedirections: 64,
    slotsRefreshTimeout: 2_000,
    // Seeds that are all down: try again, as a single server's client reconnects.
    clusterRetryStrategy: (times: number) => (givesUp && times > CLUSTER_GIVE_UP_ATTEMPTS ? null : Math.min(100 * times, 2_000)),
  };
}

/** Reconnections to a cluster none of whose nodes answers before a bounded client gives up: 100 ms, 200 ms, … 2 s, about 21 s in all. */
export const CLUSTER_GIVE_UP_ATTEMPTS = 20;

/** How long the start-up check waits for PING's answer by default. */
export const REACHABLE_TIMEOUT_MS = 2_000;

/**
 * Fails fast when Redis does not answer PING within `timeoutMs`, with the URL (password masked)
 * and the cause in the message: refused, unknown host, timed out, or connected but silent
 * (`REDIS_UNREACHABLE`); or credentials Redis refuses, WRONGPASS or NOAUTH (`REDIS_AUTH_FAILED`,
 * at once: waiting does not fix a password).
 */
export async function assertRedisReachable(redis: RedisClient, url: string, timeoutMs = REACHABLE_TIMEOUT_MS): Promise<void> {
  const timeout = new Error(`no answer within ${timeoutMs} ms`);
  let timer: NodeJS.Timeout | undefined;
  let lastError: unknown;
  let refuseCredentials: ((error: unknown) => void) | undefined;
  const onError = (raised: unknown): void => {
    // A cluster that cannot read its slots says why in the last node's error.
    const error = (raised as { lastNodeError?: unknown } | null)?.lastNodeError ?? raised;
    // ioredis also emits the wrapper the command fails with; the error before it names the cause.
    if (!(error instanceof Error && error.name === 'MaxRetriesPerRequestError')) lastError = error;
    if (/^(WRONGPASS|NOAUTH)/.test(errorMessage(error))) refuseCredentials?.(error);
  };
  redis.on('error', onError);
  // A cluster client emits each node's own errors apart (a wrong password is one).
  redis.on('node error', onError);
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
      tls: /^rediss[:+]/i.test(url),
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
    redis.off('node error', onError);
  }
}

/** Closes a client we own: QUIT, falling back to a hard disconnect when Redis is gone. */
export async function closeRedis(redis: RedisClient): Promise<void> {
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
