import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { UsageError } from '../../errors.js';
import { createBatches, waitForBatch, type BatchStatus } from '../../outcomes/batches.js';
import { batchIdArgument } from '../batch-id.js';
import type { CliContext } from '../context.js';
import { createProgress } from '../progress.js';
import { writeResultsCsv } from '../results-csv.js';

export function describeStatus(status: BatchStatus): string {
  const duplicates = status.duplicates > 0 ? `; ${status.duplicates} duplicates not run (see sluice results)` : '';
  return `batch ${status.batchId}: ${status.total} total, ${status.succeeded} succeeded, ${status.deadLettered} dead-lettered, ${status.pending} pending (${status.retries} retried attempts${duplicates})`;
}

function publicStatus(status: BatchStatus) {
  const { batchId, total, succeeded, deadLettered, pending, duplicates, retries, enqueuing } = status;
  return { batchId, total, succeeded, deadLettered, pending, duplicates, retries, enqueuing };
}

function unknownBatch(ctx: CliContext, batchId: string): number {
  ctx.io.stderr.write(
    `no batch ${JSON.stringify(batchId)} in queue ${ctx.queue} (wrong --queue, a typo, or it expired after SLUICE_BATCH_RETENTION_SECONDS)\n`,
  );
  return 2;
}

/** `sluice status BATCH [--json]` */
export async function statusCommand(ctx: CliContext, batchId: string, options: { json?: boolean }): Promise<number> {
  batchIdArgument('batch', batchId);
  const status = await createBatches(await ctx.redis(), ctx.queue).status(batchId);
  if (!status) return unknownBatch(ctx, batchId);
  ctx.io.stdout.write(options.json ? `${JSON.stringify(publicStatus(status))}\n` : `${describeStatus(status)}\n`);
  return 0;
}

/** `sluice wait BATCH [--timeout S] [--json]`: 0 all succeeded, 1 any dead-lettered, 3 timeout. */
export async function waitCommand(ctx: CliContext, batchId: string, options: { timeout?: string; json?: boolean }): Promise<number> {
  batchIdArgument('batch', batchId);
  let timeoutMs: number | undefined;
  if (options.timeout !== undefined) {
    const seconds = Number(options.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new UsageError(`--timeout ${options.timeout}: expected a number of seconds above 0`);
    timeoutMs = seconds * 1_000;
  }
  const batches = createBatches(await ctx.redis(), ctx.queue);
  const first = await batches.status(batchId);
  if (!first) return unknownBatch(ctx, batchId);
  const progress = createProgress(ctx.io, { label: batchId, total: first.total, quiet: Boolean(options.json) });
  const { status, timedOut } = await waitForBatch(batches, batchId, {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    onUpdate: (s) =>
      progress.update(s.succeeded + s.deadLettered, { total: s.total, detail: s.deadLettered ? `(${s.deadLettered} dead-lettered)` : '' }),
  });
  progress.stop();
  if (!status) return unknownBatch(ctx, batchId);
  if (options.json) ctx.io.stdout.write(`${JSON.stringify({ ...publicStatus(status), timedOut })}\n`);
  else ctx.io.stdout.write(`${describeStatus(status)}${timedOut ? ' — timed out' : ''}\n`);
  if (timedOut) return 3;
  if (status.deadLettered > 0) {
    if (!options.json)
      ctx.io.stdout.write(`see what failed: sluice results ${batchId} --failed   (or: sluice dlq list --batch ${batchId})\n`);
    return 1;
  }
  return 0;
}

/** `sluice results BATCH [--format jsonl|csv] [--failed] [--out FILE]`: one JSON line (or CSV row) per finished operation. */
export async function resultsCommand(
  ctx: CliContext,
  batchId: string,
  options: { failed?: boolean; out?: string; format?: string },
): Promise<number> {
  batchIdArgument('batch', batchId);
  const format = options.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format ${JSON.stringify(format)}: expected jsonl or csv`);
  const batches = createBatches(await ctx.redis(), ctx.queue);
  if (!(await batches.status(batchId))) return unknownBatch(ctx, batchId);
  const temporary = options.out ? `${options.out}.${process.pid}.tmp` : undefined;
  const out = temporary ? createWriteStream(temporary) : ctx.io.stdout;
  let count = 0;
  try {
    const results = batches.results(batchId, { failed: options.failed ?? false });
    if (format === 'csv') count = await writeResultsCsv(results, out);
    else {
      for await (const line of results) {
        if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
        count += 1;
      }
    }
    if (temporary && options.out) {
      out.end();
      await once(out, 'close');
      await rename(temporary, options.out);
      ctx.io.stderr.write(`wrote ${count} results to ${options.out}\n`);
    }
  } catch (error) {
    if (temporary) await rm(temporary, { force: true });
    throw error;
  }
  return 0;
}
