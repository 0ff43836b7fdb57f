import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonlSource, recordsOf, type InputRecord } from '../../src/cli/input-source.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-jsonl-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function read(name: string, content: string | Buffer): Promise<InputRecord[]> {
  const path = join(dir, name);
  await writeFile(path, content);
  const out: InputRecord[] = [];
  for await (const record of recordsOf(createJsonlSource(path))) out.push(record);
  return out;
}

describe('createJsonlSource', () => {
  it('reads lines ending in LF or CRLF, skips blank lines and counts them', async () => {
    expect(await read('mixed.jsonl', '{"a":1}\r\n\r\n  \n{"b":2}\n[3]')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 4, value: { b: 2 } },
      { line: 5, value: [3] },
    ]);
  });

  it('names the line of a line that is not JSON', async () => {
    const records = await read('bad.jsonl', '{"a":1}\n{"a":\n');
    expect(records[1]).toMatchObject({ line: 2, problems: [expect.stringMatching(/^not valid JSON: /)] });
  });

  // Property-based counterexamples (test/property/json-lines.property.test.ts): the CLI read these
  // differently from the API (POST /v1/operations) and from the JSON they hold.
  it('reads a UTF-8 BOM as white space, not as part of line 1', async () => {
    expect(await read('bom.jsonl', '\uFEFF{"a":1}\n{"b":2}\n')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, value: { b: 2 } },
    ]);
  });

  it('reads a lone CR as the JSON white space it is, not as a line end', async () => {
    expect(await read('cr.jsonl', '{"a":\r1}\n{"b":2}\n')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, value: { b: 2 } },
    ]);
  });

  it('trims white space around a line as the API does', async () => {
    expect(await read('nbsp.jsonl', '{"a":1}\u00a0\n')).toEqual([{ line: 1, value: { a: 1 } }]);
  });

  it('reports a last line that ends inside a UTF-8 character rather than dropping the broken bytes', async () => {
    // [0xC0] alone used to be no line at all, and `{"a":1}` + 0xC3 a valid one: both are refused, by their bytes.
    expect(await read('cut.jsonl', Buffer.from([0xc0]))).toMatchObject([
      { line: 1, problems: [expect.stringMatching(/^not valid UTF-8 at byte 1 of the line/)] },
    ]);
    const cut = Buffer.concat([Buffer.from('{"b":2}\n{"a":1}'), Buffer.from([0xc3])]);
    expect(await read('cut2.jsonl', cut)).toMatchObject([
      { line: 1, value: { b: 2 } },
      { line: 2, problems: [expect.stringMatching(/^not valid UTF-8 at byte 8 of the line/)] },
    ]);
  });
});
