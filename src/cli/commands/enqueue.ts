import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { SluiceError, UsageError, errorMessage } from '../../errors.js';
import { parseOperation } from '../../operation/parse-operation.js';
import { createProducer, newBatchId, BATCH_ID } from '../../queue/producer.js';
import type { CliContext } from '../context.js';
import { createProgress } from '../progress.js';

export interface EnqueueCommandOptions {
  batch?: string;
  json?: boolean;
  dryRun?: boolean;
  skipInvalid?: boolean;
}

/** Problems printed in full; the rest are counted. */
const MAX_PRINTED_PROBLEMS = 50;

interface Scan {
  valid: number;
  invalid: number;
  invalidLines: Set<number>;
}

/**
 * `sluice enqueue FILE|-`: validate every line first (streaming; stdin is spooled to a temporary
 * file), then enqueue. With any invalid line nothing is enqueued and the exit code is 2, unless
 * `--skip-invalid`. Memory does not grow with the file.
 */
export async function enqueueCommand(ctx: CliContext, file: string, options: EnqueueCommandOptions): Promise<number> {
  const { io } = ctx;
  if (options.batch !== undefined && !BATCH_ID.test(options.batch)) {
    throw new UsageError(`--batch ${JSON.stringify(options.batch)}: use letters, digits and _ . : - (at most 128)`);
  }
  let spoolDir: string | undefined;
  try {
    let path = file;
    if (file !== '-') await assertReadable(file);
    if (file === '-') {
      spoolDir = await mkdtemp(join(tmpdir(), 'sluice-enqueue-'));
      path = join(spoolDir, 'stdin.jsonl');
    }
    const scan = await validateFile(ctx, file === '-' ? io.stdin : path, file === '-' ? path : undefined);
    const batchId = options.batch ?? newBatchId();

    if (scan.invalid > 0 && !options.skipInvalid) {
      io.stderr.write(`nothing enqueued: ${scan.invalid} of ${scan.valid + scan.invalid} lines are invalid (fix them, or pass --skip-invalid)\n`);
      if (options.json) writeJson(io.stdout, { batchId: null, enqueued: 0, duplicates: 0, invalid: scan.invalid });
      return 2;
    }
    if (options.dryRun) {
      if (options.json) writeJson(io.stdout, { batchId: null, enqueued: 0, duplicates: 0, invalid: scan.invalid, valid: scan.valid, dryRun: true });
      else io.stdout.write(`dry run: ${scan.valid} valid operations, ${scan.invalid} invalid; nothing enqueued\n`);
      return scan.invalid > 0 ? 2 : 0;
    }
    if (scan.valid === 0) {
      if (options.json) writeJson(io.stdout, { batchId: null, enqueued: 0, duplicates: 0, invalid: scan.invalid });
      else io.stderr.write('nothing to enqueue: the input has no operations\n');
      return scan.invalid > 0 ? 2 : 0;
    }

    const redis = await ctx.redis();
    const producer = createProducer({
      connection: redis,
      queue: ctx.queue,
      config: ctx.config,
      dedupWindowSeconds: ctx.env.SLUICE_DEDUP_WINDOW_SECONDS,
      batchRetentionSeconds: ctx.env.SLUICE_BATCH_RETENTION_SECONDS,
    });
    const progress = createProgress(io, { label: 'enqueue', total: scan.valid, quiet: Boolean(options.json) });
    try {
      const summary = await producer.enqueueMany(validOperations(path, scan.invalidLines, (n) => progress.update(n)), {
        batchId,
        collectResults: false,
      });
      progress.stop();
      const out = { batchId: summary.batchId, enqueued: summary.enqueued, duplicates: summary.duplicates, invalid: scan.invalid };
      if (options.json) writeJson(io.stdout, out);
      else {
        io.stdout.write(`enqueued ${out.enqueued} operations into batch ${out.batchId} (queue ${ctx.queue}; ${out.duplicates} duplicates, ${out.invalid} invalid skipped)\n`);
        const queueFlag = ctx.queue === ctx.env.SLUICE_QUEUE ? '' : ` --queue ${ctx.queue}`;
        io.stdout.write(`follow it with: sluice wait ${out.batchId}${queueFlag}\n`);
      }
      return scan.invalid > 0 ? 2 : 0;
    } finally {
      progress.stop();
      await producer.close();
    }
  } finally {
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  }
}

/** Pass 1: parse and validate each line, print problems as `line N: path: message`. */
async function validateFile(ctx: CliContext, source: string | NodeJS.ReadableStream, spoolTo: string | undefined): Promise<Scan> {
  const scan: Scan = { valid: 0, invalid: 0, invalidLines: new Set() };
  const input = typeof source === 'string' ? openFile(source) : source;
  const spool = spoolTo ? createWriteStream(spoolTo) : undefined;
  let lineNumber = 0;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNumber += 1;
    if (spool && !spool.write(`${line}\n`)) await once(spool, 'drain');
    if (line.trim() === '') continue;
    const problems = checkLine(ctx, line);
    if (problems.length === 0) {
      scan.valid += 1;
      continue;
    }
    scan.invalid += 1;
    scan.invalidLines.add(lineNumber);
    if (scan.invalid <= MAX_PRINTED_PROBLEMS) {
      for (const problem of problems) ctx.io.stderr.write(`line ${lineNumber}: ${problem}\n`);
    } else if (scan.invalid === MAX_PRINTED_PROBLEMS + 1) {
      ctx.io.stderr.write(`… more invalid lines follow; only the first ${MAX_PRINTED_PROBLEMS} are shown\n`);
    }
  }
  if (spool) {
    spool.end();
    await once(spool, 'close');
  }
  return scan;
}

function checkLine(ctx: CliContext, line: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return [`not valid JSON: ${errorMessage(error)}`];
  }
  const parsed = parseOperation(value, ctx.config);
  if (parsed.ok) return [];
  return parsed.issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message));
}

/** Pass 2: the valid lines again, as parsed JSON. */
async function* validOperations(path: string, skip: ReadonlySet<number>, onCount: (count: number) => void): AsyncGenerator<unknown> {
  let lineNumber = 0;
  let count = 0;
  for await (const line of createInterface({ input: openFile(path), crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNumber += 1;
    if (line.trim() === '' || skip.has(lineNumber)) continue;
    count += 1;
    if (count % 1_000 === 0) onCount(count);
    yield JSON.parse(line);
  }
  onCount(count);
}

function openFile(path: string): NodeJS.ReadableStream {
  return createReadStream(path);
}

async function assertReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    throw new SluiceError(`cannot read ${path}: ${errorMessage(error)}`, { code: 'INPUT_UNREADABLE', cause: error });
  }
}

function writeJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${JSON.stringify(value)}\n`);
}
