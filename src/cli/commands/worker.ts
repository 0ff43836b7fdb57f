import { UsageError } from '../../errors.js';
import { createLogger } from '../../observability/logger.js';
import { assertRedisReachable, closeRedis, createRedisConnection, redactUrl } from '../../redis/connection.js';
import { createSluiceWorker } from '../../worker/sluice-worker.js';
import type { CliContext } from '../context.js';

/**
 * `sluice worker [--queue Q] [--concurrency N]`: a worker process. This is a composition root: it
 * owns its Redis connection and installs the signal handlers. First SIGTERM/SIGINT: stop taking
 * jobs, let in-flight ones finish up to SLUICE_SHUTDOWN_TIMEOUT_MS, requeue the rest, exit 0.
 * A second signal aborts in-flight jobs at once (they are requeued too).
 */
export async function workerCommand(ctx: CliContext, options: { concurrency?: string }): Promise<number> {
  const concurrency = options.concurrency === undefined ? ctx.env.SLUICE_CONCURRENCY : Number(options.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 5_000) {
    throw new UsageError(`--concurrency ${options.concurrency}: expected a whole number from 1 to 5000`);
  }
  const { env } = ctx;
  const logger = createLogger({ level: env.LOG_LEVEL, base: { service: 'sluice-worker' } });
  const redis = createRedisConnection(env.REDIS_URL, { name: 'sluice:worker', maxRetriesPerRequest: null });
  try {
    await assertRedisReachable(redis, env.REDIS_URL);
    const worker = createSluiceWorker({
      connection: redis,
      logger,
      queue: ctx.queue,
      config: ctx.config,
      // Targets' secrets (auth *FromEnv) are read from this process's environment, and only here.
      env: process.env,
      concurrency,
      shutdownTimeoutMs: env.SLUICE_SHUTDOWN_TIMEOUT_MS,
      keepCompletedSeconds: env.SLUICE_KEEP_COMPLETED_SECONDS,
      keepFailedSeconds: env.SLUICE_KEEP_FAILED_SECONDS,
      batchRetentionSeconds: env.SLUICE_BATCH_RETENTION_SECONDS,
      dedupWindowSeconds: env.SLUICE_DEDUP_WINDOW_SECONDS,
      lanes: env.SLUICE_LANES === 'on',
      laneSize: env.SLUICE_LANE_SIZE,
      resultMaxBytes: env.SLUICE_RESULT_MAX_BYTES,
      maxResponseBytes: env.SLUICE_MAX_RESPONSE_BYTES,
      lockDurationMs: env.SLUICE_LOCK_DURATION_MS,
      stalledIntervalMs: env.SLUICE_STALLED_INTERVAL_MS,
      // Published to Redis for `sluice server`'s /metrics; 0 turns it off.
      metrics: env.SLUICE_METRICS_INTERVAL_MS > 0,
      metricsIntervalMs: env.SLUICE_METRICS_INTERVAL_MS || 5_000,
      processMetrics: env.SLUICE_PROCESS_METRICS === 'true',
    });
    const stopped = new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals += 1;
        logger.info({ signal }, signals === 1 ? 'shutdown requested' : 'second signal: aborting in-flight jobs');
        if (signals === 2) {
          // Forced: in-flight jobs are requeued at once; if something still hangs (Redis gone), exit anyway.
          setTimeout(() => {
            logger.error('forced shutdown did not finish in 5 s; exiting');
            logger.flush();
            process.exit(1);
          }, 5_000).unref();
        }
        worker.close({ force: signals > 1 }).then(resolve, (error: unknown) => {
          logger.error({ err: error }, 'error during shutdown');
          resolve();
        });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    await worker.ready();
    logger.info(
      {
        queue: ctx.queue,
        concurrency,
        redis: redactUrl(env.REDIS_URL),
        config: ctx.configPath ?? null,
        targets: Object.keys(ctx.config.targets),
      },
      'worker started',
    );
    await stopped;
    return 0;
  } finally {
    await closeRedis(redis);
    logger.flush();
  }
}
