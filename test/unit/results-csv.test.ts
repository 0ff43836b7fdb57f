import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { writeResultsCsv } from '../../src/cli/results-csv.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';

async function* stream(lines: ResultLine[]): AsyncGenerator<ResultLine> {
  for (const line of lines) yield line;
}

async function exportCsv(lines: ResultLine[]): Promise<{ text: string; count: number; ended: boolean }> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const count = await writeResultsCsv(stream(lines), out);
  return { text, count, ended: out.writableEnded };
}

const base = { jobId: 'j', idempotencyKey: 'k', attempts: 1 } as const;

describe('writeResultsCsv', () => {
  it('writes the union of meta keys first, then the result columns; nested meta as JSON; the stream stays open', async () => {
    const { text, count, ended } = await exportCsv([
      {
        ...base,
        id: 'op-1',
        meta: { id: '17', email: 'a@x.test' },
        outcome: 'succeeded',
        status: 201,
        durationMs: 12,
        finishedAt: '2026-12-07T08:50:48.874Z',
      },
      {
        ...base,
        id: 'op-2',
        meta: { id: '18', tags: ['a', 'b'], note: 'multi\nline, "quoted"' },
        outcome: 'deadLettered',
        status: 422,
        attempts: 1,
        reason: 'permanent-status',
        error: 'target answered HTTP 422',
      },
      { ...base, id: 'op-3', meta: 'row-3', outcome: 'succeeded', status: 200 },
    ]);
    expect(count).toBe(3);
    expect(ended).toBe(false);
    const rows = parse(text) as string[][];
    expect(rows).toEqual([
      ['meta.id', 'email', 'tags', 'note', 'meta', 'id', 'outcome', 'status', 'attempts', 'durationMs', 'reason', 'error', 'finishedAt'],
      ['17', 'a@x.test', '', '', '', 'op-1', 'succeeded', '201', '1', '12', '', '', '2026-12-07T08:50:48.874Z'],
      [
        '18',
        '',
        '["a","b"]',
        'multi\nline, "quoted"',
        '',
        'op-2',
        'deadLettered',
        '422',
        '1',
        '',
        'permanent-status',
        'target answered HTTP 422',
        '',
      ],
      ['', '', '', '', 'row-3', 'op-3', 'succeeded', '200', '1', '', '', '', ''],
    ]);
  });

  it("marks sluice's text that a spreadsheet would run as a formula; meta, the user's own data, is written unchanged", async () => {
    const { text } = await exportCsv([
      {
        ...base,
        id: 'op-1',
        meta: { phone: '+44 20 7946 0000', delta: '-5', f: '=1+1' },
        outcome: 'deadLettered',
        reason: 'internal-error',
        error: '=HYPERLINK("http://evil.test")',
      },
    ]);
    const [header, row] = parse(text) as string[][];
    expect(header).toEqual(['phone', 'delta', 'f', 'id', 'outcome', 'status', 'attempts', 'durationMs', 'reason', 'error', 'finishedAt']);
    expect(row).toEqual([
      '+44 20 7946 0000',
      '-5',
      '=1+1',
      'op-1',
      'deadLettered',
      '',
      '1',
      '',
      'internal-error',
      `'=HYPERLINK("http://evil.test")`,
      '',
    ]);
  });

  it('a batch with duplicates gets duplicateOf and firstOutcome columns', async () => {
    const { text } = await exportCsv([
      { ...base, id: 'k-1', meta: { row: '1' }, outcome: 'succeeded', status: 200 },
      {
        ...base,
        id: 'd-k-0',
        jobId: 'k-0',
        meta: { row: '2' },
        outcome: 'duplicate',
        attempts: 0,
        duplicateOf: 'k-0',
        duplicateOfBatch: 'first',
        firstOutcome: 'deadLettered',
      },
    ]);
    expect(parse(text)).toEqual([
      ['row', 'id', 'outcome', 'status', 'attempts', 'durationMs', 'reason', 'error', 'finishedAt', 'duplicateOf', 'firstOutcome'],
      ['1', 'k-1', 'succeeded', '200', '1', '', '', '', '', '', ''],
      ['2', 'd-k-0', 'duplicate', '', '0', '', '', '', '', 'k-0', 'deadLettered'],
    ]);
  });

  it('no results: the header alone', async () => {
    const { text, count } = await exportCsv([]);
    expect(count).toBe(0);
    expect(text).toBe('id,outcome,status,attempts,durationMs,reason,error,finishedAt\n');
  });
});
