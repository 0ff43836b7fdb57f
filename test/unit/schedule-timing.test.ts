import { describe, expect, it } from 'vitest';
import {
  cronProblem,
  firstTickAt,
  nextTickAt,
  parseEvery,
  runBatchId,
  runStamp,
  tickDecision,
  type Timing,
} from '../../src/schedules/schedule-timing.js';
import { hideRun, parseScheduleSpec, showRun, withRun } from '../../src/schedules/schedule-definition.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('parseEvery', () => {
  it.each([
    ['2s', 2_000],
    ['90', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
  ])('%s → %d ms', (text, ms) => expect(parseEvery(text)).toBe(ms));

  it.each([
    ['500ms', 'at least 1s'],
    ['1.5s', 'expected whole seconds, such as 2s, 15m, 1h or 1d'],
    ['15 minutes', 'expected a duration such as 90s, 5m, 2h or 1d'],
    ['', 'expected a duration such as 90s, 5m, 2h or 1d'],
    ['400d', 'at most 365d'],
  ])('%j is refused: %s', (text, message) => expect(parseEvery(text)).toBe(message));
});

describe('next run of a cron schedule in a time zone (fixed clocks)', () => {
  const berlin = (cron: string): Timing => ({ cron, tz: 'Europe/Berlin' });

  it.each([
    // Spring forward in Berlin, 2026-03-29 02:00 CET → 03:00 CEST: 09:00 local is 08:00Z before, 07:00Z after.
    ['0 9 * * *', '2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z'],
    ['0 9 * * *', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z'],
    // 02:00 does not exist on 2026-03-29: that day's run is at 03:00 CEST (01:00Z), then 02:00 CEST (00:00Z).
    ['0 2 * * *', '2026-03-28T01:00:00.000Z', '2026-03-29T01:00:00.000Z'],
    ['0 2 * * *', '2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z'],
    // Fall back, 2026-10-25 03:00 CEST → 02:00 CET: 09:00 local is 07:00Z before, 08:00Z after.
    ['0 9 * * *', '2026-10-24T07:00:00.000Z', '2026-10-25T08:00:00.000Z'],
    // 02:30 happens twice on 2026-10-25: it runs once (the first, CEST), and next the day after (CET).
    ['30 2 * * *', '2026-10-24T23:59:00.000Z', '2026-10-25T00:30:00.000Z'],
    ['30 2 * * *', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
  ])('%s after %s → %s', (cron, after, next) => {
    expect(iso(nextTickAt(berlin(cron), at(after)))).toBe(next);
  });

  it('without a time zone, cron is UTC', () => {
    expect(iso(nextTickAt({ cron: '0 2 * * *' }, at('2026-03-28T12:00:00Z')))).toBe('2026-03-29T02:00:00.000Z');
  });

  it('an interval ticks on its grid since the epoch', () => {
    expect(iso(nextTickAt({ everyMs: 900_000 }, at('2026-03-28T12:07:10Z')))).toBe('2026-03-28T12:15:00.000Z');
    expect(iso(nextTickAt({ everyMs: 900_000 }, at('2026-03-28T12:15:00Z')))).toBe('2026-03-28T12:30:00.000Z');
    expect(firstTickAt(2_000, at('2026-03-28T12:00:01.200Z'))).toBe(at('2026-03-28T12:00:02Z'));
    expect(firstTickAt(2_000, at('2026-03-28T12:00:02Z'))).toBe(at('2026-03-28T12:00:02Z'));
  });
});

describe('cronProblem', () => {
  it('names the field', () => {
    expect(cronProblem('0 2 * * *', 'Europe/Berlin')).toBeUndefined();
    expect(cronProblem('0 2 * * *', 'Mars/Olympus')).toMatchObject({ field: 'tz' });
    expect(cronProblem('every night', undefined)).toMatchObject({ field: 'cron' });
    expect(cronProblem('61 * * * *', undefined)).toMatchObject({ field: 'cron' });
  });

  it.each([
    ['0 2 * *', 4],
    ['0', 1],
    ['@daily', 1],
    ['0 0 2 * * * *', 7],
  ])('refuses %j, which has %i fields, rather than padding it', (cron, fields) => {
    expect(cronProblem(cron, undefined)).toEqual({
      field: 'cron',
      message: expect.stringContaining(`has ${fields} field`) as unknown as string,
    });
  });

  it('takes 6 fields, seconds first', () => {
    expect(cronProblem('30 0 2 * * *', 'UTC')).toBeUndefined();
  });
});

describe('run names', () => {
  it('is NAME-<tick time in UTC>', () => {
    expect(runStamp(at('2026-11-26T02:00:00Z'))).toBe('20261126T020000Z');
    expect(runStamp(at('2026-11-26T02:00:00.250Z'))).toBe('20261126T020000.250Z');
    expect(runBatchId('nightly-sync', at('2026-11-26T02:00:00Z'))).toBe('nightly-sync-20261126T020000Z');
  });
});

describe('tickDecision', () => {
  const tick = at('2026-11-26T02:00:00Z');
  it.each([
    ['one', 'on time', 0, 86_400_000, 'run'],
    ['one', 'a day late', 86_400_000, 86_400_000, 'run'],
    ['none', 'on time', 100, 86_400_000, 'run'],
    ['none', 'within a minute (daily)', 59_000, 86_400_000, 'run'],
    ['none', 'past a minute (daily)', 61_000, 86_400_000, 'skip'],
    ['none', 'within half the interval (2 s)', 900, 2_000, 'run'],
    ['none', 'past half the interval (2 s)', 1_100, 2_000, 'skip'],
  ] as const)('catchUp %s, %s → %s', (catchUp, _what, lateMs, intervalMs, decision) => {
    expect(tickDecision({ catchUp, tickAtMs: tick, nextTickAtMs: tick + intervalMs, startedAtMs: tick + lateMs })).toBe(decision);
  });
});

describe('schedule specs and {{run}}', () => {
  it('takes cron or every, and names each problem', () => {
    expect(parseScheduleSpec('nightly', { cron: '0 2 * * *', tz: 'Europe/Berlin' })).toMatchObject({ ok: true, catchUp: 'one' });
    expect(parseScheduleSpec('pull', { every: '15m', catchUp: 'none' })).toMatchObject({ ok: true, timing: { everyMs: 900_000 } });
    const bad = parseScheduleSpec('bad name', { cron: '0 2 * * *', every: '1h' });
    expect(bad.ok ? [] : bad.issues.map((issue) => issue.path)).toEqual(['name', 'cron']);
    const zone = parseScheduleSpec('x', { every: '1h', tz: 'UTC' });
    expect(zone.ok ? [] : zone.issues.map((issue) => issue.path)).toEqual(['tz']);
  });

  it('fills in {{run}} only, leaving other placeholders to the worker', () => {
    const operation = { url: '/sync/{{ run }}', idempotencyKey: 'sync-{{run}}-1', paginate: { forEach: { url: '/items/{{item.id}}' } } };
    expect(withRun(operation, 'nightly-20261126T020000Z')).toEqual({
      url: '/sync/nightly-20261126T020000Z',
      idempotencyKey: 'sync-nightly-20261126T020000Z-1',
      paginate: { forEach: { url: '/items/{{item.id}}' } },
    });
  });

  it('hides {{run}} from a CSV row template and shows it again', () => {
    const template = { url: '/contacts/{{id}}', idempotencyKey: 'c-{{id}}-{{run}}' };
    const hidden = hideRun(template) as typeof template;
    expect(hidden.idempotencyKey).not.toContain('{{run}}');
    expect(showRun(hidden)).toEqual(template);
  });
});
