import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { access, constants, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { EnqueueIncompleteError, SluiceError, UsageError, errorMessage } from '../../errors.js';
import { parseOperation, type OperationRules } from '../../operation/parse-operation.js';
import { createProducer } from '../../queue/producer.js';
import { batchIdArgument } from '../batch-id.js';
import { DEFAULT_CONFIG_FILE, operationRules, type CliContext } from '../context.js';
import { createCsvSource } from '../csv-source.js';
import { createJsonlSource, type InputRecord, type InputSource } from '../input-source.js';
import { createProgress, type Progress } from '../progress.js';
import { flatten, mapBatches } from '../../support/batches.js';

export interface EnqueueCommandOptions {
  batch?: string;
  json?: boolean;
  dryRun?: boolean;
  skipInvalid?: boolean;
  /** An operation JSON file with `{{column}}` placeholders: the input is CSV, one operation per row. */
  template?: string;
  /** `csv` or `jsonl`; default by extension (`.csv`), and `csv` for stdin with a template. */
  format?: string;
}

type InputFormat = 'csv' | 'jsonl';

/** Problems printed in full; the rest are counted. */
const MAX_PRINTED_PROBLEMS = 50;

interface Scan {
  valid: number;
  invalid: number;
  invalidLines: Set<number>;
  /** Where reading stopped on input that cannot be read further (a malformed CSV). */
  stoppedAt?: string;
}

/**
 * `sluice enqueue FILE|- [--template OP.json]`: validate every line (JSONL) or row (CSV through a
 * template) first, streaming (stdin is spooled to a temporary file first), then enqueue. With any
 * invalid one nothing is enqueued and the exit code is 2, unless `--skip-invalid`. Memory does not
 * grow with the file.
 */
export async function enqueueCommand(ctx: CliContext, file: string, options: EnqueueCommandOptions): Promise<number> {
  const { io } = ctx;
  if (options.batch !== undefined) batchIdArgument('--batch', options.batch);
  const format = inputFormat(file, options);
  // inputFormat() made sure CSV comes with a template.
  const template = format === 'csv' ? await readTemplate(options.template!) : undefined;
  let spoolDir: string | undefined;
  try {
    let path = file;
    if (file !== '-') await assertReadable(file);
    // Read twice, so what can be read only once is kept first: stdin, and a pipe given by name
    // (`sluice enqueue <(jq -c … data.json)`), whose second read would find nothing.
    const once = file === '-' || !(await stat(file)).isFile();
    if (once) {
      spoolDir = await mkdtemp(join(tmpdir(), 'sluice-enqueue-'));
      path = join(spoolDir, `input.${format}`);
      await pipeline(file === '-' ? io.stdin : createReadStream(file), createWriteStream(path));
    }
    const source = template
      ? createCsvSource(path, { name: file === '-' ? 'stdin' : file, template: template.value, templateName: template.name })
      : createJsonlSource(path);
    const checked = await stat(path);
    const scan = await validateInput(ctx, source, { totalBytes: checked.size, quiet: Boolean(options.json) });
    await assertUnchanged(file, path, checked);
    // What --json prints when nothing is written: no batch was opened.
    const nothingEnqueued = { batchId: null, enqueued: 0, duplicates: 0, alreadyEnqueued: 0, invalid: scan.invalid };

    if (scan.stoppedAt !== undefined) {
      io.stderr.write(
        `nothing enqueued: reading stopped at ${scan.stoppedAt}, which is not valid CSV (fix it; --skip-invalid cannot skip it)\n`,
      );
      if (options.json) writeJson(io.stdout, nothingEnqueued);
      return 2;
    }
    if (scan.invalid > 0 && !options.skipInvalid) {
      io.stderr.write(
        `nothing enqueued: ${scan.invalid} of ${scan.valid + scan.invalid} ${source.unit} are invalid (fix them, or pass --skip-invalid)\n`,
      );
      if (options.json) writeJson(io.stdout, nothingEnqueued);
      return 2;
    }
    if (options.dryRun) {
      if (options.json) writeJson(io.stdout, { ...nothingEnqueued, valid: scan.valid, dryRun: true });
      else io.stdout.write(`dry run: ${scan.valid} valid operations, ${scan.invalid} invalid; nothing enqueued\n`);
      return scan.invalid > 0 ? 2 : 0;
    }
    if (scan.valid === 0) {
      if (options.json) writeJson(io.stdout, nothingEnqueued);
      else io.stderr.write('nothing to enqueue: the input has no operations\n');
      return scan.invalid > 0 ? 2 : 0;
    }

    return await enqueueValid(ctx, { file, source, scan, options, once, changed: () => assertUnchanged(file, path, checked) });
  } finally {
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  }
}

interface ValidInput {
  file: string;
  /** The input could be read only once (stdin, a pipe): it was kept in a file for both passes. */
  once: boolean;
  /** Throws when the input is not the one pass 1 checked (a file changed or replaced since). */
  changed: () => Promise<void>;
  source: InputSource;
  scan: Scan;
  options: EnqueueCommandOptions;
}

/**
 * Pass 2: enqueue the valid records. Operations without an idempotency key get job ids from their
 * line and content, so after a failure part-way the same command with the same --batch adds only
 * what is missing.
 */
async function enqueueValid(ctx: CliContext, input: ValidInput): Promise<number> {
  const { io } = ctx;
  const { source, scan, options } = input;
  const redis = await ctx.redis();
  const producer = createProducer({
    connection: redis,
    queue: ctx.queue,
    config: ctx.config,
    dedupWindowSeconds: ctx.env.SLUICE_DEDUP_WINDOW_SECONDS,
    batchRetentionSeconds: ctx.env.SLUICE_BATCH_RETENTION_SECONDS,
    lanes: ctx.env.SLUICE_LANES === 'on',
    laneSize: ctx.env.SLUICE_LANE_SIZE,
    replicas: { count: ctx.env.SLUICE_ENQUEUE_REPLICAS, timeoutMs: ctx.env.SLUICE_ENQUEUE_REPLICAS_TIMEOUT_MS },
  });
  // Shown once the batch is open, under the line that names it (the producer makes a new batch's id).
  let progress: Progress | undefined;
  // Each operation's line, taken out as the producer prepares it (right after it is read), so the
  // map holds about a read's worth; a WeakMap of every operation cost each garbage collection more.
  const lines = new Map<object, number>();
  try {
    const summary = await producer.enqueueMany(validOperations(source, scan.invalidLines, lines), {
      // What is in Redis, not what was read (reading runs a chunk ahead).
      onWritten: (written) => progress?.update(written),
      // A long enqueue interrupted (Ctrl-C, a lost terminal) is finished with this command: without it
      // the same file enqueued again would go into a new batch, and every line written be sent twice.
      onOpened: (id) => {
        if (!options.json) io.stderr.write(`batch ${id}: should this enqueue stop, finish it with ${resumeCommand(ctx, input, id)}\n`);
        progress = createProgress(io, { label: 'enqueue', total: scan.valid, quiet: Boolean(options.json) });
      },
      // Without --batch the producer makes the batch's id: a new batch, known to hold nothing yet.
      ...(options.batch === undefined ? {} : { batchId: options.batch }),
      collectResults: false,
      // The first pass checked every line; a worker checks each operation again before it runs.
      prevalidated: true,
      resumable: { positionOf: (operation) => takeLine(lines, operation) },
    });
    progress?.stop();
    const { enqueued, duplicates, alreadyEnqueued } = summary;
    const out = { batchId: summary.batchId, enqueued, duplicates, alreadyEnqueued, invalid: scan.invalid };
    if (options.json) writeJson(io.stdout, out);
    else {
      const already = alreadyEnqueued > 0 ? `; ${alreadyEnqueued} already in the batch` : '';
      io.stdout.write(
        `enqueued ${enqueued} operations into batch ${out.batchId} (queue ${ctx.queue}; ${duplicates} duplicates, ${out.invalid} invalid skipped${already})\n`,
      );
      io.stdout.write(`follow it with: sluice wait ${out.batchId}${queueFlag(ctx)}\n`);
    }
    // Changed while pass 2 read it: what was written stays, but it may not be what was checked.
    const changed = await input.changed().then(
      () => undefined,
      (error: unknown) => error,
    );
    if (changed) {
      io.stderr.write(`sluice: ${errorMessage(changed)}; what was written stays in batch ${out.batchId}\n`);
      return 1;
    }
    return scan.invalid > 0 ? 2 : 0;
  } catch (error) {
    if (!(error instanceof EnqueueIncompleteError)) throw error;
    progress?.stop();
    return reportIncomplete(ctx, input, error);
  } finally {
    progress?.stop();
    await producer.close();
  }
}

/** An enqueue that stopped part-way: what was written, and the command that finishes it. */
function reportIncomplete(ctx: CliContext, input: ValidInput, error: EnqueueIncompleteError): number {
  const { enqueued, duplicates, alreadyEnqueued } = error.written;
  const written = enqueued + duplicates + alreadyEnqueued;
  const command = resumeCommand(ctx, input, error.batchId);
  const stdin = input.file === '-' ? ' with the same input on stdin' : input.once ? ` with the same input in ${input.file}` : '';
  ctx.io.stderr.write(
    `sluice: enqueue stopped: ${errorMessage(error.cause)}\n` +
      `${written} of ${input.scan.valid} operations were written to batch ${error.batchId} before it stopped (a chunk in flight may have been written too).\n` +
      `They stay there. Once the cause is gone (Redis answers again), finish the batch${stdin} with\n` +
      `  ${command}\n` +
      `which adds only what is missing: nothing is enqueued twice.\n`,
  );
  if (input.options.json) {
    writeJson(ctx.io.stdout, {
      batchId: error.batchId,
      enqueued,
      duplicates,
      alreadyEnqueued,
      invalid: input.scan.invalid,
      complete: false,
      error: errorMessage(error.cause),
      resume: command,
    });
  }
  return 1;
}

/** The same command again, into the same batch. */
function resumeCommand(ctx: CliContext, input: ValidInput, batchId: string): string {
  const { options } = input;
  const words = ['sluice'];
  // The config as it was found: named only when the same command would not find it again by itself.
  const configAgain = ctx.configPath === undefined || ctx.configPath === ctx.env.SLUICE_CONFIG || ctx.configPath === defaultConfigPath(ctx);
  if (!configAgain) words.push('--config', ctx.configPath!);
  if (ctx.queue !== ctx.env.SLUICE_QUEUE) words.push('--queue', ctx.queue);
  words.push('enqueue', input.file, '--batch', batchId);
  if (options.template !== undefined) words.push('--template', options.template);
  if (options.format !== undefined) words.push('--format', options.format);
  if (options.skipInvalid) words.push('--skip-invalid');
  if (options.json) words.push('--json');
  return words.map(shellWord).join(' ');
}

function queueFlag(ctx: CliContext): string {
  return ctx.queue === ctx.env.SLUICE_QUEUE ? '' : ` --queue ${ctx.queue}`;
}

/** A word as a POSIX shell reads it back. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The check pass shows its progress once it has taken this long (a small input shows none). */
const CHECK_PROGRESS_AFTER_MS = 1_000;

/**
 * Pass 1: every record checked before anything is written. Long inputs show how far it has read
 * (bytes of the file, and the records so far): 10M lines take about a minute here.
 */
async function validateInput(ctx: CliContext, source: InputSource, show: { totalBytes: number; quiet: boolean }): Promise<Scan> {
  const scan: Scan = { valid: 0, invalid: 0, invalidLines: new Set() };
  const rules = operationRules(ctx);
  const startedAt = Date.now();
  let progress: Progress | undefined;
  const report = (bytes: number) => {
    if (!progress && (show.quiet || Date.now() - startedAt < CHECK_PROGRESS_AFTER_MS)) return;
    progress ??= createProgress(ctx.io, { label: 'checking', total: show.totalBytes, unit: 'bytes' });
    progress.update(bytes, { detail: `${scan.valid + scan.invalid} ${source.unit}` });
  };
  try {
    await checkRecords(ctx, source, rules, scan, () => report(source.bytesRead()));
    report(show.totalBytes);
  } finally {
    progress?.stop();
  }
  return scan;
}

/** Reads and validates each record, printing problems as `line N: path: message`; `onBatch` after each batch read. */
async function checkRecords(ctx: CliContext, source: InputSource, rules: OperationRules, scan: Scan, onBatch: () => void): Promise<void> {
  read: for await (const batch of source.batches()) {
    for (const record of batch) {
      const problems = record.problems ?? checkRecord(ctx, record, rules);
      if (problems.length === 0) {
        scan.valid += 1;
        continue;
      }
      scan.invalid += 1;
      scan.invalidLines.add(record.line);
      if (scan.invalid <= MAX_PRINTED_PROBLEMS || record.fatal) {
        for (const problem of problems) ctx.io.stderr.write(`${source.where(record)}: ${problem}\n`);
      } else if (scan.invalid === MAX_PRINTED_PROBLEMS + 1) {
        ctx.io.stderr.write(`… more invalid ${source.unit} follow; only the first ${MAX_PRINTED_PROBLEMS} are shown\n`);
      }
      if (record.fatal) {
        scan.stoppedAt = source.where(record);
        break read;
      }
    }
    onBatch();
  }
}

function checkRecord(ctx: CliContext, record: InputRecord, rules: OperationRules): string[] {
  const parsed = parseOperation(record.value, ctx.config, rules);
  if (parsed.ok) return [];
  return parsed.issues.map((issue) => `${issue.path ? `${issue.path}: ` : ''}${issue.message}${record.explain?.(issue.path) ?? ''}`);
}

/** Pass 2: the valid records again; `lines` learns each one's line (its position in the input). */
function validOperations(source: InputSource, skip: ReadonlySet<number>, lines: Map<object, number>): AsyncIterable<unknown> {
  return flatten(
    mapBatches(source.batches(), (batch) => {
      const valid: unknown[] = [];
      for (const record of batch) {
        if (record.problems !== undefined || skip.has(record.line)) continue;
        // A valid operation is an object (parseOperation checked it).
        lines.set(record.value as object, record.line);
        valid.push(record.value);
      }
      return valid;
    }),
  );
}

/** An operation's line, once: a place made from its index instead would not be the place a rerun finds. */
function takeLine(lines: Map<object, number>, operation: unknown): number {
  const line = lines.get(operation as object);
  if (line === undefined) throw new Error('enqueue: an operation was prepared twice, or was not read from the input');
  lines.delete(operation as object);
  return line;
}

/** CSV with a template, JSONL without one; `--format` overrides the `.csv` extension. */
function inputFormat(file: string, options: EnqueueCommandOptions): InputFormat {
  if (options.format !== undefined && options.format !== 'csv' && options.format !== 'jsonl') {
    throw new UsageError(`--format ${JSON.stringify(options.format)}: expected csv or jsonl`);
  }
  const byName: InputFormat = file === '-' ? (options.template === undefined ? 'jsonl' : 'csv') : /\.csv$/i.test(file) ? 'csv' : 'jsonl';
  const format = (options.format as InputFormat | undefined) ?? byName;
  const input = file === '-' ? 'stdin' : file;
  if (format === 'csv' && options.template === undefined) {
    throw new UsageError(
      `${input} is read as CSV, which needs --template FILE: an operation whose {{column}} placeholders are filled from each row`,
    );
  }
  if (format === 'jsonl' && options.template !== undefined) {
    throw new UsageError(
      `--template is for CSV input, and ${input} is read as JSONL (one operation per line); name the file .csv or pass --format csv`,
    );
  }
  return format;
}

export async function readTemplate(path: string): Promise<{ name: string; value: unknown }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SluiceError(`cannot read template ${path}: ${errorMessage(error)}`, { code: 'INPUT_UNREADABLE', cause: error });
  }
  try {
    return { name: path, value: JSON.parse(text.replace(/^\uFEFF/, '')) };
  } catch (error) {
    throw new UsageError(`--template ${path}: not valid JSON: ${errorMessage(error)}`);
  }
}

/**
 * The input pass 2 reads must be the one pass 1 checked: a file changed or replaced in between
 * would have lines enqueued that nobody validated.
 */
async function assertUnchanged(file: string, path: string, checked: Stats): Promise<void> {
  const now = await stat(path).catch(() => undefined);
  const same = now && now.ino === checked.ino && now.dev === checked.dev && now.size === checked.size && now.mtimeMs === checked.mtimeMs;
  if (!same) {
    throw new SluiceError(
      `${file} changed while it was read (it is read twice: checked whole, then enqueued); enqueue it once it is complete`,
      {
        code: 'INPUT_CHANGED',
      },
    );
  }
}

async function assertReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    throw new SluiceError(`cannot read ${path}: ${errorMessage(error)}`, { code: 'INPUT_UNREADABLE', cause: error });
  }
  // Readable, but not something to read lines from.
  if ((await stat(path)).isDirectory()) {
    throw new SluiceError(`cannot read ${path}: it is a directory; name a JSONL or CSV file (or - for stdin)`, {
      code: 'INPUT_UNREADABLE',
    });
  }
}

function defaultConfigPath(ctx: CliContext): string {
  return `${ctx.io.cwd}/${DEFAULT_CONFIG_FILE}`;
}

function writeJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${JSON.stringify(value)}\n`);
}
