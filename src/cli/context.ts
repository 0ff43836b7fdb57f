import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { QUEUE_NAME, parseEnv, type Env } from '../config/env.js';
import { UsageError } from '../errors.js';
import { EMPTY_CONFIG, loadSluiceConfig, type SluiceConfig } from '../config/sluice-config.js';
import { assertRedisReachable, closeRedis, createRedisConnection, type RedisClient } from '../redis/connection.js';
import { isClusterUrl } from '../redis/redis-url.js';
import type { OperationRules } from '../operation/parse-operation.js';

/** Where the CLI writes; tests pass their own streams. */
export interface CliIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  cwd: string;
}

export interface GlobalOptions {
  config?: string;
  queue?: string;
}

/** What every command gets: parsed environment, the config file, the queue, and a lazy Redis client. */
export interface CliContext {
  io: CliIo;
  env: Env;
  config: SluiceConfig;
  configPath: string | undefined;
  queue: string;
  /**
   * Aborted once stdout fails: its reader went away (`sluice results B | head -1`). Commands that
   * stream stop reading then (see output.ts).
   */
  stdoutClosed: AbortSignal;
  /** The CLI's Redis client, checked to answer on first use. */
  redis(): Promise<RedisClient>;
  close(): Promise<void>;
}

export const DEFAULT_CONFIG_FILE = 'sluice.config.json';

/** `--config`, else `SLUICE_CONFIG`, else `./sluice.config.json` when present, else no targets. */
export function configPathFrom(io: CliIo, explicit: string | undefined, env: Env): string | undefined {
  if (explicit) return explicit;
  if (env.SLUICE_CONFIG) return env.SLUICE_CONFIG;
  const local = `${io.cwd}/${DEFAULT_CONFIG_FILE}`;
  return existsSync(local) ? local : undefined;
}

export async function createCliContext(
  io: CliIo,
  options: GlobalOptions,
  stdoutClosed: AbortSignal = new AbortController().signal,
): Promise<CliContext> {
  const env = parseEnv(io.env);
  if (options.queue !== undefined && !QUEUE_NAME.test(options.queue)) {
    throw new UsageError(`--queue ${JSON.stringify(options.queue)}: use letters, digits, _ . - (at most 100)`);
  }
  const configPath = configPathFrom(io, options.config, env);
  const config = configPath ? await loadSluiceConfig(configPath) : EMPTY_CONFIG;
  let redis: RedisClient | undefined;
  let reachable: Promise<void> | undefined;
  return {
    io,
    env,
    config,
    configPath,
    queue: options.queue ?? env.SLUICE_QUEUE,
    stdoutClosed,
    async redis() {
      // A cluster client that gave up on a cluster gone quiet (see connection.ts) is ended: `wait`,
      // which rides out an outage, asks again with a new one.
      if (redis?.status === 'end') {
        redis = undefined;
        reachable = undefined;
      }
      redis ??= createRedisConnection(env.REDIS_URL, { name: 'sluice:cli', giveUpOnClusterOutage: true });
      // A failed check is not kept: `wait` asks again until Redis answers.
      reachable ??= assertRedisReachable(redis, env.REDIS_URL).catch((error: unknown) => {
        reachable = undefined;
        throw error;
      });
      await reachable;
      return redis;
    },
    async close() {
      if (redis) await closeRedis(redis);
    },
  };
}

/** What operations must also satisfy on the Redis that REDIS_URL names (one limit group on a cluster), known before connecting. */
export function operationRules(ctx: CliContext): OperationRules {
  return { oneLimitGroup: isClusterUrl(ctx.env.REDIS_URL) };
}
