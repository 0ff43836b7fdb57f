import { StringDecoder } from 'node:string_decoder';

/**
 * JSON Lines / NDJSON, read as bytes arrive: one JSON value per line, lines end at `\n` (so `\r\n`
 * too, the `\r` being JSON white space; a lone `\r` is white space inside the line, as in JSON),
 * a line that is blank after trimming is skipped but counted, and a UTF-8 BOM (at the start, or at
 * the start of a line after `cat a.jsonl b.jsonl`) is trimmed with the other white space. The CLI's
 * JSONL files and the API's NDJSON bodies are read by this one reader, so they agree line for line.
 */

export type JsonLine = { line: number; value: unknown } | { line: number; error: string };

export interface JsonLineReader {
  /** The lines this chunk completes. A chunk may end anywhere, even inside a UTF-8 character. */
  write(chunk: Uint8Array): JsonLine[];
  /** The last line, when the input does not end with a newline. */
  end(): JsonLine[];
}

export function createJsonLineReader(): JsonLineReader {
  const decoder = new StringDecoder('utf8');
  // The unfinished line in pieces: searching only each new piece for `\n` keeps a long line linear.
  let pieces: string[] = [];
  let line = 0;
  const finish = (out: JsonLine[], last: string) => {
    pieces.push(last);
    const text = pieces.length === 1 ? last : pieces.join('');
    pieces = [];
    line += 1;
    const parsed = parseLine(text, line);
    if (parsed) out.push(parsed);
  };
  return {
    write(chunk) {
      const text = decoder.write(chunk);
      const out: JsonLine[] = [];
      let start = 0;
      for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
        finish(out, text.slice(start, newline));
        start = newline + 1;
      }
      if (start < text.length) pieces.push(text.slice(start));
      return out;
    },
    end() {
      const rest = decoder.end();
      if (rest !== '') pieces.push(rest);
      const out: JsonLine[] = [];
      if (pieces.length > 0) finish(out, '');
      return out;
    },
  };
}

function parseLine(text: string, line: number): JsonLine | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  try {
    return { line, value: JSON.parse(trimmed) };
  } catch (error) {
    return { line, error: (error as Error).message };
  }
}

/** Every line of a byte stream (a file, a request body). */
export async function* readJsonLines(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<JsonLine> {
  const reader = createJsonLineReader();
  for await (const chunk of chunks) yield* reader.write(chunk);
  yield* reader.end();
}
