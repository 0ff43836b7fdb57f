import { createReadStream, type ReadStream } from 'node:fs';
import { createJsonLineReader, type JsonLine } from '../support/json-lines.js';
import { flatten } from '../support/batches.js';

/** One operation read from an input file, before it is validated. */
export interface InputRecord {
  /** Its number in the input (a JSONL line; a CSV row, header = 1); unique, the same in both passes. */
  line: number;
  /** For a CSV row spread over several lines of text (a quoted field with newlines): those lines. */
  textLines?: readonly [number, number];
  /** The operation as read. Absent when the record could not be read. */
  value?: unknown;
  /** Why it could not be read (not UTF-8, not JSON, wrong number of fields, malformed CSV). */
  problems?: readonly string[];
  /** Reading stops here: what follows cannot be trusted (a malformed CSV). */
  fatal?: boolean;
  /** Where the value at an operation path came from (` (column age: "x")`), added to its message. */
  explain?: (path: string) => string;
}

/** An input file read twice by `sluice enqueue`: once to validate, once to enqueue. */
export interface InputSource {
  /** What the input is made of, for summaries: `3 of 10 lines`, `3 of 10 rows`. */
  readonly unit: 'lines' | 'rows';
  /** How a message names a record: `line 17`, `rows.csv line 17`. */
  where(record: InputRecord): string;
  /**
   * Reads the file afresh, a read's worth of records at a time (one by one: recordsOf): a
   * million-line input is read without an async step per record (sluice enqueue reads it twice).
   * Blank lines are skipped.
   */
  batches(): AsyncIterable<readonly InputRecord[]>;
  /** Bytes of the file read so far by the read under way (or the last one): a long read's progress. */
  bytesRead(): number;
}

/** The file's read stream of the read under way, kept so that its bytes read can be told. */
export interface OpenedInput {
  stream: ReadStream | undefined;
}

/** Opens `path` for a read, noting the stream in `opened`. */
export function openInput(path: string, opened: OpenedInput): ReadStream {
  opened.stream = createReadStream(path);
  return opened.stream;
}

/** A source's records one by one. */
export function recordsOf(source: InputSource): AsyncIterable<InputRecord> {
  return flatten(source.batches());
}

/** One operation per line (`\n` or `\r\n`); blank lines are skipped. */
export function createJsonlSource(path: string): InputSource {
  const opened: OpenedInput = { stream: undefined };
  return {
    unit: 'lines',
    where: (record) => `line ${record.line}`,
    batches: () => jsonlBatches(path, opened),
    bytesRead: () => opened.stream?.bytesRead ?? 0,
  };
}

// Opened when first read (a generator's body runs then): a file that cannot be opened fails that
// read, and one never read is never opened.
async function* jsonlBatches(path: string, opened: OpenedInput): AsyncGenerator<InputRecord[]> {
  yield* jsonlBatchesOf(openInput(path, opened));
}

/** The records of JSONL bytes however they arrive in chunks (see support/json-lines.ts), a chunk's at a time. */
export async function* jsonlBatchesOf(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<InputRecord[]> {
  const reader = createJsonLineReader();
  for await (const chunk of chunks) {
    const lines = reader.write(chunk);
    if (lines.length > 0) yield lines.map(jsonlRecord);
  }
  const rest = reader.end();
  if (rest.length > 0) yield rest.map(jsonlRecord);
}

function jsonlRecord(item: JsonLine): InputRecord {
  if ('value' in item) return item;
  return { line: item.line, problems: [item.whole ? item.error : `not valid JSON: ${item.error}`] };
}
