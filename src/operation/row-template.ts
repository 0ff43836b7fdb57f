import { formatPath } from '../config/issues.js';
import { nestingIssue } from './nesting.js';
import { COLUMN_SYNTAX, placeholdersOf, renderWith } from './template.js';

/**
 * CSV rows through an operation template. The template is an operation (a JSON object) whose
 * strings hold `{{column}}` placeholders naming columns of the CSV header:
 * - a string that is exactly one placeholder takes the cell as a typed value (see `cellValue`);
 * - inside a longer string the cell is written as it is in the file (`"/contacts/{{id}}"`);
 * - an empty cell is an empty string inside text, and as a whole value it is left out, like a
 *   missing value (`null` as an array element);
 * - a placeholder may declare its type, `{{zip:string}}`, `{{age:number}}`, `{{active:boolean}}`:
 *   the cell is then always that type, and a cell that is not one is an error naming the field;
 * - a template without `meta` gets the row itself as `meta` (column → cell text), so results join
 *   back to the input.
 */

/**
 * A plain decimal number: optional minus, no leading zeros (`01234` is a zip code), no plus sign,
 * no exponent, no thousands separators.
 */
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;
/** Decimal digits a double keeps exactly (a longer decimal would come back different). */
const MAX_DECIMAL_DIGITS = 15;
/** Below the smallest normal double, digits are lost (and past 5e-324 all of them: the number is 0). */
const MIN_NORMAL = 2.2250738585072014e-308;

/**
 * A cell as a whole value: `undefined` when empty; a number when it is a plain decimal number that
 * a JSON number holds exactly (integers up to 2^53 − 1, decimals up to 15 digits: a 20-digit
 * account number stays text); `true`/`false` (also `TRUE`/`FALSE`, as spreadsheets write them)
 * as booleans; anything else is the text as is (never trimmed).
 */
export function cellValue(cell: string): string | number | boolean | undefined {
  if (cell === '') return undefined;
  if (cell === 'true' || cell === 'TRUE') return true;
  if (cell === 'false' || cell === 'FALSE') return false;
  if (PLAIN_NUMBER.test(cell)) {
    const number = Number(cell);
    const digits = cell.replace(/[-.]/g, '').replace(/^0+/, '').length;
    const exact = cell.includes('.')
      ? digits <= MAX_DECIMAL_DIGITS && (digits === 0 || Math.abs(number) >= MIN_NORMAL)
      : Number.isSafeInteger(number);
    if (exact) return number;
  }
  return cell;
}

/** A placeholder's declared type: `{{zip:string}}`, `{{age:number}}`, `{{active:boolean}}`. */
const CELL_TYPES = ['string', 'number', 'boolean'] as const;
type CellType = (typeof CELL_TYPES)[number];
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** A non-empty cell as the declared type, or undefined when it is not one. */
function typedCell(cell: string, type: CellType): string | number | boolean | undefined {
  if (type === 'string') return cell;
  if (type === 'number') return JSON_NUMBER.test(cell) && Number.isFinite(Number(cell)) ? Number(cell) : undefined;
  if (cell === 'true' || cell === 'TRUE') return true;
  if (cell === 'false' || cell === 'FALSE') return false;
  return undefined;
}

export type RenderedRow = { ok: true; operation: Record<string, unknown> } | { ok: false; problems: string[] };

export interface RowTemplate {
  /** The header's column names (trimmed; `''` for a column without a name). */
  readonly columns: readonly string[];
  /** The operation for one row, its cells in header order; or the cells that do not fit their declared type. */
  render(cells: readonly string[]): RenderedRow;
  /** Where the value at an operation path came from, for a message: ` (column age: "abc")`; '' when not from a cell. */
  explain(path: string, cells: readonly string[]): string;
}

export type CompiledRowTemplate = { ok: true; template: RowTemplate } | { ok: false; message: string };

interface Placeholder {
  column: string;
  position: number;
  type: CellType | undefined;
}

/**
 * Checks a template against a CSV header: the template must be a JSON object, the header's named
 * columns distinct, and every placeholder must name one of them (with a known type, if any).
 */
export function compileRowTemplate(template: unknown, header: readonly string[]): CompiledRowTemplate {
  if (template === null || typeof template !== 'object' || Array.isArray(template)) {
    return { ok: false, message: 'the template must be an operation: a JSON object' };
  }
  const tooDeep = nestingIssue(template);
  if (tooDeep) return { ok: false, message: `${tooDeep.path}: ${tooDeep.message}` };
  const columns = header.map((name) => name.trim());
  const index = new Map<string, number>();
  for (const [position, name] of columns.entries()) {
    if (name === '') continue;
    if (index.has(name)) return { ok: false, message: `the header names column ${JSON.stringify(name)} twice` };
    index.set(name, position);
  }

  const placeholders = new Map<string, Placeholder>();
  const sources = new Map<string, Placeholder[]>();
  const typed: { path: string; placeholder: Placeholder & { type: CellType } }[] = [];
  const unknown = new Set<string>();
  for (const { name, path } of placeholdersOf(template, COLUMN_SYNTAX)) {
    const [column = '', type] = name.split(':');
    if (type !== undefined && !(CELL_TYPES as readonly string[]).includes(type)) {
      return { ok: false, message: `{{${name}}}: unknown type ${JSON.stringify(type)}; use ${CELL_TYPES.join(', ')}` };
    }
    const position = index.get(column);
    if (position === undefined) {
      unknown.add(column);
      continue;
    }
    const placeholder: Placeholder = { column, position, type: type as CellType | undefined };
    placeholders.set(name, placeholder);
    const key = formatPath(path);
    const atPath = sources.get(key) ?? [];
    if (!atPath.some((seen) => seen.column === column)) atPath.push(placeholder);
    sources.set(key, atPath);
    if (placeholder.type !== undefined) typed.push({ path: key, placeholder: { ...placeholder, type: placeholder.type } });
  }
  if (unknown.size > 0) {
    const named = columns.filter((name) => name !== '');
    const list = [...unknown].map((name) => `{{${name}}}`).join(', ');
    return {
      ok: false,
      message: `${list} ${unknown.size === 1 ? 'names no column' : 'name no columns'} of the CSV header; its columns: ${named.length ? named.join(', ') : '(none)'}`,
    };
  }
  const withMeta = Object.hasOwn(template, 'meta');

  const render = (cells: readonly string[]): RenderedRow => {
    const problems: string[] = [];
    for (const { path, placeholder } of typed) {
      const cell = cells[placeholder.position] ?? '';
      if (cell !== '' && typedCell(cell, placeholder.type) === undefined) {
        problems.push(`${path}: expected ${placeholder.type} (column ${placeholder.column}: ${excerpt(cell)})`);
      }
    }
    if (problems.length > 0) return { ok: false, problems };
    const operation = renderWith(template, COLUMN_SYNTAX, (name, whole) => {
      const placeholder = placeholders.get(name)!;
      const cell = cells[placeholder.position] ?? '';
      if (!whole) return cell;
      if (cell === '') return undefined;
      return placeholder.type === undefined ? cellValue(cell) : typedCell(cell, placeholder.type);
    }) as Record<string, unknown>;
    // fromEntries, not assignment: a column named __proto__ stays a key.
    if (!withMeta) operation['meta'] = Object.fromEntries([...index].map(([name, position]) => [name, cells[position] ?? '']));
    return { ok: true, operation };
  };

  const explain = (path: string, cells: readonly string[]): string => {
    const atPath = sources.get(path);
    if (!atPath) return '';
    return ` (${atPath.map(({ column, position }) => `column ${column}: ${excerpt(cells[position] ?? '')}`).join(', ')})`;
  };

  return { ok: true, template: { columns, render, explain } };
}

function excerpt(cell: string): string {
  return JSON.stringify(cell.length > 40 ? `${cell.slice(0, 40)}…` : cell);
}
