import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { utf8Problem } from '../support/utf8.js';

/**
 * CSV files are UTF-8, and a line that is not is refused by its number rather than read with
 * U+FFFD in place of its bytes. Lines end at `\r\n`, `\r` or `\n` (as csv-parse and spreadsheets
 * count them), across the chunks a file is read in. (JSONL is read by support/json-lines.ts.)
 */

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits chunks of bytes into numbered lines (1, 2, …). Each run of whole lines in a chunk is
 * checked at once; when it is UTF-8 (nearly always) its lines are only counted, else they go line
 * by line to `onBytes`.
 */
class LineSplitter {
  /** The unfinished line's bytes, from earlier chunks. */
  private carry: Buffer[] = [];
  private afterCr = false;
  private number = 0;

  constructor(private readonly onBytes: (number: number, bytes: Buffer) => void) {}

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

  /** Whole lines, each ending with its break, known to be UTF-8: counted. */
  private whole(run: Buffer): void {
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
