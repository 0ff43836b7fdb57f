import { access, constants } from 'node:fs/promises';
import { Command } from 'commander';
import { SluiceError, UsageError, errorMessage } from '../../errors.js';
import { parseOperation } from '../../operation/parse-operation.js';
import { hideRun, sampleRun, showRun, withRun } from '../../schedules/schedule-definition.js';
import { createSchedules, type ScheduleInfo, type ScheduleRunInfo, type Schedules } from '../../schedules/schedules.js';
import type { CatchUp } from '../../schedules/schedule-timing.js';
import { operationRules, type CliContext } from '../context.js';
import { createCsvSource } from '../csv-source.js';
import { createJsonlSource, recordsOf, type InputSource } from '../input-source.js';
import { readTemplate } from './enqueue.js';

/** Problems printed in full; the rest are counted. */
const MAX_PRINTED_PROBLEMS = 50;

interface AddOptions {
  cron?: string;
  tz?: string;
  every?: string;
  catchUp?: string;
  template?: string;
  csv?: string;
  json?: boolean;
}

type Run = <A extends unknown[]>(action: (ctx: CliContext, ...args: A) => Promise<number>) => (...args: A) => Promise<void>;

/** `schedule add | list | show | pause | resume | remove`: recurring operations (see schedules/). */
export function addScheduleCommands(program: Command, run: Run): void {
  const schedule = program.command('schedule').description('recurring operations: each tick enqueues them as a new batch NAME-<tick time>');
  schedule
    .command('add')
    .description('add a schedule; every operation is validated first (with {{run}} filled in), and any problem stores nothing (exit 2)')
    .argument('<name>', 'schedule name (letters, digits, _ . -); runs are batches NAME-<tick time, e.g. 20261126T020000Z>')
    .argument('[file]', 'JSONL operations (or use --template with --csv)')
    .option('--cron <expression>', 'cron expression, e.g. "0 2 * * *" (5 fields, or 6 with seconds first)')
    .option('--tz <zone>', 'IANA time zone of --cron, e.g. Europe/Berlin (default UTC)')
    .option('--every <interval>', 'fixed interval instead of --cron: 2s, 15m, 1h, 1d (ticks on multiples of it since the epoch)')
    .option('--catch-up <mode>', 'a tick missed while every worker was down: one (run it once on start; default) or none (skip it)')
    .option('--template <file>', 'an operation JSON file whose {{column}} placeholders are filled from each row of --csv')
    .option('--csv <file>', 'CSV rows for --template')
    .option('--json', 'print the schedule as JSON')
    .action(run((ctx, name: string, file: string | undefined, options: AddOptions) => scheduleAddCommand(ctx, name, file, options)));
  schedule
    .command('list')
    .description("the queue's schedules and their next run")
    .option('--json', 'one JSON schedule per line')
    .action(run((ctx, options: { json?: boolean }) => scheduleListCommand(ctx, options)));
  schedule
    .command('show')
    .description('a schedule and its last runs, each with its batch counters')
    .argument('<name>', 'schedule name')
    .option('--runs <n>', 'runs listed, newest first (default 10, at most 50)')
    .option('--json', 'print JSON')
    .action(run((ctx, name: string, options: { runs?: string; json?: boolean }) => scheduleShowCommand(ctx, name, options)));
  for (const action of ['pause', 'resume', 'remove'] as const) {
    schedule
      .command(action)
      .description(
        action === 'pause'
          ? 'stop the ticks; the schedule stays'
          : action === 'resume'
            ? 'tick again, from the next tick after now'
            : 'delete the schedule, its operations and its run history (its batches stay)',
      )
      .argument('<name>', 'schedule name')
      .action(run((ctx, name: string) => scheduleChangeCommand(ctx, action, name)));
  }
}

async function openSchedules(ctx: CliContext): Promise<Schedules> {
  return createSchedules({ connection: await ctx.redis(), queue: ctx.queue, config: ctx.config });
}

export async function scheduleAddCommand(ctx: CliContext, name: string, file: string | undefined, options: AddOptions): Promise<number> {
  const source = await inputOf(file, options);
  if (options.catchUp !== undefined && options.catchUp !== 'one' && options.catchUp !== 'none') {
    throw new UsageError(`--catch-up ${JSON.stringify(options.catchUp)}: expected one or none`);
  }
  // Pass 1: every record, as a run will enqueue it.
  const run = sampleRun(name);
  let valid = 0;
  let invalid = 0;
  const rules = operationRules(ctx);
  for await (const record of recordsOf(source.input)) {
    let problems = record.problems;
    if (problems === undefined) {
      const parsed = parseOperation(withRun(showRun(record.value), run), ctx.config, rules);
      problems = parsed.ok
        ? []
        : parsed.issues.map((issue) => `${issue.path ? `${issue.path}: ` : ''}${issue.message}${record.explain?.(issue.path) ?? ''}`);
    }
    if (problems.length === 0) {
      valid += 1;
      continue;
    }
    invalid += 1;
    if (invalid <= MAX_PRINTED_PROBLEMS) for (const problem of problems) ctx.io.stderr.write(`${source.input.where(record)}: ${problem}\n`);
    if (record.fatal) break;
  }
  if (invalid > 0 || valid === 0) {
    const why = invalid > 0 ? `${invalid} of ${valid + invalid} ${source.input.unit} are invalid` : 'the input has no operations';
    ctx.io.stderr.write(`nothing added: ${why}\n`);
    return 2;
  }
  // Pass 2: store them.
  const schedules = await openSchedules(ctx);
  try {
    const added = await schedules.add(
      name,
      {
        ...(options.cron !== undefined ? { cron: options.cron } : {}),
        ...(options.tz !== undefined ? { tz: options.tz } : {}),
        ...(options.every !== undefined ? { every: options.every } : {}),
        ...(options.catchUp !== undefined ? { catchUp: options.catchUp as CatchUp } : {}),
      },
      operationsOf(source.input),
      { prevalidated: true, source: source.name },
    );
    if (options.json) ctx.io.stdout.write(`${JSON.stringify(added)}\n`);
    else ctx.io.stdout.write(`added schedule ${describe(added)}\n`);
    return 0;
  } finally {
    await schedules.close();
  }
}

export async function scheduleListCommand(ctx: CliContext, options: { json?: boolean }): Promise<number> {
  const schedules = await openSchedules(ctx);
  try {
    const list = await schedules.list();
    for (const entry of list) ctx.io.stdout.write(options.json ? `${JSON.stringify(entry)}\n` : `${describe(entry)}\n`);
    if (list.length === 0 && !options.json) ctx.io.stdout.write(`no schedules in queue ${ctx.queue}\n`);
    return 0;
  } finally {
    await schedules.close();
  }
}

export async function scheduleShowCommand(ctx: CliContext, name: string, options: { runs?: string; json?: boolean }): Promise<number> {
  const runs = options.runs === undefined ? 10 : Number(options.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 50)
    throw new UsageError(`--runs ${options.runs}: expected a whole number from 1 to 50`);
  const schedules = await openSchedules(ctx);
  try {
    const shown = await schedules.show(name, { runs });
    if (options.json) {
      ctx.io.stdout.write(`${JSON.stringify(shown)}\n`);
      return 0;
    }
    ctx.io.stdout.write(`${describe(shown)}\n`);
    ctx.io.stdout.write(`created ${shown.createdAt}${shown.source ? ` from ${shown.source}` : ''}; catch-up ${shown.catchUp}\n`);
    ctx.io.stdout.write(shown.runs.length === 0 ? 'no runs yet\n' : 'last runs, newest first:\n');
    for (const entry of shown.runs) ctx.io.stdout.write(`  ${describeRun(entry)}\n`);
    return 0;
  } finally {
    await schedules.close();
  }
}

export async function scheduleChangeCommand(ctx: CliContext, action: 'pause' | 'resume' | 'remove', name: string): Promise<number> {
  const schedules = await openSchedules(ctx);
  try {
    if (action === 'remove') {
      await schedules.remove(name);
      ctx.io.stdout.write(`removed schedule ${name} (its batches stay)\n`);
    } else {
      const changed = await schedules[action](name);
      ctx.io.stdout.write(`${action === 'pause' ? 'paused' : 'resumed'} schedule ${describe(changed)}\n`);
    }
    return 0;
  } finally {
    await schedules.close();
  }
}

/** `nightly: cron "0 2 * * *" Europe/Berlin, 120 operations, next run 2026-11-27T01:00:00.000Z` */
function describe(entry: ScheduleInfo): string {
  const timing = entry.every !== undefined ? `every ${entry.every}` : `cron "${entry.cron}" ${entry.tz ?? 'UTC'}`;
  const next = entry.paused ? 'paused' : entry.nextRunAt ? `next run ${entry.nextRunAt}` : 'no next run';
  return `${entry.name}: ${timing}, ${entry.operations} operation${entry.operations === 1 ? '' : 's'}, ${next}`;
}

/** One run of `schedule show`: its batch id, what it wrote, its batch's counters (or why there are none), and why it failed. */
export function describeRun(run: ScheduleRunInfo): string {
  if (run.status === 'skipped') return `${run.batchId}  skipped (${run.error ?? 'missed'})`;
  const written = `enqueued ${run.enqueued}${run.duplicates ? `, ${run.duplicates} duplicates` : ''}${run.alreadyEnqueued ? `, ${run.alreadyEnqueued} already there` : ''}`;
  // A run that wrote nothing made no batch; one that did keeps it for the batch retention.
  const wroteNone = run.enqueued + run.duplicates + run.alreadyEnqueued === 0;
  const batch = run.batch
    ? `batch: ${run.batch.total} total, ${run.batch.succeeded} succeeded, ${run.batch.deadLettered} dead-lettered, ${run.batch.pending} pending`
    : wroteNone
      ? 'no batch'
      : 'batch expired';
  const failed = run.status === 'failed' ? `  FAILED: ${run.error ?? ''}` : '';
  return `${run.batchId}  ${written}; ${batch}${failed}`;
}

/** JSONL from FILE, or CSV rows through --template; `{{run}}` stays in the operations as written. */
async function inputOf(file: string | undefined, options: AddOptions): Promise<{ input: InputSource; name: string }> {
  const csv = options.template !== undefined || options.csv !== undefined;
  if (csv && (options.template === undefined || options.csv === undefined || file !== undefined)) {
    throw new UsageError('give a JSONL FILE, or --template T with --csv F (not both)');
  }
  if (!csv && file === undefined) throw new UsageError('give a JSONL FILE of operations, or --template T with --csv F');
  const path = csv ? options.csv! : file!;
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    throw new SluiceError(`cannot read ${path}: ${errorMessage(error)}`, { code: 'INPUT_UNREADABLE', cause: error });
  }
  if (!csv) return { input: createJsonlSource(path), name: path };
  const template = await readTemplate(options.template!);
  return {
    input: createCsvSource(path, { name: path, template: hideRun(template.value), templateName: template.name }),
    name: `${path} through ${template.name}`,
  };
}

async function* operationsOf(input: InputSource): AsyncGenerator<unknown> {
  for await (const record of recordsOf(input)) if (record.problems === undefined) yield showRun(record.value);
}
