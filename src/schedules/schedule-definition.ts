import { z } from 'zod';
import type { QueueKeys } from '../redis/keys.js';
import { type Issue } from '../errors.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { parseOperation, type OperationRules } from '../operation/parse-operation.js';
import { cronProblem, parseEvery, runBatchId, type CatchUp, type Timing } from './schedule-timing.js';

/** A schedule's name: it starts its runs' batch ids (`NAME-20261126T020000Z`), so the same characters. */
export const SCHEDULE_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
export const SCHEDULE_NAME_RULE = 'letters, digits and _ . - only, at most 100';

/** What a caller gives to add a schedule: `cron` (with `tz`) or `every`. */
export interface ScheduleSpec {
  /** A cron expression (5 fields, or 6 with seconds first), e.g. `0 2 * * *`. */
  cron?: string;
  /** IANA time zone of `cron`. Default UTC. */
  tz?: string;
  /** A fixed interval: `2s`, `15m`, `1h`, `1d` (whole seconds). */
  every?: string;
  /** A tick missed while every worker was down: run it once when they come back (`one`, default) or skip it (`none`). */
  catchUp?: CatchUp;
}

/** A schedule as stored (a Redis hash, one field `definition` holding this as JSON). */
export const scheduleDefinitionSchema = z.object({
  name: z.string(),
  cron: z.string().optional(),
  tz: z.string().optional(),
  every: z.string().optional(),
  everyMs: z.number().optional(),
  catchUp: z.enum(['one', 'none']),
  paused: z.boolean(),
  operations: z.number(),
  createdAt: z.string(),
  /** What the operations were read from (a file name), for `schedule show`. */
  source: z.string().optional(),
});
export type ScheduleDefinition = z.infer<typeof scheduleDefinitionSchema>;

/** Checks a spec; the timing it describes, or every problem with it (paths `cron`, `tz`, `every`, `catchUp`). */
export function parseScheduleSpec(
  name: string,
  spec: ScheduleSpec,
): { ok: true; timing: Timing; catchUp: CatchUp } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = [];
  if (!SCHEDULE_NAME.test(name)) issues.push({ path: 'name', message: `${JSON.stringify(name)}: ${SCHEDULE_NAME_RULE}` });
  const catchUp = spec.catchUp ?? 'one';
  if (catchUp !== 'one' && catchUp !== 'none') {
    issues.push({ path: 'catchUp', message: `expected "one" or "none", got ${JSON.stringify(catchUp)}` });
  }
  let timing: Timing | undefined;
  if ((spec.cron === undefined) === (spec.every === undefined)) {
    issues.push({ path: 'cron', message: 'give exactly one of cron (with an optional tz) and every' });
  } else if (spec.every !== undefined) {
    if (spec.tz !== undefined) issues.push({ path: 'tz', message: 'a time zone applies to cron only; every counts from the epoch' });
    const everyMs = parseEvery(spec.every);
    if (typeof everyMs === 'string') issues.push({ path: 'every', message: `${JSON.stringify(spec.every)}: ${everyMs}` });
    else timing = { everyMs };
  } else {
    const problem = cronProblem(spec.cron!, spec.tz);
    if (problem) issues.push({ path: problem.field, message: problem.message });
    else timing = { cron: spec.cron!, tz: spec.tz };
  }
  return issues.length === 0 ? { ok: true, timing: timing!, catchUp } : { ok: false, issues };
}

/** The timing of a stored definition. */
export function timingOf(definition: ScheduleDefinition): Timing {
  return definition.everyMs !== undefined ? { everyMs: definition.everyMs } : { cron: definition.cron!, tz: definition.tz };
}

/** `{{run}}` (spaces allowed inside the braces) in any string of an operation. Other placeholders are left alone. */
const RUN_PLACEHOLDER = /\{\{\s*run\s*\}\}/g;

/** The operation of one run: every `{{run}}` replaced by the run's batch id. */
export function withRun(operation: unknown, run: string): unknown {
  return mapStrings(operation, (text) => (text.includes('{{') ? text.replace(RUN_PLACEHOLDER, run) : text));
}

/**
 * A CSV row template's `{{run}}` is a schedule's, not a column: hidden from the row template (which
 * would look for a column named run) and shown again in each rendered operation.
 */
const HIDDEN_RUN = '\u0000run\u0000';
export function hideRun(template: unknown): unknown {
  return mapStrings(template, (text) => (text.includes('{{') ? text.replace(RUN_PLACEHOLDER, HIDDEN_RUN) : text));
}
export function showRun(operation: unknown): unknown {
  return mapStrings(operation, (text) => (text.includes(HIDDEN_RUN) ? text.replaceAll(HIDDEN_RUN, '{{run}}') : text));
}

function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((entry) => mapStrings(entry, map));
  if (value !== null && typeof value === 'object') {
    // fromEntries, not assignment: a "__proto__" key stays a key.
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, mapStrings(entry, map)]));
  }
  return value;
}

/** A run id to validate operations with at `schedule add`, shaped like a real one. */
export function sampleRun(name: string): string {
  return runBatchId(name, Date.UTC(2026, 0, 1));
}

/** The keys of one schedule. */
export function scheduleKeys(keys: QueueKeys, name: string) {
  return {
    definition: keys.schedule(name),
    operations: keys.scheduleOperations(name),
    runs: keys.scheduleRuns(name),
    runData: keys.scheduleRunData(name),
  };
}

/**
 * Each operation checked as a run enqueues it (`{{run}}` filled in with `run`), against `config`:
 * every problem, by `operations[i].path`. `onOperation` sees each one as it is read (unfilled).
 */
export async function operationIssues(
  operations: Iterable<unknown> | AsyncIterable<unknown>,
  config: SluiceConfig,
  run: string,
  onOperation?: (operation: unknown) => void,
  rules: OperationRules = {},
): Promise<Issue[]> {
  const issues: Issue[] = [];
  let index = 0;
  for await (const operation of operations) {
    const parsed = parseOperation(withRun(operation, run), config, rules);
    if (!parsed.ok) {
      issues.push(
        ...parsed.issues.map((issue) => ({ path: `operations[${index}]${issue.path ? `.${issue.path}` : ''}`, message: issue.message })),
      );
    }
    onOperation?.(operation);
    index += 1;
  }
  return issues;
}
