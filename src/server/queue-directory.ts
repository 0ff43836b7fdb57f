import type { RedisClient } from '../redis/client.js';
import { discoverQueues } from '../queue/discover-queues.js';

export interface QueueDirectoryOptions {
  /** Borrowed. */
  redis: RedisClient;
  /** Always listed, first, even before it holds a job. */
  defaultQueue: string;
  /** How long a discovery is reused. Default 30,000 ms; 0 discovers on every call. */
  refreshMs?: number;
  /** Queues listed at most (the default queue included). Default 50. */
  limit?: number;
}

export interface QueueDirectory {
  /** The server's default queue, then every other sluice queue in Redis, sorted. */
  names(): Promise<string[]>;
}

/**
 * The queues the dashboards show. Discovery SCANs the whole keyspace (see discoverQueues), so its
 * answer is reused for `refreshMs` and shared by concurrent callers: a new queue shows up within
 * that time, and many viewers polling cost one SCAN walk per period, not one per request.
 */
export function createQueueDirectory(options: QueueDirectoryOptions): QueueDirectory {
  const refreshMs = options.refreshMs ?? 30_000;
  const limit = options.limit ?? 50;
  let listed: { names: Promise<string[]>; at: number } | undefined;

  function names(): Promise<string[]> {
    if (!listed || Date.now() - listed.at >= refreshMs) {
      const found = discoverQueues(options.redis, { limit }).then((discovered) =>
        [options.defaultQueue, ...discovered.filter((name) => name !== options.defaultQueue)].slice(0, limit),
      );
      const entry = { names: found, at: Date.now() };
      listed = entry;
      // A failed discovery is tried again on the next call rather than remembered.
      found.catch(() => {
        if (listed === entry) listed = undefined;
      });
    }
    return listed.names;
  }

  return { names };
}
