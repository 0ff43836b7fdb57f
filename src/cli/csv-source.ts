import { pipeline } from 'node:stream';
import { CsvError, parse, type InfoRecord, type Options } from 'csv-parse';
import { UsageError } from '../errors.js';
import { compileRowTemplate, type RowTemplate } from '../operation/row-template.js';
import { openInput, type InputRecord, type InputSource, type OpenedInput } from './input-source.js';
import { createUtf8LineCheck } from './text-lines.js';
import { batched } from '../support/batches.js';

/**
 * A CSV file through an operation template (see operation/row-template.ts), streamed with
 * csv-parse: the first row names the columns; a UTF-8 BOM, quoted fields with commas, quotes
 * (`""`) and newlines, and CRLF line ends are read as spreadsheets write them. Blank lines, and
 * rows whose cells are all empty or blank (`,,,`), are skipped. A row with bytes that are not
 * UTF-8 is refused, naming its text line.
 *
 * Rows are numbered as a spreadsheet shows them: the header is line 1, a row with a multi-line
 * field is one line, a blank line counts. When that differs from the lines of the text (a
 * multi-line field above or in the row), messages give both: `rows.csv line 5 (text lines 6–7)`.
 */

export interface CsvSourceOptions {
  /** How messages name the file: the path as given, or `stdin`. */
  name: string;
  /** The operation template (parsed JSON) and how messages name it. */
  template: unknown;
  templateName: string;
}

/** A longer row stops the read: an unclosed quote would otherwise pull the rest of the file into one field. */
export const MAX_ROW_BYTES = 1_048_576;

/** Rows handed on together (see InputSource.batches). */
const CSV_BATCH = 256;

export function createCsvSource(path: string, options: CsvSourceOptions): InputSource {
  const opened: OpenedInput = { stream: undefined };
  return {
    unit: 'rows',
    where: (record) => {
      const text = record.textLines;
      const lines =
        !text || (text[0] === record.line && text[1] === record.line)
          ? ''
          : text[0] === text[1]
            ? ` (text line ${text[0]})`
            : ` (text lines ${text[0]}–${text[1]})`;
      return `${options.name} line ${record.line}${lines}`;
    },
    batches: () => batched(csvRecords(path, options, opened), CSV_BATCH),
    bytesRead: () => opened.stream?.bytesRead ?? 0,
  };
}

interface ParsedRow {
  row: number;
  textLines: [number, number];
  fields: string[];
  /** A text line of the row that is not UTF-8, and why. */
  notUtf8?: { line: number; problem: string };
}

async function* csvRecords(path: string, options: CsvSourceOptions, opened: OpenedInput): AsyncGenerator<InputRecord> {
  // Where the previous row ended, as a spreadsheet counts rows and as the text counts lines.
  let lastRow = 0;
  let lastLine = 0;
  let lastEmpty = 0;
  // Rows are numbered in on_record, which the parser calls in order as it reads, so a parse error
  // also knows the row it is in (the iterator below may still have rows buffered).
  const parserOptions: Options<ParsedRow, string[]> = {
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true,
    max_record_size: MAX_ROW_BYTES,
    on_record: (fields: string[], context: InfoRecord): ParsedRow => {
      const skipped = context.empty_lines - lastEmpty;
      const row = lastRow + 1 + skipped;
      const firstLine = lastLine + 1 + skipped;
      lastRow = row;
      lastLine = firstLine + lineBreaks(fields);
      lastEmpty = context.empty_lines;
      const parsed: ParsedRow = { row, textLines: [firstLine, lastLine], fields };
      // The check below has seen every line up to the one that ended this row.
      for (let line = firstLine; utf8.badLines.size > 0 && line <= lastLine; line += 1) {
        const problem = utf8.badLines.get(line);
        if (problem !== undefined) return { ...parsed, notUtf8: { line, problem } };
      }
      return parsed;
    },
  };
  // csv-parse would read bad bytes as U+FFFD: they are noted by text line and refused with their row.
  const utf8 = createUtf8LineCheck();
  const rows = pipeline(
    openInput(path, opened),
    utf8,
    // csv-parse's non-generic overload types records as string[]; on_record makes them ParsedRow.
    parse(parserOptions as unknown as Options),
    () => undefined, // errors reach the loop below through the parser
  );

  let template: RowTemplate | undefined;
  try {
    for await (const { row, textLines, fields, notUtf8 } of rows as AsyncIterable<ParsedRow>) {
      if (notUtf8 !== undefined) {
        const where =
          textLines[0] === row && textLines[1] === row
            ? notUtf8.problem
            : notUtf8.problem.replace('of the line', `of text line ${notUtf8.line}`);
        if (!template) throw new UsageError(`${options.name} line ${row} (the header): ${where}`);
        yield { line: row, textLines, problems: [where] };
        continue;
      }
      if (!template) {
        const compiled = compileRowTemplate(options.template, fields);
        if (!compiled.ok) throw new UsageError(`${options.templateName} with ${options.name}: ${compiled.message}`);
        template = compiled.template;
        continue;
      }
      if (fields.every((field) => field.trim() === '')) continue;
      const record = { line: row, textLines };
      if (fields.length !== template.columns.length) {
        yield {
          ...record,
          problems: [`expected ${template.columns.length} fields (${template.columns.join(', ')}), found ${fields.length}`],
        };
        continue;
      }
      const rowTemplate = template;
      const rendered = rowTemplate.render(fields);
      if (rendered.ok) yield { ...record, value: rendered.operation, explain: (path) => rowTemplate.explain(path, fields) };
      else yield { ...record, problems: rendered.problems };
    }
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const skipped = typeof error['empty_lines'] === 'number' ? error['empty_lines'] - lastEmpty : 0;
    const line = lastLine + 1 + skipped;
    yield { line: lastRow + 1 + skipped, textLines: [line, line], problems: [`malformed CSV: ${describeCsvError(error)}`], fatal: true };
    return;
  }
  if (!template) throw new UsageError(`${options.name} is empty: a CSV needs a header row naming its columns`);
}

function lineBreaks(fields: readonly string[]): number {
  let count = 0;
  for (const field of fields) if (field.includes('\n') || field.includes('\r')) count += field.match(/\r\n|\r|\n/g)?.length ?? 0;
  return count;
}

/** csv-parse's errors in our words. */
function describeCsvError(error: CsvError): string {
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field that starts in this row is never closed (the file ends inside it)';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'text after the closing quote of a field (write a quote inside a quoted field as "")';
    case 'INVALID_OPENING_QUOTE':
      return 'a quote inside a field that is not quoted (quote the whole field and write the quote as "")';
    case 'CSV_MAX_RECORD_SIZE':
      return `a row longer than ${MAX_ROW_BYTES / 1_048_576} MiB (most likely a quote that is never closed)`;
    default:
      return error.message;
  }
}
