import { utf8Problem } from './utf8.js';

/**
 * JSON Lines / NDJSON, read as bytes arrive: one JSON value per line, lines end at `\n` (so `\r\n`
 * too, the `\r` being JSON white space; a lone `\r` is white space inside the line, as in JSON),
 * a line that is blank after trimming is skipped but counted, and a UTF-8 BOM (at the start, or at
 * the start of a line after `cat a.jsonl b.jsonl`) is trimmed with the other white space. A line
 * that is not UTF-8 is refused by its number rather than read with U+FFFD in place of its bytes.
 * The CLI's JSONL files and the API's NDJSON bodies are read by this one reader, so they agree line
 * for line.
 */

/** A line's value; or why it has none: not UTF-8 or too long (`whole`: `error` is the whole message), or not JSON (JSON.parse's words). */
export type JsonLine = { line: number; value: unknown } | { line: number; error: string; whole?: true };

export interface JsonLineReader {
  /** The lines this chunk completes. A chunk may end anywhere, even inside a UTF-8 character. */
  write(chunk: Uint8Array): JsonLine[];
  /** The last line, when the input does not end with a newline. */
  end(): JsonLine[];
}

const LF = 0x0a;

/**
 * The longest line read, in bytes (the HTTP API's default body limit): a longer one is an error of
 * its own, read past without being kept, so a file that is not JSON Lines (a JSON array, a
 * pretty-printed document on one line) costs no more memory than this.
 */
export const MAX_LINE_BYTES = 32 * 1024 * 1024;

/** Why a line past MAX_LINE_BYTES is refused. */
export const LINE_TOO_LONG = `longer than ${MAX_LINE_BYTES / 1_048_576} MiB; sluice reads one operation per line (JSON Lines): a JSON array or an indented document is not, convert it with jq -c '.[]' FILE`;

export function createJsonLineReader(options: { maxLineBytes?: number } = {}): JsonLineReader {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  // The unfinished line in pieces: searching only each new piece for `\n` keeps a long line linear.
  // Lines are split as bytes (a `\n` byte never occurs inside a UTF-8 character) and decoded whole.
  let pieces: Buffer[] = [];
  /** Bytes of the unfinished line: kept in `pieces` while within maxLineBytes, dropped past it until its end. */
  let pending = 0;
  let line = 0;
  const finish = (out: JsonLine[], last: Buffer) => {
    line += 1;
    if (pending + last.length > maxLineBytes) {
      out.push({ line, error: LINE_TOO_LONG, whole: true });
    } else {
      pieces.push(last);
      const parsed = parseLine(pieces.length === 1 ? last : Buffer.concat(pieces), line);
      if (parsed) out.push(parsed);
    }
    pieces = [];
    pending = 0;
  };
  return {
    write(chunk) {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const out: JsonLine[] = [];
      let start = 0;
      for (let newline = bytes.indexOf(LF); newline !== -1; newline = bytes.indexOf(LF, start)) {
        finish(out, bytes.subarray(start, newline));
        start = newline + 1;
      }
      if (start < bytes.length) {
        pending += bytes.length - start;
        if (pending <= maxLineBytes) pieces.push(bytes.subarray(start));
        else pieces = [];
      }
      return out;
    },
    end() {
      const out: JsonLine[] = [];
      if (pending > 0) finish(out, Buffer.alloc(0));
      return out;
    },
  };
}

function parseLine(bytes: Buffer, line: number): JsonLine | undefined {
  const notUtf8 = utf8Problem(bytes);
  if (notUtf8 !== undefined) return { line, error: notUtf8, whole: true };
  const trimmed = bytes.toString('utf8').trim();
  if (trimmed === '') return undefined;
  try {
    return { line, value: JSON.parse(trimmed) };
  } catch (error) {
    return { line, error: (error as Error).message };
  }
}
