/**
 * A result line as its batch keeps it (outcomes/result-line.ts): without what its field and its job
 * id give back, read back whole, and a whole line of an older version read as it is.
 */
import { describe, expect, it } from 'vitest';
import { readResultLine, storedResultLine, type ResultLine } from '../../src/outcomes/result-line.js';

const succeeded: ResultLine = {
  id: 'l-75ba5f74def556efdf38d4ee-58',
  jobId: 'l-75ba5f74def556efdf38d4ee-58',
  idempotencyKey: 'sluice-l-75ba5f74def556efdf38d4ee-58',
  outcome: 'succeeded',
  attempts: 1,
  status: 200,
  durationMs: 11,
  result: { headers: { contentType: 'application/json' }, body: { ok: true }, bodyBytes: 11, bodyTruncated: false },
};

describe('result lines as a batch keeps them', () => {
  it('leaves out the id, a job id that is the id and the key made from it; read back whole, in the same order', () => {
    const stored = storedResultLine(succeeded);
    expect(JSON.parse(stored)).toEqual({ outcome: 'succeeded', attempts: 1, status: 200, durationMs: 11, result: succeeded.result });
    expect(stored.length).toBeLessThan(JSON.stringify(succeeded).length * 0.65);
    const read = readResultLine(succeeded.id, stored);
    expect(read).toEqual(succeeded);
    expect(JSON.stringify(read)).toBe(JSON.stringify(succeeded));
  });

  it('keeps a job id other than the id (a replay, a duplicate) and a key the operation gave', () => {
    const replayed: ResultLine = { ...succeeded, id: 'op-1', jobId: 'op-1.r2', idempotencyKey: 'sluice-op-1' };
    const keyed: ResultLine = { ...succeeded, id: 'k-0a1b', jobId: 'k-0a1b', idempotencyKey: 'order-7' };
    const duplicate: ResultLine = {
      id: 'd-9f00',
      jobId: 'k-0a1b',
      idempotencyKey: 'order-7',
      outcome: 'duplicate',
      attempts: 0,
      meta: { row: 4 },
      duplicateOf: 'k-0a1b',
      duplicateOfBatch: 'b-1',
    };
    expect(JSON.parse(storedResultLine(replayed))).toMatchObject({ jobId: 'op-1.r2', idempotencyKey: 'sluice-op-1' });
    expect(JSON.parse(storedResultLine(keyed))).toMatchObject({ idempotencyKey: 'order-7' });
    expect(JSON.parse(storedResultLine(keyed))).not.toHaveProperty('jobId');
    for (const line of [replayed, keyed, duplicate]) expect(readResultLine(line.id, storedResultLine(line))).toEqual(line);
  });

  it('reads a whole line (as versions before this one wrote it) as it is', () => {
    expect(readResultLine(succeeded.id, JSON.stringify(succeeded))).toEqual(succeeded);
    const replayed = { ...succeeded, jobId: 'x.r1' };
    expect(readResultLine(succeeded.id, JSON.stringify(replayed))).toEqual(replayed);
  });
});
