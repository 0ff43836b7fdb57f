import { UsageError } from '../../errors.js';
import { redacted } from '../../observability/redact.js';
import { createDeadLetterStore, type DeadLetterFilter, type DeadLetterStore } from '../../outcomes/dead-letter-store.js';
import type { DeadLetter } from '../../outcomes/dead-letter.js';
import { batchIdArgument } from '../batch-id.js';
import type { CliContext } from '../context.js';

async function withStore<T>(ctx: CliContext, run: (store: DeadLetterStore) => Promise<T>): Promise<T> {
  // Replays go back in lanes as `sluice enqueue` writes them (SLUICE_LANES), sized by the same limits.
  const store = createDeadLetterStore({
    redis: await ctx.redis(),
    queue: ctx.queue,
    lanes: ctx.env.SLUICE_LANES === 'on',
    laneSize: ctx.env.SLUICE_LANE_SIZE,
    config: ctx.config,
  });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

export interface DlqListOptions {
  batch?: string;
  reason?: string;
  limitKey?: string;
  status?: string;
  limit?: string;
  json?: boolean;
}

function filterFrom(options: { batch?: string; reason?: string; limitKey?: string; status?: string }): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (options.batch !== undefined) filter.batchId = batchIdArgument('--batch', options.batch);
  if (options.reason !== undefined) filter.reason = options.reason;
  if (options.limitKey !== undefined) filter.limitKey = options.limitKey;
  if (options.status !== undefined) {
    const status = Number(options.status);
    if (!Number.isInteger(status)) throw new UsageError(`--status ${options.status}: expected an HTTP status such as 404`);
    filter.status = status;
  }
  return filter;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} ${value}: expected a whole number above 0`);
  return n;
}

/** `sluice dlq list [--batch B] [--reason R] [--limit-key K] [--status N] [--limit N] [--json]` */
export async function dlqListCommand(ctx: CliContext, options: DlqListOptions): Promise<number> {
  const filter = filterFrom(options);
  const limit = positiveInt('--limit', options.limit, 100);
  const [stored, total] = await withStore(ctx, async (store) => [await store.list(filter, { limit }), await store.count()] as const);
  // Shown redacted, as the API and dashboards show them; a replay sends what is stored.
  const entries = stored.map(redacted);
  if (options.json) {
    for (const entry of entries) ctx.io.stdout.write(`${JSON.stringify(entry)}\n`);
    return 0;
  }
  if (entries.length === 0) {
    ctx.io.stdout.write(`no dead letters match in queue ${ctx.queue} (${total} in all)\n`);
    return 0;
  }
  for (const entry of entries) ctx.io.stdout.write(`${summarize(entry)}\n`);
  ctx.io.stdout.write(`${entries.length} shown (${total} dead letters in queue ${ctx.queue}); details: sluice dlq show ID\n`);
  return 0;
}

function summarize(entry: DeadLetter): string {
  const when = entry.deadLetteredAt.replace('T', ' ').slice(0, 19);
  const status = entry.status === undefined ? '-' : String(entry.status);
  const call = entry.method && entry.url ? `${entry.method} ${entry.url}` : '(invalid operation)';
  return `${entry.id}  ${when}  ${entry.reason}  status=${status}  attempts=${entry.attempts.length}  batch=${entry.batchId ?? '-'}  ${call}  — ${firstLine(entry.message)}`;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/**
 * `sluice dlq show ID [--json]`: indented JSON to read; `--json` the same object on one line, as
 * `dlq list --json` prints each dead letter and `GET /v1/dead-letters` lists them in `items`.
 */
export async function dlqShowCommand(ctx: CliContext, id: string, options: { json?: boolean } = {}): Promise<number> {
  const entry = await withStore(ctx, (store) => store.get(id));
  if (!entry) {
    ctx.io.stderr.write(`no dead letter ${JSON.stringify(id)} in queue ${ctx.queue}\n`);
    return 1;
  }
  ctx.io.stdout.write(`${JSON.stringify(redacted(entry), null, options.json ? undefined : 2)}\n`);
  return 0;
}

async function selectIds(
  store: DeadLetterStore,
  ids: string[],
  options: { all?: boolean; batch?: string },
  verb: string,
): Promise<string[]> {
  const selectors = [ids.length > 0, Boolean(options.all), options.batch !== undefined].filter(Boolean).length;
  if (selectors !== 1)
    throw new UsageError(`dlq ${verb}: give dead-letter ids, or --all${verb === 'replay' ? ', or --batch B' : ''} (exactly one of them)`);
  if (ids.length > 0) return ids;
  return store.ids(options.batch !== undefined ? { batchId: batchIdArgument('--batch', options.batch) } : {});
}

/** `sluice dlq replay (ID...|--all|--batch B)` */
export async function dlqReplayCommand(
  ctx: CliContext,
  ids: string[],
  options: { all?: boolean; batch?: string; json?: boolean },
): Promise<number> {
  const result = await withStore(ctx, async (store) => store.replay(await selectIds(store, ids, options, 'replay')));
  if (options.json) ctx.io.stdout.write(`${JSON.stringify(result)}\n`);
  else ctx.io.stdout.write(`replayed ${result.replayed.length} dead letters into queue ${ctx.queue}\n`);
  // Ids named by hand that are not dead letters are a mistake worth a failing exit. Those of --all or
  // --batch were dead letters when listed: gone by their turn, another replay (or a purge) took them.
  if (ids.length === 0) {
    if (result.missing.length > 0 && !options.json)
      ctx.io.stderr.write(
        `${result.missing.length} of them were no longer dead letters when their turn came (replayed or purged meanwhile)\n`,
      );
    return 0;
  }
  if (!options.json) for (const id of result.missing) ctx.io.stderr.write(`no dead letter ${JSON.stringify(id)}\n`);
  return result.missing.length > 0 ? 1 : 0;
}

/** `sluice dlq purge (ID...|--all) --yes` */
export async function dlqPurgeCommand(ctx: CliContext, ids: string[], options: { all?: boolean; yes?: boolean }): Promise<number> {
  if (!options.yes) throw new UsageError('dlq purge deletes dead letters for good: add --yes to confirm');
  const removed = await withStore(ctx, async (store) => store.purge(await selectIds(store, ids, options, 'purge')));
  ctx.io.stdout.write(`purged ${removed} dead letters from queue ${ctx.queue}\n`);
  return 0;
}
