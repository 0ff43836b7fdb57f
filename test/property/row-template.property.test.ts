import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsvSource } from '../../src/cli/csv-source.js';
import { recordsOf, type InputRecord } from '../../src/cli/input-source.js';
import { cellValue, compileRowTemplate } from '../../src/operation/row-template.js';

/**
 * CSV rows through an operation template: any template and header compile or say why; a row
 * renders to an operation or to problems naming the field and the column; cells land where their
 * placeholders are, typed as documented, never losing a digit; text without placeholders is kept
 * as it is; and a CSV written by a spreadsheet library reads back row for row, line for line.
 */

/** A column name the placeholder syntax can name: letters, digits, `_ - .` and inner spaces. */
const columnName = fc.stringMatching(/^[A-Za-zé_][A-Za-z0-9é_.-]{0,6}(?: [A-Za-z0-9é_.-]{1,4})?$/);
const key = fc.oneof({ weight: 5, arbitrary: fc.string({ maxLength: 6 }) }, fc.constantFrom('__proto__', 'constructor', 'a.b'));
const plainJson: fc.Arbitrary<unknown> = fc
  .letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.oneof(
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.string({ maxLength: 10 }).map((text) => text.replaceAll('{{', '{')),
      ),
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(key, tie('value'), { maxKeys: 3 }),
    ),
  }))
  .value.map((value) => JSON.parse(JSON.stringify(value)) as unknown);

/** Decimal text as a spreadsheet holds it, from short numbers to very long and very small ones. */
const decimalText = fc
  .record({
    minus: fc.boolean(),
    whole: fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9]\d{0,24}$/)),
    zeros: fc.oneof(fc.nat(3), fc.integer({ min: 300, max: 330 })),
    fraction: fc.option(fc.stringMatching(/^\d{1,18}$/), { nil: undefined }),
  })
  .map(
    ({ minus, whole, zeros, fraction }) => `${minus ? '-' : ''}${whole}${fraction === undefined ? '' : `.${'0'.repeat(zeros)}${fraction}`}`,
  );
const cell = fc.oneof(
  decimalText,
  fc.constantFrom('', 'true', 'FALSE', 'True', 'null', ' 1', '01', '1e5'),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
);

/** The exact value of decimal text, as a normalised string (no sign on zero, no trailing zeros). */
function exactDecimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text)!;
  const whole = match[2]!.replace(/^0+(?=\d)/, '');
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  const digits = `${whole}${fraction}`;
  return `${/[1-9]/.test(digits) ? match[1] : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
/** A JS number's decimal text written out without an exponent. */
function plainNumber(value: number): string {
  const [mantissa, exponent] = String(value).split('e') as [string, string | undefined];
  if (exponent === undefined) return exactDecimal(mantissa);
  const minus = mantissa.startsWith('-') ? '-' : '';
  const [whole, fraction = ''] = mantissa.replace('-', '').split('.') as [string, string?];
  const shift = Number(exponent);
  const digits = `${whole}${fraction}`;
  const point = whole.length + shift;
  const text = point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : `${digits.padEnd(point, '0').slice(0, point)}.${digits.slice(point)}`;
  return exactDecimal(`${minus}${text.replace(/\.$/, '')}`);
}

describe('cellValue, property-based', () => {
  it('makes a number only of decimal text a JSON number holds exactly; anything else stays text', () => {
    fc.assert(
      fc.property(cell, (text) => {
        const value = cellValue(text);
        if (text === '') expect(value).toBeUndefined();
        else if (typeof value === 'number') expect(plainNumber(value), `cell ${JSON.stringify(text)}`).toBe(exactDecimal(text));
        else if (typeof value === 'boolean') expect(['true', 'false', 'TRUE', 'FALSE']).toContain(text);
        else expect(value).toBe(text);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('compileRowTemplate and render, property-based', () => {
  it('compiles any template with any header, or says why in a message; rendering any row never throws', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          plainJson,
          fc.dictionary(key, fc.oneof(plainJson, fc.constantFrom('{{a}}', '{{b:number}}', 'x{{ c }}y', '{{a:date}}', '{{}}'))),
        ),
        fc.array(fc.oneof(columnName, fc.constantFrom('a', 'b', 'c', '', ' a ')), { maxLength: 5 }),
        fc.array(cell, { maxLength: 6 }),
        (template, header, cells) => {
          const compiled = compileRowTemplate(template, header);
          if (!compiled.ok) {
            expect(compiled.message.trim()).not.toBe('');
            return;
          }
          const rendered = compiled.template.render(cells);
          if (!rendered.ok)
            for (const problem of rendered.problems)
              expect(problem).toMatch(/^\S.*: expected (number|boolean|string) \(column .+: ".*"\)$/);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('keeps a template without placeholders as it is, and adds the row as meta', () => {
    fc.assert(
      fc.property(
        fc.dictionary(key, plainJson, { maxKeys: 5 }),
        fc.uniqueArray(columnName, { minLength: 1, maxLength: 4 }),
        (template, header) => {
          const cells = header.map((_, index) => `v${index}`);
          const compiled = compileRowTemplate(template, header);
          expect(compiled.ok).toBe(true);
          if (!compiled.ok) return;
          const rendered = compiled.template.render(cells);
          const meta = Object.hasOwn(template, 'meta')
            ? {}
            : { meta: Object.fromEntries(header.map((name, index) => [name, cells[index]])) };
          expect(rendered.ok && JSON.stringify(rendered.operation)).toBe(JSON.stringify({ ...template, ...meta }));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('puts each cell where its placeholder is: typed as a whole value, as written inside text; typed placeholders check the cell', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(columnName, { minLength: 1, maxLength: 4 }).chain((header) =>
          fc.record({
            header: fc.constant(header),
            cells: fc.array(cell, { minLength: header.length, maxLength: header.length }),
            uses: fc.array(
              fc.record({ column: fc.nat(header.length - 1), type: fc.constantFrom(undefined, 'number', 'boolean', 'string') }),
              {
                minLength: 1,
                maxLength: 4,
              },
            ),
          }),
        ),
        ({ header, cells, uses }) => {
          const whole = Object.fromEntries(
            uses.map(({ column, type }, index) => [`w${index}`, `{{${header[column]}${type ? `:${type}` : ''}}}`]),
          );
          const text = uses.map(({ column }) => `<{{ ${header[column]} }}>`).join('');
          const compiled = compileRowTemplate({ method: 'POST', url: '/x', json: { ...whole, text } }, header);
          expect(compiled.ok).toBe(true);
          if (!compiled.ok) return;
          const rendered = compiled.template.render(cells);
          const bad = uses.flatMap(({ column, type }, index) => {
            const value = cells[column]!;
            if (value === '' || type === undefined || type === 'string') return [];
            const fits =
              type === 'number'
                ? /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(value) && Number.isFinite(Number(value))
                : /^(true|false|TRUE|FALSE)$/.test(value);
            return fits ? [] : [`json.w${index}: expected ${type} (column ${header[column]}: `];
          });
          if (bad.length > 0) {
            expect(rendered.ok).toBe(false);
            if (!rendered.ok)
              expect(rendered.problems.map((problem) => problem.slice(0, problem.lastIndexOf(': ') + 2))).toEqual(
                bad.map((start) => start),
              );
            return;
          }
          expect(rendered.ok).toBe(true);
          if (!rendered.ok) return;
          const json = rendered.operation['json'] as Record<string, unknown>;
          expect(json['text']).toBe(uses.map(({ column }) => `<${cells[column]}>`).join(''));
          uses.forEach(({ column, type }, index) => {
            const value = cells[column]!;
            const expected =
              value === ''
                ? undefined
                : type === 'number'
                  ? Number(value)
                  : type === 'boolean'
                    ? /^true$/i.test(value)
                    : type === 'string'
                      ? value
                      : cellValue(value);
            expect(json[`w${index}`]).toEqual(expected);
          });
          expect(rendered.operation['meta']).toEqual(Object.fromEntries(header.map((name, index) => [name, cells[index]])));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('createCsvSource, property-based', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-csv-property-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back what a CSV writer wrote: every row, in order, numbered as a spreadsheet numbers it', async () => {
    const field = fc.oneof(fc.string({ unit: fc.constantFrom(...'ab ,"\n\r\té'), maxLength: 8 }), decimalText);
    let file = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(columnName, { minLength: 1, maxLength: 4 }).chain((header) =>
          fc.record({
            header: fc.constant(header),
            rows: fc.array(fc.array(field, { minLength: header.length, maxLength: header.length }), { maxLength: 6 }),
            crlf: fc.boolean(),
            bom: fc.boolean(),
          }),
        ),
        async ({ header, rows, crlf, bom }) => {
          const text = stringify([header, ...rows], { record_delimiter: crlf ? 'windows' : 'unix', bom });
          const path = join(dir, `${(file += 1)}.csv`);
          await writeFile(path, text);
          const template = { method: 'POST', url: '/rows' };
          const source = createCsvSource(path, { name: 'rows.csv', template, templateName: 'op.json' });
          const records: InputRecord[] = [];
          for await (const record of recordsOf(source)) records.push(record);
          // Rows whose cells are all blank are skipped, but counted.
          const expected = rows.flatMap((row, index) => (row.every((one) => one.trim() === '') ? [] : [{ line: index + 2, row }]));
          expect(records.map((record) => record.line)).toEqual(expected.map((one) => one.line));
          expect(records.map((record) => record.value)).toEqual(
            expected.map(({ row }) => ({ ...template, meta: Object.fromEntries(header.map((name, index) => [name, row[index]])) })),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
