import { describe, expect, it } from 'vitest';
import { describeRun } from '../../src/cli/commands/schedule.js';

const run = { batchId: 'gone-20261207T223044Z', tickAt: '2026-12-07T22:30:44Z', startedAt: '2026-12-07T22:30:44Z' };

describe('schedule show: one run', () => {
  it('a failed run that wrote nothing has no batch (not an expired one)', () => {
    const failed = { ...run, status: 'failed' as const, enqueued: 0, duplicates: 0, alreadyEnqueued: 0, error: 'invalid operations' };
    expect(describeRun(failed)).toBe('gone-20261207T223044Z  enqueued 0; no batch  FAILED: invalid operations');
  });

  it('a run that wrote operations and whose batch is gone says it expired; one whose batch is kept shows its counters', () => {
    const written = { ...run, status: 'enqueued' as const, enqueued: 3, duplicates: 1, alreadyEnqueued: 0 };
    expect(describeRun(written)).toBe('gone-20261207T223044Z  enqueued 3, 1 duplicates; batch expired');
    const batch = {
      batchId: run.batchId,
      total: 4,
      succeeded: 2,
      deadLettered: 1,
      pending: 1,
      duplicates: 1,
      retries: 0,
      enqueuing: false,
    };
    expect(describeRun({ ...written, batch })).toBe(
      'gone-20261207T223044Z  enqueued 3, 1 duplicates; batch: 4 total, 2 succeeded, 1 dead-lettered, 1 pending',
    );
  });
});
