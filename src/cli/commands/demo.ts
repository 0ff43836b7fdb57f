import { UsageError } from '../../errors.js';
import { runDemo } from '../../demo/run-demo.js';
import type { CliContext } from '../context.js';
import { createProgress, type Progress } from '../progress.js';

/** `sluice demo [--operations N]`: see `runDemo`. Exit 0 when every record was created exactly once. */
export async function demoCommand(ctx: CliContext, options: { operations?: string }): Promise<number> {
  const operations = options.operations === undefined ? 3_000 : Number(options.operations);
  if (!Number.isInteger(operations) || operations < 10 || operations > 1_000_000) {
    throw new UsageError(`--operations ${options.operations}: expected a whole number from 10 to 1000000`);
  }
  const out = ctx.io.stdout;
  let progress: Progress | undefined;
  const summary = await runDemo({
    ...(ctx.io.env['REDIS_URL'] ? { redisUrl: ctx.env.REDIS_URL } : {}),
    operations,
    out,
    env: ctx.io.env,
    onProgress(status) {
      progress ??= createProgress(ctx.io, { label: 'demo batch', total: status.total, plainIntervalMs: 2_000 });
      progress.update(status.succeeded + status.deadLettered, { total: status.total });
    },
  });
  progress?.stop();
  const { batch } = summary;
  const exact = summary.created === summary.expectedCreated;
  out.write(
    [
      '',
      'sluice demo summary',
      `  operations      ${batch.total}`,
      `  succeeded       ${batch.succeeded}`,
      `  retried         ${batch.retries} attempts (503s from the demo API, retried with backoff / Retry-After)`,
      `  dead-lettered   ${batch.deadLettered} (GETs of records that do not exist: 404 is permanent, never retried)`,
      `  requests        ${summary.requests} in ${summary.seconds.toFixed(1)} s = ${summary.requestsPerSecond.toFixed(0)} requests/s (limit ${summary.limit}/s shared by both workers; ${summary.rejectedByApiLimit} refused by the API's own limit)`,
      `  records created ${summary.created} of ${summary.expectedCreated} POSTs — ${exact ? 'each exactly once, thanks to idempotency keys' : 'MISMATCH'}`,
      '',
      'Next: write your own operations as JSONL and run `sluice enqueue FILE`, `sluice worker`, `sluice wait BATCH` (see README.md, "A 5-minute tour").',
      '',
    ].join('\n'),
  );
  return exact ? 0 : 1;
}
