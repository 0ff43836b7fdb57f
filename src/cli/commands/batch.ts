import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { SluiceError, UsageError, errorMessage } from '../../errors.js';
import { createBatches, type BatchStatus } from '../../outcomes/batches.js';
import { batchIdArgument } from '../batch-id.js';
import type { CliContext } from '../context.js';
import { writeChunk } from '../output.js';
import { writeResultsCsv } from '../results-csv.js';

export function describeStatus(status: BatchStatus): string {
  const duplicates = status.duplicates > 0 ? `; ${status.duplicates} duplicates not run (see sluice results)` : '';
  return `batch ${status.batchId}: ${status.total} total, ${status.succeeded} succeeded, ${status.deadLettered} dead-lettered, ${status.pending} pending (${status.retries} retried attempts${duplicates})`;
}

export function publicStatus(status: BatchStatus) {
  const { batchId, total, succeeded, deadLettered, pending, duplicates, retries, enqueuing } = status;
  return { batchId, total, succeeded, deadLettered, pending, duplicates, retries, enqueuing };
}

export function unknownBatch(ctx: CliContext, batchId: string): number {
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
  const out = temporary ? await openOutput(options.out!, temporary) : ctx.io.stdout;
  // Once stdout's reader goes away (`| head -1`) the loop ends, and with it the HSCAN of the batch.
  const closed = temporary ? new AbortController().signal : ctx.stdoutClosed;
  let count = 0;
  try {
    const results = batches.results(batchId, { failed: options.failed ?? false });
    if (format === 'csv') count = await writeResultsCsv(results, out, closed);
    else {
      for await (const line of results) {
        await writeChunk(out, `${JSON.stringify(line)}\n`, closed);
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

/**
 * The file `--out` is written through (`temporary`, renamed to `out` once complete), opened before
 * anything is read: a path that cannot be written (no such directory, no permission) is the user's
 * to fix, named as given (exit 2).
 */
async function openOutput(out: string, temporary: string): Promise<WriteStream> {
  const stream = createWriteStream(temporary);
  try {
    await once(stream, 'open');
    return stream;
  } catch (error) {
    const reason = (error as { code?: unknown }).code === 'ENOENT' ? 'no such directory' : errorMessage(error);
    throw new SluiceError(`cannot write ${out}: ${reason}`, { code: 'OUTPUT_UNWRITABLE', cause: error });
  }
}
