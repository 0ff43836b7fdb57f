import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonlBatchesOf, type InputRecord } from '../../src/cli/input-source.js';
import { flatten } from '../../src/support/batches.js';
import { readNdjson } from '../../src/server/routes/operations.js';
import { createJsonLineReader, type JsonLine } from '../../src/support/json-lines.js';

/**
 * JSONL (`sluice enqueue`) and NDJSON (`POST /v1/operations`): the same bytes, split into chunks
 * anywhere (inside a CRLF, inside a UTF-8 character), give the same items and the same errors on
 * the same line numbers as the text read whole, line by line at each `\n`; and the CLI and the API
 * agree. Inputs mix JSON values, blank lines, text that may or may not be JSON, CRLF and LF, lone
 * CRs (JSON white space), a BOM, multi-byte characters and long lines.
 */

type Line = { kind: 'json'; value: unknown; text: string } | { kind: 'blank'; text: string } | { kind: 'text'; text: string };

const pad = fc.constantFrom('', ' ', '\t', '\r', ' \r ', '\u00a0');
const jsonLine: fc.Arbitrary<Line> = fc.tuple(fc.jsonValue({ maxDepth: 3 }), pad, pad).map(([value, before, after]) => {
  const text = JSON.stringify(value);
  // What the text says (JSON has no -0).
  return { kind: 'json', value: JSON.parse(text) as unknown, text: `${before}${text}${after}` };
});
const blankLine: fc.Arbitrary<Line> = fc.constantFrom('', ' ', '\t', '\r', ' \t ', '\uFEFF').map((text) => ({ kind: 'blank', text }));
const textLine: fc.Arbitrary<Line> = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.string({ unit: fc.constantFrom(...'{}[]":,0123 truefalsn\\\r\t'), maxLength: 30 }),
  )
  .map((text) => ({ kind: 'text', text: text.replaceAll('\n', ' ') }));

interface Input {
  lines: Line[];
  crlf: boolean[];
  lastNewline: boolean;
  bom: boolean;
}

const input = (line: fc.Arbitrary<Line>, maxLines: number): fc.Arbitrary<Input> =>
  fc.record({
    lines: fc.array(line, { minLength: 1, maxLength: maxLines }),
    crlf: fc.array(fc.boolean(), { minLength: maxLines, maxLength: maxLines }),
    lastNewline: fc.boolean(),
    bom: fc.boolean(),
  });
const anyLine = fc.oneof({ weight: 3, arbitrary: jsonLine }, blankLine, textLine);

function textOf({ lines, crlf, lastNewline, bom }: Input): string {
  const ends = lines.map((_, index) => (index < lines.length - 1 || lastNewline ? (crlf[index] ? '\r\n' : '\n') : ''));
  return (bom ? '\uFEFF' : '') + lines.map((line, index) => line.text + ends[index]).join('');
}

/** What reading it whole must give: line n is the text before the n-th `\n`. */
function expectedOf({ lines }: Input): JsonLine[] {
  const out: JsonLine[] = [];
  lines.forEach((line, index) => {
    if (line.kind === 'blank') return;
    if (line.kind === 'json') {
      out.push({ line: index + 1, value: line.value });
      return;
    }
    const trimmed = line.text.trim();
    if (trimmed === '') return;
    try {
      out.push({ line: index + 1, value: JSON.parse(trimmed) });
    } catch (error) {
      out.push({ line: index + 1, error: (error as Error).message });
    }
  });
  return out;
}

/** The bytes cut at the given offsets (any offset: inside a CRLF or a UTF-8 character too). */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const offset of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(from, offset));
    from = offset;
  }
  return chunks;
}
const cuts = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.nat(), { maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constant('every byte' as const) },
);
const cutsFor = (bytes: Buffer, chosen: number[] | 'every byte') =>
  chosen === 'every byte' ? Array.from({ length: bytes.length }, (_, index) => index) : chosen;

async function* stream(chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

function readerLines(chunks: Buffer[]): JsonLine[] {
  const reader = createJsonLineReader();
  return [...chunks.flatMap((chunk) => reader.write(chunk)), ...reader.end()];
}

/** A reader's line back from the message a reader of it gives: a line that is not UTF-8 is named so whole; one that is not JSON, after `jsonPrefix`. */
function problemLine(line: number, message: string, jsonPrefix: RegExp): JsonLine {
  return message.startsWith('not valid UTF-8') ? { line, error: message, whole: true } : { line, error: message.replace(jsonPrefix, '') };
}

async function cliLines(chunks: Buffer[]): Promise<JsonLine[]> {
  const out: JsonLine[] = [];
  for await (const record of flatten(jsonlBatchesOf(stream(chunks))) as AsyncIterable<InputRecord>) {
    out.push(
      record.problems ? problemLine(record.line, record.problems[0]!, /^not valid JSON: /) : { line: record.line, value: record.value },
    );
  }
  return out;
}

async function apiLines(chunks: Buffer[]): Promise<JsonLine[]> {
  const items = await readNdjson(stream(chunks), Number.MAX_SAFE_INTEGER);
  return items.map((item) =>
    item.parseError ? problemLine(item.line!, item.parseError, /^not JSON: /) : { line: item.line!, value: item.value },
  );
}

describe('JSON lines, property-based', () => {
  it('reads the same items, errors and line numbers however the bytes are split, in the CLI and the API alike', async () => {
    await fc.assert(
      fc.asyncProperty(input(anyLine, 12), cuts, async (generated, chosen) => {
        const bytes = Buffer.from(textOf(generated), 'utf8');
        const chunks = chunked(bytes, cutsFor(bytes, chosen));
        const expected = expectedOf(generated);
        expect(readerLines(chunks)).toEqual(expected);
        expect(await cliLines(chunks)).toEqual(expected);
        expect(await apiLines(chunks)).toEqual(expected);
      }),
      { numRuns: 1_000 },
    );
  });

  it('reads lines far longer than a chunk, whole', async () => {
    const longLine: fc.Arbitrary<Line> = fc
      .tuple(fc.integer({ min: 1, max: 300_000 }), fc.constantFrom('x', 'é', '€', '😀'))
      .map(([length, char]) => {
        const value = { text: char.repeat(length) };
        return { kind: 'json', value, text: JSON.stringify(value) };
      });
    await fc.assert(
      fc.asyncProperty(
        input(fc.oneof(longLine, jsonLine, blankLine), 4),
        fc.array(fc.nat(), { maxLength: 40 }),
        async (generated, chosen) => {
          const bytes = Buffer.from(textOf(generated), 'utf8');
          const chunks = chunked(bytes, chosen);
          const expected = expectedOf(generated);
          expect(readerLines(chunks)).toEqual(expected);
          expect(await apiLines(chunks)).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never throws on arbitrary bytes, and numbers lines by their newlines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 6 }), async (raw, chosen) => {
        const bytes = Buffer.from(raw);
        const whole = readerLines([bytes]);
        const newlines = bytes.filter((byte) => byte === 0x0a).length;
        expect(readerLines(chunked(bytes, chosen))).toEqual(whole);
        expect(await cliLines(chunked(bytes, chosen))).toEqual(whole);
        for (const item of whole) expect(item.line).toBeLessThanOrEqual(newlines + 1);
      }),
      { numRuns: 2_000 },
    );
  });
});
