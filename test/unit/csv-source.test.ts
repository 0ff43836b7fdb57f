import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsvSource } from '../../src/cli/csv-source.js';
import { recordsOf, type InputRecord } from '../../src/cli/input-source.js';
import { UsageError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-csv-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const template = { method: 'POST', url: '/c/{{id}}', json: { name: '{{name}}' } };

async function read(name: string, content: string | Buffer, op: unknown = template): Promise<{ where: string; record: InputRecord }[]> {
  const path = join(dir, name);
  await writeFile(path, content);
  const source = createCsvSource(path, { name, template: op, templateName: 'op.json' });
  const out: { where: string; record: InputRecord }[] = [];
  for await (const record of recordsOf(source)) out.push({ where: source.where(record), record });
  return out;
}

describe('createCsvSource', () => {
  it('reads a BOM, CRLF, quoted commas, doubled quotes and multi-line fields; numbers rows as a spreadsheet does', async () => {
    const csv = '\uFEFFid,name\r\n1,"Lovelace, Ada"\r\n2,"multi\r\nline ""quoted"""\r\n\r\n,\r\n3,plain\r\n';
    const records = await read('mixed.csv', csv);
    expect(records.map(({ where, record }) => [where, record.value])).toEqual([
      ['mixed.csv line 2', { method: 'POST', url: '/c/1', json: { name: 'Lovelace, Ada' }, meta: { id: '1', name: 'Lovelace, Ada' } }],
      [
        'mixed.csv line 3 (text lines 3–4)',
        { method: 'POST', url: '/c/2', json: { name: 'multi\r\nline "quoted"' }, meta: { id: '2', name: 'multi\r\nline "quoted"' } },
      ],
      // Line 4 is blank and line 5 has only empty cells: both skipped, both counted.
      ['mixed.csv line 6 (text line 7)', { method: 'POST', url: '/c/3', json: { name: 'plain' }, meta: { id: '3', name: 'plain' } }],
    ]);
  });

  it('a row with the wrong number of fields is one invalid record; reading goes on', async () => {
    const records = await read('count.csv', 'id,name\n1,a\n2\n3,c,extra\n4,d\n');
    expect(records.map(({ where, record }) => [where, record.problems ?? 'ok'])).toEqual([
      ['count.csv line 2', 'ok'],
      ['count.csv line 3', ['expected 2 fields (id, name), found 1']],
      ['count.csv line 4', ['expected 2 fields (id, name), found 3']],
      ['count.csv line 5', 'ok'],
    ]);
  });

  it.each([
    [
      'unclosed.csv',
      'id,name\n1,a\n\n2,"never closed\n3,c\n',
      'unclosed.csv line 4',
      'malformed CSV: a quoted field that starts in this row is never closed (the file ends inside it)',
    ],
    [
      'closing.csv',
      'id,name\n1,"a\nb"\n2,"b"x\n3,c\n',
      'closing.csv line 3 (text line 4)',
      'malformed CSV: text after the closing quote of a field (write a quote inside a quoted field as "")',
    ],
    [
      'opening.csv',
      'id,name\n1,a"b\n',
      'opening.csv line 2',
      'malformed CSV: a quote inside a field that is not quoted (quote the whole field and write the quote as "")',
    ],
  ])('%s: malformed CSV stops the read at the row it starts in', async (name, csv, where, problem) => {
    const records = await read(name, csv);
    const last = records.at(-1);
    expect(last?.record.fatal).toBe(true);
    expect(last?.where).toBe(where);
    expect(last?.record.problems).toEqual([problem]);
  });

  it('a placeholder naming no column fails on the header, before any row is read', async () => {
    await expect(read('unknown.csv', 'id,Name\n1,a\n', { method: 'GET', url: '/{{id}}/{{name}}' })).rejects.toThrow(
      new UsageError('op.json with unknown.csv: {{name}} names no column of the CSV header; its columns: id, Name'),
    );
  });

  it('an empty file has no header', async () => {
    await expect(read('empty.csv', '')).rejects.toThrow('empty.csv is empty: a CSV needs a header row naming its columns');
  });
});
