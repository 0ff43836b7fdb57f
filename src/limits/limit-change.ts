import type { Issue } from '../errors.js';
import type { LimitChange } from './limits-admin.js';

/** A limit change as people write it: `sluice limits set` options, or the API's `PUT /v1/limits/:key` body. */
export interface LimitChangeInput {
  rps?: string | number | undefined;
  rpm?: string | number | undefined;
  burst?: string | number | undefined;
  concurrency?: string | number | undefined;
  /** `90`, `90s`, `5m`, `2h`, `1d`: the override is temporary. */
  ttl?: string | number | undefined;
}

/** A problem with one field (`field` set) or with the change as a whole. */
export interface LimitChangeIssue extends Issue {
  field?: keyof LimitChangeInput;
}

export type ParsedLimitChange = { ok: true; change: LimitChange; ttlMs: number } | { ok: false; issues: LimitChangeIssue[] };

/** Bounds of what a limit can be set to: beyond them a value is a typo, not a limit. */
const MAX_RATE = 100_000;
const MAX_COUNT = 100_000;
const MAX_TTL_MS = 365 * 86_400_000;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Checks a limit change and turns it into what the limits admin takes (rates per second, ttl in ms).
 * `name` says how a field is called where the input came from (`--rps` on the command line, `rps`
 * in the API), so every message names what the user wrote.
 */
export function parseLimitChange(
  input: LimitChangeInput,
  name: (field: keyof LimitChangeInput) => string = (field) => field,
): ParsedLimitChange {
  const issues: LimitChangeIssue[] = [];
  const change: LimitChange = {};
  const number = (field: keyof LimitChangeInput, whole: boolean, max: number, min = 0): number | undefined => {
    const raw = input[field];
    if (raw === undefined) return undefined;
    const n = typeof raw === 'number' ? raw : raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(n) || n <= 0) issues.push({ field, path: name(field), message: 'expected a number above 0' });
    else if (whole && !Number.isInteger(n)) issues.push({ field, path: name(field), message: 'expected a whole number' });
    else if (n > max) issues.push({ field, path: name(field), message: `at most ${max}` });
    else if (n < min) issues.push({ field, path: name(field), message: 'at least one request a day' });
    else return n;
    return undefined;
  };
  if (input.rps !== undefined && input.rpm !== undefined)
    issues.push({ path: '', message: `give ${name('rps')} or ${name('rpm')}, not both` });
  // One request a day at the slowest: below that a slot is longer than anything is kept in Redis.
  const rps = number('rps', false, MAX_RATE, 1 / 86_400);
  const rpm = number('rpm', false, MAX_RATE * 60, 1 / 1_440);
  if (rps !== undefined) change.rate = rps;
  if (rpm !== undefined) change.rate = rpm / 60;
  const burst = number('burst', true, MAX_COUNT);
  if (burst !== undefined) change.burst = burst;
  const concurrency = number('concurrency', true, MAX_COUNT);
  if (concurrency !== undefined) change.concurrency = concurrency;
  if (issues.length === 0 && Object.keys(change).length === 0) {
    issues.push({ path: '', message: `give at least one of ${(['rps', 'rpm', 'burst', 'concurrency'] as const).map(name).join(', ')}` });
  }
  let ttlMs = 0;
  if (input.ttl !== undefined) {
    const parsed = parseDuration(String(input.ttl));
    if (typeof parsed === 'string') issues.push({ field: 'ttl', path: name('ttl'), message: parsed });
    else ttlMs = parsed;
  }
  return issues.length ? { ok: false, issues } : { ok: true, change, ttlMs };
}

/** `90`, `90s`, `5m`, `2h`, `1d` → milliseconds (at least 1 s), or what is wrong with it. */
export function parseDuration(text: string): number | string {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return 'expected a duration such as 90s, 5m, 2h or 1d';
  const ms = Number(match[1]) * UNITS[match[2] ?? 's']!;
  if (ms < 1_000) return 'at least 1s';
  if (ms > MAX_TTL_MS) return 'at most 365d';
  return Math.round(ms);
}
