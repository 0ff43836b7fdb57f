import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Input files are UTF-8, and a line that is not is refused by its number rather than read with
 * U+FFFD in place of its bytes. Lines end at `\r\n`, `\r` or `\n` (as readline, csv-parse and
 * spreadsheets count them), across the chunks a file is read in.
 */

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits chunks of bytes into numbered lines (1, 2, …). Each run of whole lines in a chunk is
 * checked at once and, when it is UTF-8 (nearly always), decoded at once: `onText` gets its lines
 * (when given; else they are only counted). A run with a bad byte goes line by line to `onBytes`.
 */
class LineSplitter {
  /** The unfinished line's bytes, from earlier chunks. */
  private carry: Buffer[] = [];
  private afterCr = false;
  private number = 0;

  constructor(
    private readonly onBytes: (number: number, bytes: Buffer) => void,
    private readonly onText?: (number: number, text: string) => void,
  ) {}

  push(chunk: Buffer): void {
    // A `\n` right after a `\r` that ended the previous chunk belongs to that line break.
    if (this.afterCr && chunk[0] === LF) chunk = chunk.subarray(1);
    this.afterCr = false;
    const last = Math.max(chunk.lastIndexOf(LF), chunk.lastIndexOf(CR));
    if (last === -1) {
      if (chunk.length > 0) this.carry.push(chunk);
      return;
    }
    const run = this.carry.length > 0 ? Buffer.concat([...this.carry, chunk.subarray(0, last + 1)]) : chunk.subarray(0, last + 1);
    this.carry = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
    this.afterCr = chunk[last] === CR && last + 1 === chunk.length;
    if (isUtf8(run)) this.whole(run);
    else this.oneByOne(run);
  }

  /** The last line, when the input does not end with a line break. */
  end(): void {
    if (this.carry.length === 0) return;
    this.number += 1;
    this.onBytes(this.number, Buffer.concat(this.carry));
    this.carry = [];
  }

  /** Whole lines, each ending with its break, known to be UTF-8. */
  private whole(run: Buffer): void {
    if (this.onText) {
      const texts = run.toString('utf8').split(/\r\n|\r|\n/);
      texts.pop(); // after the last break
      for (const text of texts) this.onText((this.number += 1), text);
      return;
    }
    this.forEachLine(run, () => undefined);
  }

  private oneByOne(run: Buffer): void {
    this.forEachLine(run, (number, bytes) => this.onBytes(number, bytes));
  }

  /** Whole lines, each ending with its break: numbered, their bytes without the break. */
  private forEachLine(run: Buffer, each: (number: number, bytes: Buffer) => void): void {
    let start = 0;
    while (start < run.length) {
      const lf = run.indexOf(LF, start);
      const cr = run.indexOf(CR, start);
      const end = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      each((this.number += 1), run.subarray(start, end));
      start = end + (run[end] === CR && run[end + 1] === LF ? 2 : 1);
    }
  }
}

/** Why a line's bytes are not UTF-8 (naming the first bad byte, counted from 1), or undefined. */
export function utf8Problem(bytes: Uint8Array): string | undefined {
  if (isUtf8(bytes)) return undefined;
  return `not valid UTF-8 at byte ${firstInvalidByte(bytes) + 1} of the line; sluice reads UTF-8 only (convert the file, e.g. iconv -f WINDOWS-1252 -t UTF-8)`;
}

/** The offset of the first byte that starts no valid UTF-8 sequence (RFC 3629: no overlongs, surrogates or values past U+10FFFF). */
function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    let size = 0;
    let low = 0x80;
    let high = 0xbf;
    if (lead < 0x80) size = 1;
    else if (lead >= 0xc2 && lead <= 0xdf) size = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      size = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      size = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < size; k += 1) {
      const next = bytes[i + k];
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (next === undefined || next < min || next > max) return i;
    }
    i += size;
  }
  return i;
}

/** A line of a text file: its number, and its text or why it has none. */
export type TextLine = { number: number; text: string; problem?: undefined } | { number: number; text?: undefined; problem: string };

/** The lines of a byte stream, each decoded as UTF-8 or refused. */
export async function* textLines(input: AsyncIterable<Buffer>): AsyncGenerator<TextLine> {
  const ready: TextLine[] = [];
  const splitter = new LineSplitter(
    (number, bytes) => {
      const problem = utf8Problem(bytes);
      ready.push(problem === undefined ? { number, text: bytes.toString('utf8') } : { number, problem });
    },
    (number, text) => ready.push({ number, text }),
  );
  for await (const chunk of input) {
    splitter.push(chunk);
    yield* ready.splice(0);
  }
  splitter.end();
  yield* ready.splice(0);
}

/**
 * Passes bytes through unchanged and notes each line that is not UTF-8 (number → problem). A line
 * is checked before the chunk that ends it moves on, so whoever reads after this stream finds a
 * line's verdict noted once the line has reached it.
 */
export function createUtf8LineCheck(): Transform & { readonly badLines: ReadonlyMap<number, string> } {
  const badLines = new Map<number, string>();
  const splitter = new LineSplitter((number, bytes) => {
    const problem = utf8Problem(bytes);
    if (problem !== undefined) badLines.set(number, problem);
  });
  const check = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      splitter.push(chunk);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      splitter.end();
      done();
    },
  });
  return Object.assign(check, { badLines });
}
