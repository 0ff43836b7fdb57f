import { ConfigError, SluiceError, UsageError, errorMessage } from '../../errors.js';
import { createLogger } from '../../observability/logger.js';
import { assertRedisReachable, closeRedis, createRedisConnection, redactUrl } from '../../redis/connection.js';
import { parseApiTokens } from '../../server/api-tokens.js';
import { buildServer } from '../../server/build-server.js';
import { createFleetMetrics } from '../../observability/fleet-metrics.js';
import { discoverQueues } from '../../queue/discover-queues.js';
import { packageVersion } from '../../support/package-root.js';
import type { CliContext } from '../context.js';

/** On SIGTERM, requests in flight get this long to finish. */
const CLOSE_DEADLINE_MS = 10_000;

export interface ServerCommandOptions {
  port?: string;
  host?: string;
}

/**
 * `sluice server [--port N] [--host H]`: the HTTP API (and dashboard, metrics). A composition root:
 * it owns its Redis connection, listens, and on SIGTERM/SIGINT stops taking requests, lets those in
 * flight finish, and exits 0.
 */
export async function serverCommand(ctx: CliContext, options: ServerCommandOptions): Promise<number> {
  const { env } = ctx;
  const port = options.port === undefined ? env.SLUICE_SERVER_PORT : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`--port ${options.port}: expected a port number from 0 to 65535`);
  const host = options.host ?? env.SLUICE_SERVER_HOST;
  // Before anything is opened: a server without valid tokens refuses to start.
  const tokens = parseApiTokens(env.SLUICE_API_TOKENS);
  if (env.SLUICE_API_REQUEST_TIMEOUT_MS > 0 && env.SLUICE_API_HEADERS_TIMEOUT_MS > env.SLUICE_API_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('the environment', [
      {
        path: 'SLUICE_API_HEADERS_TIMEOUT_MS',
        message: `must not be larger than SLUICE_API_REQUEST_TIMEOUT_MS (${env.SLUICE_API_REQUEST_TIMEOUT_MS})`,
      },
    ]);
  }
  const logger = createLogger({ level: env.LOG_LEVEL, base: { service: 'sluice-server' } });
  const redis = createRedisConnection(env.REDIS_URL, { name: 'sluice:server' });
  try {
    await assertRedisReachable(redis, env.REDIS_URL);
    // /metrics: every worker's published counters, and the queues' and limiters' state at scrape time.
    const metrics = createFleetMetrics({
      redis,
      config: ctx.config,
      queues: () => discoverQueues(redis),
      processMetrics: ctx.env.SLUICE_PROCESS_METRICS === 'true',
    });
    const app = await buildServer({
      redis,
      tokens,
      logger,
      config: ctx.config,
      queue: ctx.queue,
      bodyLimitBytes: env.SLUICE_API_MAX_BODY_BYTES,
      headersTimeoutMs: env.SLUICE_API_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: env.SLUICE_API_REQUEST_TIMEOUT_MS,
      sessionIdleSeconds: env.SLUICE_SESSION_IDLE_SECONDS,
      sessionMaxSeconds: env.SLUICE_SESSION_MAX_SECONDS,
      ...(env.SLUICE_TRUST_PROXY !== undefined ? { trustProxy: trustProxy(env.SLUICE_TRUST_PROXY) } : {}),
      dedupWindowSeconds: env.SLUICE_DEDUP_WINDOW_SECONDS,
      lanes: env.SLUICE_LANES === 'on',
      laneSize: env.SLUICE_LANE_SIZE,
      replicas: { count: env.SLUICE_ENQUEUE_REPLICAS, timeoutMs: env.SLUICE_ENQUEUE_REPLICAS_TIMEOUT_MS },
      batchRetentionSeconds: env.SLUICE_BATCH_RETENTION_SECONDS,
      version: packageVersion(),
      metrics,
    });
    app.addHook('onClose', () => metrics.close());
    const stopped = new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        logger.info({ signal, deadlineMs: CLOSE_DEADLINE_MS }, 'shutdown requested: finishing requests in flight');
        // Requests still running at the deadline (a slow upload, a slow reader of results) are cut off.
        const timer = setTimeout(() => {
          logger.warn('shutdown deadline reached: closing the connections still open');
          app.server.closeAllConnections();
        }, CLOSE_DEADLINE_MS);
        app
          .close()
          .catch((error: unknown) => logger.error({ err: error }, 'error during shutdown'))
          .finally(() => {
            clearTimeout(timer);
            resolve();
          });
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    let address: string;
    try {
      address = await app.listen({ port, host });
    } catch (error) {
      await app.close();
      throw new SluiceError(`cannot listen on ${host}:${port}: ${errorMessage(error)}`, { code: 'LISTEN_FAILED', cause: error });
    }
    logger.info(
      { address, queue: ctx.queue, redis: redactUrl(env.REDIS_URL), tokens: tokens.count, config: ctx.configPath ?? null },
      'server listening',
    );
    await stopped;
    logger.info('server stopped');
    return 0;
  } finally {
    await closeRedis(redis);
    logger.flush();
  }
}

/** SLUICE_TRUST_PROXY (checked by the env schema): `true`, a hop count, or addresses and CIDRs. */
function trustProxy(text: string): boolean | number | string[] {
  if (text === 'true') return true;
  if (/^\d+$/.test(text)) return Number(text);
  return text.split(',').map((part) => part.trim());
}
