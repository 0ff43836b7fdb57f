import { Command, CommanderError, Option } from 'commander';
import { ConfigError, SluiceError, UsageError, ValidationError, errorMessage } from '../errors.js';
import { isRedisUnavailable } from '../redis/unavailable.js';
import { packageVersion } from '../support/package-root.js';
import { MAX_SHARDS } from '../redis/keys.js';
import { createCliContext, type CliContext, type CliIo, type GlobalOptions } from './context.js';
import { watchOutput } from './output.js';
import { enqueueCommand } from './commands/enqueue.js';
import { resultsCommand, statusCommand } from './commands/batch.js';
import { waitCommand } from './commands/wait.js';
import { dlqListCommand, dlqPurgeCommand, dlqReplayCommand, dlqShowCommand } from './commands/dlq.js';
import {
  limitsCircuitCommand,
  limitsListCommand,
  limitsPauseCommand,
  limitsResetCommand,
  limitsResumeCommand,
  limitsSetCommand,
} from './commands/limits.js';
import { addScheduleCommands } from './commands/schedule.js';

/**
 * Exit codes: 0 ok (also when stdout's reader went away), 1 failure (or dead letters, for `wait`),
 * 2 bad input or usage (or credentials Redis refuses), 3 timeout, 4 Redis not answering.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, timeout: 3, redisUnreachable: 4 } as const;

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

/** Runs the CLI with `argv` (without `node` and the script) and resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let exitCode: number = EXIT.ok;
  const stdout = watchOutput(io.stdout);
  // An EPIPE on stderr (`sluice … 2>&1 | head -1`) has nobody to be reported to.
  watchOutput(io.stderr);
  const program = buildProgram(io, stdout.signal, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 1 ? EXIT.usage : error.exitCode;
    // The reader of stdout went away (`| head -1`): the command stopped producing; not a failure.
    if (stdout.readerGone() && isOutputGone(error, stdout.signal)) return EXIT.ok;
    return reportError(io, error);
  }
}

/** The error a write (or a wait for 'drain') fails with once the stream is gone. */
function isOutputGone(error: unknown, signal: AbortSignal): boolean {
  if (error === signal.reason) return true;
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown };
  return name === 'AbortError' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

/** Errors about what the user gave us (files that cannot be read, credentials Redis refuses) rather than about the system. */
const BAD_INPUT_CODES = new Set(['INPUT_UNREADABLE', 'OUTPUT_UNWRITABLE', 'CONFIG_UNREADABLE', 'REDIS_AUTH_FAILED']);

function reportError(io: CliIo, error: unknown): number {
  const badInput = error instanceof SluiceError && BAD_INPUT_CODES.has(error.code);
  if (badInput || error instanceof ConfigError || error instanceof ValidationError || error instanceof UsageError) {
    io.stderr.write(`sluice: ${error.message}\n`);
    return EXIT.usage;
  }
  if (isRedisUnavailable(error)) {
    const message = errorMessage(error);
    io.stderr.write(`sluice: ${message.startsWith('cannot reach Redis') ? message : `Redis is not answering: ${message}`}\n`);
    return EXIT.redisUnreachable;
  }
  if (error instanceof SluiceError) {
    io.stderr.write(`sluice: ${error.message}\n`);
    return EXIT.failure;
  }
  io.stderr.write(`sluice: unexpected error: ${errorMessage(error)}\n`);
  if (error instanceof Error && error.stack && io.env['LOG_LEVEL'] === 'debug') io.stderr.write(`${error.stack}\n`);
  return EXIT.failure;
}

/** Wraps an action: builds the context from global options, runs, records the exit code, closes. */
type Run = <A extends unknown[]>(action: (ctx: CliContext, ...args: A) => Promise<number>) => (...args: A) => Promise<void>;

function buildProgram(io: CliIo, stdoutClosed: AbortSignal, setExit: (code: number) => void): Command {
  const program = new Command('sluice')
    .description('Durable, rate-limited bulk HTTP API operations on BullMQ and Redis.')
    .addOption(new Option('--config <file>', 'sluice config file (default: $SLUICE_CONFIG, else ./sluice.config.json if present)'))
    .addOption(new Option('--queue <name>', 'queue name (default: $SLUICE_QUEUE, else "default")'))
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) });

  const run: Run =
    (action) =>
    async (...args) => {
      const command = args.at(-1) as Command;
      const ctx = await createCliContext(io, command.optsWithGlobals<GlobalOptions>(), stdoutClosed);
      try {
        setExit(await action(ctx, ...args));
      } finally {
        await ctx.close();
      }
    };

  program
    .command('enqueue')
    .description(
      'enqueue operations from a JSONL file (one operation per line; - reads stdin), or a CSV file through --template; validates everything first',
    )
    .argument('<file>', 'JSONL or CSV file, or - for stdin')
    .option('--template <file>', 'CSV input: an operation JSON file whose {{column}} placeholders are filled from each row')
    .option('--format <format>', 'input format, csv or jsonl (default: csv for a .csv file or stdin with --template, else jsonl)')
    .option('--batch <id>', 'batch id (default: generated)')
    .option('--json', 'print {"batchId","enqueued","duplicates","alreadyEnqueued","invalid"}')
    .option('--dry-run', 'validate only; enqueue nothing')
    .option('--skip-invalid', 'enqueue the valid lines and report the invalid ones (exit code 2 if any)')
    .action(run((ctx, file: string, options) => enqueueCommand(ctx, file, options)));

  program
    .command('worker')
    .description('run a worker process (SIGTERM/SIGINT: finish in-flight jobs, then exit)')
    .option('--concurrency <n>', 'jobs at once in this process (default: $SLUICE_CONCURRENCY, else 50)')
    .action(run(async (ctx, options: { concurrency?: string }) => (await import('./commands/worker.js')).workerCommand(ctx, options)));

  program
    .command('shards')
    .description(
      'how the queue is spread over shards (each a BullMQ queue in a Redis Cluster slot of its own), or set how many new operations are spread over',
    )
    .argument('[count]', `spread new operations over this many shards (1–${MAX_SHARDS}); workers pick new shards up within 5 s`)
    .option('--force', 'change it even while idempotency keys are held (a key enqueued again may then land on another shard and run again)')
    .option('--json', 'print JSON')
    .action(
      run(async (ctx, count: string | undefined, options) => (await import('./commands/shards.js')).shardsCommand(ctx, count, options)),
    );

  addBatchCommands(program, run);
  addDlqCommands(program, run);
  addLimitsCommands(program, run);
  addScheduleCommands(program, run);

  program
    .command('server')
    .description(
      'the HTTP API for other services, with dashboard and metrics (tokens from $SLUICE_API_TOKENS; SIGTERM: finish requests, exit)',
    )
    .option('--port <n>', 'port to listen on (default: $SLUICE_SERVER_PORT, else 3000)')
    .option('--host <address>', 'address to listen on (default: $SLUICE_SERVER_HOST, else 127.0.0.1; 0.0.0.0 for every interface)')
    .action(
      run(async (ctx, options: { port?: string; host?: string }) => (await import('./commands/server.js')).serverCommand(ctx, options)),
    );

  program
    .command('demo')
    .description('the main job on embedded defaults: local Redis, a demo API, two workers, a batch, a summary')
    .option('--operations <n>', 'operations in the demo batch (default 3000)')
    .action(run(async (ctx, options: { operations?: string }) => (await import('./commands/demo.js')).demoCommand(ctx, options)));

  return program;
}

/** `status`, `wait` and `results`: following a batch (commands/batch.ts). */
function addBatchCommands(program: Command, run: Run): void {
  program
    .command('status')
    .description('counters of a batch: total, succeeded, dead-lettered, pending')
    .argument('<batch>', 'batch id')
    .option('--json', 'print JSON')
    .action(run((ctx, batch: string, options) => statusCommand(ctx, batch, options)));

  program
    .command('wait')
    .description('wait for a batch to finish: exit 0 all succeeded, 1 some dead-lettered, 3 timeout, 4 Redis not answering')
    .argument('<batch>', 'batch id')
    .option('--timeout <seconds>', 'give up after this many seconds (exit 3); a Redis outage is ridden out until then (else 5 minutes)')
    .option('--json', 'print the final counters as JSON')
    .action(run((ctx, batch: string, options) => waitCommand(ctx, batch, options)));

  program
    .command('results')
    .description('one JSON line (or CSV row) per finished operation of a batch')
    .argument('<batch>', 'batch id')
    .option(
      '--format <format>',
      'jsonl (default) or csv: a header, then the meta columns and id, outcome, status, attempts, durationMs, reason, error',
    )
    .option('--failed', 'only dead-lettered operations')
    .option('--out <file>', 'write to a file (atomically) instead of stdout')
    .action(run((ctx, batch: string, options) => resultsCommand(ctx, batch, options)));
}

/** `dlq list | show | replay | purge` (commands/dlq.ts). */
function addDlqCommands(program: Command, run: Run): void {
  const dlq = program.command('dlq').description('inspect, replay and purge dead letters');
  dlq
    .command('list')
    .description('list dead letters, newest first')
    .option('--batch <id>', 'only this batch')
    .option(
      '--reason <reason>',
      'only this reason: permanent-status, schema-mismatch, bad-response, attempts-exhausted, timeout, max-duration-exceeded, rate-limited, stalled, invalid-operation, request-error, auth-failed, internal-error',
    )
    .option('--limit-key <key>', 'only this limit key')
    .option('--status <code>', 'only this HTTP status')
    .option('--limit <n>', 'show at most n (default 100)')
    .option('--json', 'one JSON dead letter per line')
    .action(run((ctx, options) => dlqListCommand(ctx, options)));
  dlq
    .command('show')
    .description('one dead letter in full: operation, every attempt, reason')
    .argument('<id>', 'dead letter id')
    .option('--json', 'the same object on one line, as `dlq list --json` prints each')
    .action(run((ctx, id: string, options: { json?: boolean }) => dlqShowCommand(ctx, id, options)));
  dlq
    .command('replay')
    .description('put dead letters back on the queue with a fresh attempt budget and the same idempotency key')
    .argument('[ids...]', 'dead letter ids')
    .option('--all', 'every dead letter in the queue')
    .option('--batch <id>', 'every dead letter of this batch')
    .option('--json', 'print JSON')
    .action(run((ctx, ids: string[], options) => dlqReplayCommand(ctx, ids, options)));
  dlq
    .command('purge')
    .description('delete dead letters for good')
    .argument('[ids...]', 'dead letter ids')
    .option('--all', 'every dead letter in the queue')
    .option('--yes', 'confirm')
    .action(run((ctx, ids: string[], options) => dlqPurgeCommand(ctx, ids, options)));
}

/** `limits` and `limits set | pause | resume | reset` (commands/limits.ts). */
function addLimitsCommands(program: Command, run: Run): void {
  const limits = program
    .command('limits')
    .description('cluster-wide limits per limit key: configured and effective rate, in flight, paused, recent 429s')
    .option('--json', 'print JSON')
    .action(run((ctx, options: { json?: boolean }) => limitsListCommand(ctx, options)));
  limits
    .command('set')
    .description('change a key for every running worker within a second (no restarts)')
    .argument('<key>', 'limit key (a target name, a host, or any key operations name)')
    .option('--rps <n>', 'requests per second')
    .option('--rpm <n>', 'requests per minute')
    .option('--burst <n>', 'requests that may start at once after a quiet spell')
    .option('--concurrency <n>', 'requests in flight at most, across the fleet')
    .option('--ttl <duration>', 'make it temporary: 90s, 5m, 2h, 1d')
    .action(run((ctx, key: string, options) => limitsSetCommand(ctx, key, options)));
  limits
    .command('pause')
    .description('stop starting requests on a key, fleet-wide')
    .argument('<key>', 'limit key')
    .action(run((ctx, key: string) => limitsPauseCommand(ctx, key)));
  limits
    .command('resume')
    .description('lift a pause (also one the target asked for with Retry-After)')
    .argument('<key>', 'limit key')
    .action(run((ctx, key: string) => limitsResumeCommand(ctx, key)));
  limits
    .command('reset')
    .description('drop an override set with `limits set`: the config file applies again')
    .argument('<key>', 'limit key')
    .action(run((ctx, key: string) => limitsResetCommand(ctx, key)));
  limits
    .command('open')
    .description("open a key's circuit by hand: nothing is sent on it but a probe now and then (a good probe closes it)")
    .argument('<key>', 'limit key')
    .action(run((ctx, key: string) => limitsCircuitCommand(ctx, key, 'open')));
  limits
    .command('close')
    .description("close a key's circuit by hand: the operations waiting for it resume")
    .argument('<key>', 'limit key')
    .action(run((ctx, key: string) => limitsCircuitCommand(ctx, key, 'close')));
}
