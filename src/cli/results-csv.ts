import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { ResultLine } from '../outcomes/result-line.js';
import { writeChunk } from './output.js';

/**
 * `sluice results --format csv`: a header row, then one row per result: the meta columns first
 * (the union of the results' meta keys, in the order they are first seen; CSV enqueue copies the
 * input's columns into `meta`, so results join back to the input), then the result columns.
 *
 * The header needs every meta key before the first row, and results stream from Redis (HSCAN): they
 * are read once into a temporary JSONL file while the keys are collected, and the CSV is written
 * from that file. Memory holds the key names only, and the export is one read of the batch.
 *
 * Cells: meta strings as they are; nested meta values as JSON; a meta that is not an object goes
 * to a `meta` column; a meta key that is also a result column is written as `meta.<key>`. Meta is
 * the user's own input and is written unchanged (a `+44…` phone number stays as it is); the text
 * sluice fills in (`reason`, `error`) gets a `'` in front when it starts with = + - @ or a tab, so
 * a spreadsheet shows it rather than runs it as a formula. When a batch lists duplicates, two more
 * columns say which job each duplicates and how that job ended (`duplicateOf`, `firstOutcome`).
 */
export const RESULT_COLUMNS = ['id', 'outcome', 'status', 'attempts', 'durationMs', 'reason', 'error', 'finishedAt'] as const;

interface Column {
  name: string;
  cell(line: ResultLine): string;
}

/**
 * Writes the results as CSV to `out` (which stays open) and resolves with the number of rows;
 * stops writing once `closed` aborts (stdout's reader went away).
 */
export async function writeResultsCsv(
  results: AsyncIterable<ResultLine>,
  out: Writable,
  closed: AbortSignal = new AbortController().signal,
): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-results-'));
  try {
    const spoolPath = join(dir, 'results.jsonl');
    const metaKeys = new Set<string>();
    let plainMeta = false;
    let duplicates = false;
    let count = 0;
    await pipeline(async function* () {
      for await (const line of results) {
        if (isObject(line.meta)) for (const key of Object.keys(line.meta)) metaKeys.add(key);
        else if (line.meta !== undefined) plainMeta = true;
        if (line.outcome === 'duplicate') duplicates = true;
        count += 1;
        yield `${JSON.stringify(line)}\n`;
      }
    }, createWriteStream(spoolPath));

    const columns = columnsFor(metaKeys, plainMeta, duplicates);
    await pipeline(
      async function* () {
        for await (const text of createInterface({ input: createReadStream(spoolPath), crlfDelay: Number.POSITIVE_INFINITY })) {
          const line = JSON.parse(text) as ResultLine;
          yield columns.map((column) => column.cell(line));
        }
      },
      stringify({ header: true, columns: columns.map((column) => column.name) }),
      async function (csv: AsyncIterable<Buffer | string>) {
        for await (const chunk of csv) await writeChunk(out, chunk, closed);
      },
    );
    return count;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function columnsFor(metaKeys: ReadonlySet<string>, plainMeta: boolean, duplicates: boolean): Column[] {
  const reserved = new Set<string>(RESULT_COLUMNS);
  const columns: Column[] = [...metaKeys].map((key) => ({
    name: reserved.has(key) ? `meta.${key}` : key,
    cell: (line) => (isObject(line.meta) ? text(line.meta[key]) : ''),
  }));
  if (plainMeta)
    columns.push({ name: metaKeys.has('meta') ? 'meta.value' : 'meta', cell: (line) => (isObject(line.meta) ? '' : text(line.meta)) });
  columns.push(
    { name: 'id', cell: (line) => line.id },
    { name: 'outcome', cell: (line) => line.outcome },
    { name: 'status', cell: (line) => text(line.status) },
    { name: 'attempts', cell: (line) => text(line.attempts) },
    { name: 'durationMs', cell: (line) => text(line.durationMs) },
    { name: 'reason', cell: (line) => noFormula(text(line.reason)) },
    { name: 'error', cell: (line) => noFormula(text(line.error)) },
    { name: 'finishedAt', cell: (line) => text(line.finishedAt) },
  );
  if (duplicates) {
    columns.push(
      { name: 'duplicateOf', cell: (line) => text(line.duplicateOf) },
      { name: 'firstOutcome', cell: (line) => text(line.firstOutcome) },
    );
  }
  return columns;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** OWASP's CSV-injection guard: text a spreadsheet would run as a formula is marked as text. */
function noFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}
