import { UsageError } from '../../errors.js';
import { createBatches, type Batches, waitForBatch, type BatchStatus } from '../../outcomes/batches.js';
import { redactUrl, type RedisClient } from '../../redis/connection.js';
import { answerWithin, isRedisUnavailable, outageReason } from '../../redis/unavailable.js';
import { sleep } from '../../support/sleep.js';
import type { CliContext } from '../context.js';
import { batchIdArgument } from '../batch-id.js';
import { createProgress, type Progress } from '../progress.js';
import { describeStatus, publicStatus, unknownBatch } from './batch.js';

/** Without --timeout, a wait gives up once Redis has not answered for this long. */
export const WAIT_OUTAGE_LIMIT_MS = 5 * 60_000;
/** While Redis does not answer, a line on stderr this often. */
const OUTAGE_NOTICE_MS = 10_000;

const seconds = (ms: number) => `${Math.round(ms / 1_000)} s`;

/**
 * What a wait says on stderr while Redis does not answer: once when it stops, every ten seconds
 * after, and when it answers again.
 */
function outageNotices(ctx: CliContext, batchId: string, giveUpAt: number) {
  const where = `Redis at ${redactUrl(ctx.env.REDIS_URL)}`;
  let noticedAt: number | undefined;
  return {
    down(error: unknown, downForMs: number) {
      const now = Date.now();
      if (noticedAt === undefined) {
        const until = Number.isFinite(giveUpAt)
          ? `until --timeout (${seconds(giveUpAt - now)} left)`
          : `for up to ${seconds(WAIT_OUTAGE_LIMIT_MS)}`;
        ctx.io.stderr.write(`sluice: ${where} is not answering (${outageReason(error)}); still waiting for batch ${batchId}, ${until}\n`);
      } else if (now - noticedAt >= OUTAGE_NOTICE_MS) {
        ctx.io.stderr.write(`sluice: ${where} still not answering after ${seconds(downForMs)}; retrying\n`);
      } else return;
      noticedAt = now;
    },
    up(downForMs: number) {
      if (noticedAt === undefined) return;
      noticedAt = undefined;
      ctx.io.stderr.write(`sluice: ${where} answers again after ${seconds(downForMs)}; waiting for batch ${batchId}\n`);
    },
    gaveUp(downForMs: number) {
      ctx.io.stderr.write(`sluice: gave up: ${where} did not answer for ${seconds(downForMs)} (exit 4)\n`);
    },
  };
}

/** The CLI's Redis client once it answers, trying until `giveUpAt`; undefined if it never did. */
async function connect(ctx: CliContext, giveUpAt: number, notices: ReturnType<typeof outageNotices>): Promise<RedisClient | undefined> {
  const since = Date.now();
  for (;;) {
    try {
      // Not past the deadline: each try may take the client's whole reconnect cycle.
      const redis = await answerWithin(ctx.redis(), Math.max(1_000, giveUpAt - Date.now()));
      notices.up(Date.now() - since);
      return redis;
    } catch (error) {
      if (!isRedisUnavailable(error)) throw error;
      notices.down(error, Date.now() - since);
      if (Date.now() >= giveUpAt) {
        notices.gaveUp(Date.now() - since);
        return undefined;
      }
      await sleep(Math.max(0, Math.min(1_000, giveUpAt - Date.now())));
    }
  }
}

/**
 * The batch's reader on the CLI's client as it is now: a cluster client that gave up on a cluster
 * gone quiet is ended, and the context makes a new one (context.ts), which the wait goes on with.
 */
function followingClient(ctx: CliContext, first: RedisClient): Pick<Batches, 'status'> {
  let client = first;
  let batches = createBatches(first, ctx.queue);
  return {
    async status(batchId) {
      const now = await ctx.redis();
      if (now !== client) {
        client = now;
        batches = createBatches(now, ctx.queue);
      }
      return batches.status(batchId);
    },
  };
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--timeout ${text}: expected a number of seconds above 0`);
  return value * 1_000;
}

/**
 * `sluice wait BATCH [--timeout S] [--json]`: 0 all succeeded, 1 any dead-lettered, 3 timeout,
 * 4 Redis did not answer (an outage is ridden out until --timeout, or for 5 minutes without one).
 */
export async function waitCommand(ctx: CliContext, batchId: string, options: { timeout?: string; json?: boolean }): Promise<number> {
  batchIdArgument('batch', batchId);
  const timeoutMs = parseTimeout(options.timeout);
  const started = Date.now();
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + timeoutMs;
  const notices = outageNotices(ctx, batchId, deadline);
  const redis = await connect(ctx, Math.min(deadline, started + WAIT_OUTAGE_LIMIT_MS), notices);
  if (!redis) return finish(ctx, batchId, undefined, { json: options.json, timedOut: Date.now() >= deadline, unreachable: true });

  let progress: Progress | undefined;
  let seen = false;
  let downFor = 0;
  const { status, timedOut, unreachable } = await waitForBatch(followingClient(ctx, redis), batchId, {
    ...(timeoutMs !== undefined ? { timeoutMs: Math.max(0, deadline - Date.now()) } : { outageLimitMs: WAIT_OUTAGE_LIMIT_MS }),
    onUpdate: (s) => {
      seen = true;
      progress ??= createProgress(ctx.io, { label: batchId, total: s.total, quiet: Boolean(options.json) });
      progress.update(s.succeeded + s.deadLettered, { total: s.total, detail: s.deadLettered ? `(${s.deadLettered} dead-lettered)` : '' });
    },
    onUnavailable: (error, downForMs) => {
      downFor = downForMs;
      notices.down(error, downForMs);
    },
    onRecovered: (downForMs) => notices.up(downForMs),
  });
  progress?.stop();
  if (unreachable) notices.gaveUp(downFor);
  if (!status && !unreachable) {
    // Seen before, gone now: Redis came back without its data.
    if (seen) ctx.io.stderr.write(`batch ${batchId} is gone from Redis (did it restart without its data?)\n`);
    return unknownBatch(ctx, batchId);
  }
  return finish(ctx, batchId, status, { json: options.json, timedOut, unreachable });
}

function finish(
  ctx: CliContext,
  batchId: string,
  status: BatchStatus | undefined,
  how: { json: boolean | undefined; timedOut: boolean; unreachable: boolean },
): number {
  const { json, timedOut, unreachable } = how;
  if (json)
    ctx.io.stdout.write(
      `${JSON.stringify({ batchId, ...(status ? publicStatus(status) : {}), timedOut, redisUnreachable: unreachable })}\n`,
    );
  else if (status)
    ctx.io.stdout.write(`${describeStatus(status)}${unreachable ? ' — Redis not answering' : timedOut ? ' — timed out' : ''}\n`);
  if (unreachable) return 4;
  if (timedOut) return 3;
  if (status!.deadLettered > 0) {
    if (!json) ctx.io.stdout.write(`see what failed: sluice results ${batchId} --failed   (or: sluice dlq list --batch ${batchId})\n`);
    return 1;
  }
  return 0;
}
