import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsvSource } from '../../src/cli/csv-source.js';
import { createJsonlSource, recordsOf, type InputRecord, type InputSource } from '../../src/cli/input-source.js';
import { createJsonLineReader, LINE_TOO_LONG, MAX_LINE_BYTES, type JsonLine } from '../../src/support/json-lines.js';
import { utf8Problem } from '../../src/support/utf8.js';
import { UsageError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-text-lines-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function linesOf(bytes: Buffer, chunkSize: number, maxLineBytes?: number): Promise<JsonLine[]> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
  const reader = createJsonLineReader(maxLineBytes === undefined ? {} : { maxLineBytes });
  const out: JsonLine[] = [];
  for await (const chunk of Readable.from(chunks) as AsyncIterable<Buffer>) out.push(...reader.write(chunk));
  return [...out, ...reader.end()];
}

async function records(source: InputSource): Promise<InputRecord[]> {
  const out: InputRecord[] = [];
  for await (const record of recordsOf(source)) out.push(record);
  return out;
}

/** 0xFF and 0xE9 (Latin-1 é) are never UTF-8. */
const LATIN1_E = Buffer.from([0xe9]);

describe('a JSON line past the longest read', () => {
  it('is an error of its own, named by its number, whatever the chunks; the lines around it are read', async () => {
    const bytes = Buffer.from(`"short"\n"${'x'.repeat(30)}"\n"ok"\n"${'y'.repeat(20)}"`);
    for (const chunkSize of [1, 4, 7, 64]) {
      expect(await linesOf(bytes, chunkSize, 16)).toEqual([
        { line: 1, value: 'short' },
        { line: 2, error: LINE_TOO_LONG, whole: true },
        { line: 3, value: 'ok' },
        // The last line, with no newline after it, too.
        { line: 4, error: LINE_TOO_LONG, whole: true },
      ]);
    }
    // Exactly the longest is read.
    expect(await linesOf(Buffer.from(`"${'z'.repeat(14)}"`), 5, 16)).toEqual([{ line: 1, value: 'z'.repeat(14) }]);
  });

  it("says what the input may be instead: 32 MiB by default, the HTTP API's body limit", () => {
    expect(MAX_LINE_BYTES).toBe(32 * 1024 * 1024);
    expect(LINE_TOO_LONG).toBe(
      "longer than 32 MiB; sluice reads one operation per line (JSON Lines): a JSON array or an indented document is not, convert it with jq -c '.[]' FILE",
    );
  });
});

describe('JSON lines that are not UTF-8', () => {
  it('numbers lines from 1 and refuses the one that is not UTF-8 by its number, whatever the chunks', async () => {
    const bytes = Buffer.concat([Buffer.from('"one"\r\n"two €"\n3\n\n"caf'), LATIN1_E, Buffer.from('"\r\n"six 😀 end"')]);
    const expected = [
      { line: 1, value: 'one' },
      { line: 2, value: 'two €' },
      { line: 3, value: 3 },
      { line: 5, whole: true, error: expect.stringMatching(/^not valid UTF-8 at byte 5 of the line; sluice reads UTF-8 only/) },
      { line: 6, value: 'six 😀 end' },
    ];
    for (const chunkSize of [1, 2, 3, 5, 1_000]) expect(await linesOf(bytes, chunkSize), `chunks of ${chunkSize}`).toEqual(expected);
  });

  it('names the first bad byte: overlongs, surrogates, cut sequences and stray continuation bytes are not UTF-8', () => {
    expect(utf8Problem(Buffer.from('plain ascii, € and 😀'))).toBeUndefined();
    const at = (bytes: number[]) => /at byte (\d+)/.exec(utf8Problem(Buffer.from(bytes)) ?? '')?.[1];
    expect(at([0x61, 0xc0, 0xaf])).toBe('2'); // overlong "/"
    expect(at([0x61, 0x62, 0xed, 0xa0, 0x80])).toBe('3'); // a UTF-16 surrogate
    expect(at([0xe2, 0x82])).toBe('1'); // "€" cut short
    expect(at([0x61, 0x80])).toBe('2'); // a continuation byte alone
    expect(at([0xf4, 0x90, 0x80, 0x80])).toBe('1'); // past U+10FFFF
  });
});

describe('an input read in batches', () => {
  it('gives the records a chunk at a time, the same as one by one, and opens the file only when read (one gone by then fails that read)', async () => {
    const path = join(dir, 'batches.jsonl');
    // About 3 chunks of 64 KiB.
    await writeFile(
      path,
      Array.from({ length: 3_000 }, (_, i) => `{"method":"GET","url":"https://x.test/${i}","meta":"${'y'.repeat(40)}"}\n`).join(''),
    );
    const source = createJsonlSource(path);
    const batches: InputRecord[][] = [];
    for await (const batch of source.batches()) batches.push([...batch]);
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toEqual(await records(source));
    expect(batches.flat().map((record) => record.line)).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1));

    // Asked for, not read yet: the file is not opened, so its removal is an error of the read, not an uncaught one.
    const later = source.batches();
    await rm(path);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(async () => {
      for await (const batch of later) expect(batch).toBeUndefined();
    }).rejects.toThrow(/ENOENT/);
  });
});

describe('input files that are not UTF-8', () => {
  it('JSONL: the line is refused by number, across 64 KiB chunk boundaries, instead of read with U+FFFD', async () => {
    // About 70 KB of lines; a "€" straddles the first 64 KiB boundary; line 900 holds a Latin-1 é.
    const lines = Array.from({ length: 1_000 }, (_, i) =>
      Buffer.from(`{"method":"GET","url":"https://x.test/${i}","meta":"${'x'.repeat(40)}€"}`),
    );
    lines[899] = Buffer.concat([Buffer.from('{"method":"GET","url":"https://x.test/caf'), LATIN1_E, Buffer.from('"}')]);
    const path = join(dir, 'latin1.jsonl');
    await writeFile(path, Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')])));

    const read = await records(createJsonlSource(path));
    expect(read).toHaveLength(1_000);
    const refused = read.filter((record) => record.problems);
    expect(refused).toEqual([{ line: 900, problems: [expect.stringMatching(/^not valid UTF-8 at byte 42 of the line/)] }]);
    expect(JSON.stringify(read.map((record) => record.value))).not.toContain('\uFFFD');
  });

  it('CSV: the row is refused, naming its text line when a multi-line field comes before; a bad header stops the read', async () => {
    const template = { method: 'POST', url: '/c/{{id}}', target: 't', json: { name: '{{name}}' } };
    const filler = Array.from({ length: 2_000 }, (_, i) => `${i + 10},name ${'y'.repeat(30)} €\r\n`).join('');
    const csv = Buffer.concat([
      Buffer.from('\uFEFFid,name\r\n1,"two\r\nlines"\r\n2,caf'),
      LATIN1_E,
      Buffer.from(`\r\n3,"ok"\r\n${filler}4,end `),
      LATIN1_E,
      Buffer.from('\r\n'),
    ]);
    const path = join(dir, 'latin1.csv');
    await writeFile(path, csv);
    const source = createCsvSource(path, { name: 'latin1.csv', template, templateName: 'op.json' });

    const refused = (await records(source)).filter((record) => record.problems);
    expect(refused.map((record) => [source.where(record), record.problems])).toEqual([
      ['latin1.csv line 3 (text line 4)', [expect.stringMatching(/^not valid UTF-8 at byte 6 of text line 4;/)]],
      ['latin1.csv line 2005 (text line 2006)', [expect.stringMatching(/^not valid UTF-8 at byte 7 of text line 2006;/)]],
    ]);

    const badHeader = join(dir, 'bad-header.csv');
    await writeFile(badHeader, Buffer.concat([Buffer.from('id,nam'), LATIN1_E, Buffer.from('\n1,x\n')]));
    const reading = records(createCsvSource(badHeader, { name: 'bad-header.csv', template, templateName: 'op.json' }));
    await expect(reading).rejects.toThrow(UsageError);
    await expect(records(createCsvSource(badHeader, { name: 'bad-header.csv', template, templateName: 'op.json' }))).rejects.toThrow(
      /^bad-header\.csv line 1 \(the header\): not valid UTF-8 at byte 7 of the line/,
    );
  });
});
