import { UsageError } from '../../errors.js';
import { totalWoken, wakeCircuitWaiters, wakeDeferredJobs } from '../../queue/wake-jobs.js';
import { parseDuration as parseDurationText, parseLimitChange } from '../../limits/limit-change.js';
import { createLimitsAdmin, type LimitStatus, type LineAfterChange } from '../../limits/limits-admin.js';
import { RECENT_429S_KEPT } from '../../limits/limit-status.js';
import type { CliContext } from '../context.js';

async function admin(ctx: CliContext) {
  return createLimitsAdmin({ redis: await ctx.redis(), config: ctx.config });
}

/** `sluice limits [--json]`: every known limit key, configured and effective. */
export async function limitsListCommand(ctx: CliContext, options: { json?: boolean }): Promise<number> {
  const keys = await (await admin(ctx)).list();
  if (options.json) {
    ctx.io.stdout.write(`${JSON.stringify(keys)}\n`);
    return 0;
  }
  if (keys.length === 0) {
    ctx.io.stdout.write('no limit keys yet: configure limits (see docs/limits.md) or run some operations\n');
    return 0;
  }
  const rows = keys.map(row);
  const header = ['KEY', 'CONFIGURED', 'OVERRIDE', 'EFFECTIVE', 'IN FLIGHT', 'QUEUED', '429s (5m)', 'PAUSED', 'CIRCUIT'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  ctx.io.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
  return 0;
}

function rate(value: number | null): string {
  if (value === null) return '-';
  return value >= 1 ? `${+value.toFixed(2)}/s` : `${+(value * 60).toFixed(2)}/min`;
}

function row(status: LimitStatus): string[] {
  const configured = status.configured
    ? [
        rate(status.configured.rate),
        status.configured.rate ? `burst ${status.configured.burst}` : '',
        status.configured.concurrency ? `conc ${status.configured.concurrency}` : '',
      ]
        .filter(Boolean)
        .join(' ')
    : '-';
  const override = status.override
    ? [
        status.override.rate !== null ? rate(status.override.rate) : '',
        status.override.burst !== null ? `burst ${status.override.burst}` : '',
        status.override.concurrency !== null ? `conc ${status.override.concurrency}` : '',
        status.override.expiresInMs !== null ? `(${Math.ceil(status.override.expiresInMs / 1_000)}s left)` : '',
      ]
        .filter(Boolean)
        .join(' ')
    : '-';
  const paused = status.paused ? 'yes (operator)' : status.pausedUntil ? `until ${status.pausedUntil}` : '-';
  return [
    status.key,
    configured,
    override,
    rate(status.effectiveRate),
    String(status.inFlight),
    String(status.queued),
    status.recent429s >= RECENT_429S_KEPT ? `${RECENT_429S_KEPT}+` : String(status.recent429s),
    paused,
    circuit(status.circuit),
  ];
}

/** `closed`, or `open since …, next probe …, N waiting` with the failures that opened it. */
function circuit(state: LimitStatus['circuit']): string {
  if (!state) return 'off';
  if (state.state === 'closed') return state.failures ? `closed (${state.failures}/${state.attempts} failed)` : 'closed';
  const probe = state.nextProbeAt ? `, next probe ${state.nextProbeAt}` : '';
  return `OPEN since ${state.openSince}${probe}, ${state.waiting} waiting`;
}

export interface LimitsSetOptions {
  rps?: string;
  rpm?: string;
  burst?: string;
  concurrency?: string;
  ttl?: string;
}

/** `sluice limits set KEY [--rps N | --rpm N] [--burst N] [--concurrency N] [--ttl DURATION]` */
export async function limitsSetCommand(ctx: CliContext, key: string, options: LimitsSetOptions): Promise<number> {
  const parsed = parseLimitChange(options, (field) => `--${field}`);
  if (!parsed.ok) {
    const [issue] = parsed.issues;
    throw new UsageError(
      issue!.field ? `--${issue!.field} ${String(options[issue!.field])}: ${issue!.message}` : `limits set: ${issue!.message}`,
    );
  }
  const deferred = await (await admin(ctx)).set(key, parsed.change, parsed.ttlMs);
  ctx.io.stdout.write(
    `limit key ${key} updated for every worker${parsed.ttlMs ? ` for ${options.ttl}` : ''}${await woken(ctx, deferred)}\n`,
  );
  return 0;
}

export async function limitsPauseCommand(ctx: CliContext, key: string): Promise<number> {
  await (await admin(ctx)).pause(key);
  ctx.io.stdout.write(`limit key ${key} paused: no worker starts a request on it until \`sluice limits resume ${key}\`\n`);
  return 0;
}

export async function limitsResumeCommand(ctx: CliContext, key: string): Promise<number> {
  // Jobs that waited for the pause's end (a target's Retry-After of a day) go on now.
  const deferred = await (await admin(ctx)).resume(key);
  ctx.io.stdout.write(`limit key ${key} resumed${await woken(ctx, deferred)}\n`);
  return 0;
}

export async function limitsResetCommand(ctx: CliContext, key: string): Promise<number> {
  const deferred = await (await admin(ctx)).reset(key);
  ctx.io.stdout.write(`limit key ${key}: override removed; the config file applies again${await woken(ctx, deferred)}\n`);
  return 0;
}

/** `sluice limits open KEY` / `close KEY`: a key's circuit by hand; a close wakes the operations waiting for it. */
export async function limitsCircuitCommand(ctx: CliContext, key: string, action: 'open' | 'close'): Promise<number> {
  const transition = await (await admin(ctx)).circuit(key, action);
  if (transition === '') {
    ctx.io.stdout.write(`limit key ${key}: circuit already ${action === 'open' ? 'open' : 'closed'}\n`);
    return 0;
  }
  if (transition === 'opened') {
    ctx.io.stdout.write(
      `limit key ${key}: circuit opened; nothing is sent on it but a probe now and then (\`sluice limits close ${key}\` to resume)\n`,
    );
    return 0;
  }
  const count = await wakeCircuitWaiters(await ctx.redis(), key, ctx.queue);
  ctx.io.stdout.write(`limit key ${key}: circuit closed; ${count} waiting operation${count === 1 ? '' : 's'} woken\n`);
  return 0;
}

/** `90`, `90s`, `5m`, `2h`, `1d` → milliseconds. */
export function parseDuration(text: string): number {
  const ms = parseDurationText(text);
  if (typeof ms === 'string') throw new UsageError(`--ttl ${text}: ${ms}`);
  return ms;
}

/**
 * Wakes the jobs waiting in the key's line, in every queue that holds some: they were delayed until
 * about their turn at the old rate, and find it at the new one now (a raised limit speeds a waiting
 * backlog up at once).
 */
async function woken(ctx: CliContext, line: LineAfterChange): Promise<string> {
  if (line.holders.length === 0) return '';
  const perQueue = await wakeDeferredJobs(await ctx.redis(), line, ctx.queue);
  const count = totalWoken(perQueue);
  const queues = Object.entries(perQueue);
  const where = queues.length === 1 ? `queue ${queues[0]![0]}` : `queues ${queues.map(([queue, n]) => `${queue} (${n})`).join(', ')}`;
  return `; ${count} deferred operation${count === 1 ? '' : 's'} in ${where} woken to book again`;
}
