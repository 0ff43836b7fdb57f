import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../src/support/redis-server.js';
import { closeRedis, createRedisConnection, type Redis, type RedisClient } from '../../src/redis/connection.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export interface TestRedis {
  /** The redis-server of this test file (started in beforeAll, stopped in afterAll). */
  server: RedisServerHandle;
  url: string;
  /** A client for assertions; closed in afterAll. */
  client: Redis;
}

/**
 * Starts a private redis-server for the calling test file. Use the returned getter inside tests:
 * `const redis = useRedisServer(); ... redis().url`.
 */
export function useRedisServer(): () => TestRedis {
  let state: TestRedis | undefined;
  beforeAll(async () => {
    const server = await startRedisServer();
    // One server (redis://): a Redis, not a Cluster.
    state = { server, url: server.url, client: createRedisConnection(server.url, { name: 'test' }) as Redis };
  });
  afterAll(async () => {
    if (!state) return;
    await closeRedis(state.client);
    await state.server.stop();
  });
  return () => {
    if (!state) throw new Error('useRedisServer(): the server is not started yet (use it inside a test or hook)');
    return state;
  };
}

/** A queue name no other test uses. */
export function uniqueQueue(prefix = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A logger that writes nothing unless TEST_LOG_LEVEL is set. */
export function testLogger(): Logger {
  return createLogger({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
}

/** Polls `check` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'a condition'}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/**
 * Operations waiting to start in a queue: in BullMQ's wait list (jobs back from a deferral or a
 * retry) and its prioritized set (jobs not yet started; see NEW_JOB_PRIORITY).
 */
/** The operations not started yet (waiting or prioritized), a lane counting each of its operations. */
export async function queuedOperations(client: RedisClient, queue: string): Promise<number> {
  return (await queuedEnvelopes(client, queue)).length;
}

/** The data of each operation not started yet (waiting or prioritized): a job's, or each of a lane's (see queue/lanes.ts). */
export async function queuedEnvelopes(
  client: RedisClient,
  queue: string,
): Promise<{ op: unknown; opId?: string; idempotencyKey?: string }[]> {
  const base = `sluice:{${queue}}`;
  const ids = [...(await client.lrange(`${base}:wait`, 0, -1)), ...(await client.zrange(`${base}:prioritized`, 0, -1))];
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hmget(`${base}:${id}`, 'name', 'data');
  const envelopes: { op: unknown }[] = [];
  for (const [error, reply] of (await pipeline.exec()) ?? []) {
    if (error) throw error;
    const [name, data] = reply as [string | null, string | null];
    const parsed = JSON.parse(data ?? 'null') as { ops?: ({ op: unknown } | null)[]; op?: unknown };
    // A lane's empty places (duplicates left out at enqueue) hold no operation.
    if (name === 'lane') {
      for (const item of parsed.ops!) if (item) envelopes.push(item);
    } else envelopes.push(parsed as { op: unknown });
  }
  return envelopes;
}
