import { atPath } from './paginate-schema.js';

/**
 * Operation templates: every string in a JSON value may hold `{{name}}` placeholders.
 * A string that is exactly one placeholder takes the value itself, so numbers, booleans and
 * objects keep their JSON type; inside a longer string the value is written as text (objects as
 * JSON). A placeholder with no value renders as an empty string inside text, or is dropped
 * (undefined; `null` inside an array, which keeps its positions) when it is the whole string.
 *
 * Two syntaxes: `{{item.id}}` dot paths into a context such as `{ item }` (pagination's
 * `forEach`), and `{{First name}}` CSV column names (letters, digits, `_ - .` and inner spaces;
 * dots are part of the name, not a path), optionally typed: `{{zip:string}}`.
 */
export interface TemplateSyntax {
  /** Global: every placeholder in a string, the name in group 1. */
  readonly placeholder: RegExp;
  /** A string that is exactly one placeholder. */
  readonly whole: RegExp;
}

export const PATH_SYNTAX: TemplateSyntax = {
  placeholder: /\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g,
  whole: /^\{\{\s*([A-Za-z_][\w.]*)\s*\}\}$/,
};

/** A column name, and an optional `:type` (see row-template.ts). */
const COLUMN_NAME = String.raw`[\p{L}\p{N}_][\p{L}\p{N}_.-]*(?: +[\p{L}\p{N}_.-]+)*(?::[a-z]+)?`;
export const COLUMN_SYNTAX: TemplateSyntax = {
  placeholder: new RegExp(String.raw`\{\{\s*(${COLUMN_NAME})\s*\}\}`, 'gu'),
  whole: new RegExp(String.raw`^\{\{\s*(${COLUMN_NAME})\s*\}\}$`, 'u'),
};

/** Looks a placeholder up; `whole` says whether it is the entire string (typed) or inside text. */
export type Resolve = (name: string, whole: boolean) => unknown;

export function renderTemplate(template: unknown, context: Record<string, unknown>): unknown {
  return renderWith(template, PATH_SYNTAX, (path) => atPath(context, path));
}

export function renderWith(template: unknown, syntax: TemplateSyntax, resolve: Resolve): unknown {
  if (typeof template === 'string') {
    if (!template.includes('{{')) return template;
    const whole = syntax.whole.exec(template);
    if (whole) return resolve(whole[1]!, true);
    return template.replace(syntax.placeholder, (_, name: string) => asText(resolve(name, false)));
  }
  if (Array.isArray(template)) return template.map((entry) => renderWith(entry, syntax, resolve) ?? null);
  if (template !== null && typeof template === 'object') {
    // fromEntries, not assignment: a "__proto__" key (JSON.parse makes it an own key) stays a key.
    return Object.fromEntries(
      Object.entries(template).flatMap(([key, value]) => {
        const rendered = renderWith(value, syntax, resolve);
        return rendered === undefined ? [] : [[key, rendered]];
      }),
    );
  }
  return template;
}

/** Every placeholder of a template with the path of the string holding it (`json.age`, `query.ids[0]`). */
export function* placeholdersOf(
  template: unknown,
  syntax: TemplateSyntax,
  path: readonly (string | number)[] = [],
): Generator<{ name: string; path: readonly (string | number)[] }> {
  if (typeof template === 'string') {
    for (const match of template.matchAll(syntax.placeholder)) yield { name: match[1]!, path };
  } else if (Array.isArray(template)) {
    for (const [index, entry] of template.entries()) yield* placeholdersOf(entry, syntax, [...path, index]);
  } else if (template !== null && typeof template === 'object') {
    for (const [key, value] of Object.entries(template)) yield* placeholdersOf(value, syntax, [...path, key]);
  }
}

/** The template with every placeholder replaced by a sample text, to validate its shape before any item exists. */
export function sampleOfTemplate(template: unknown): unknown {
  if (typeof template === 'string') return template.replace(PATH_SYNTAX.placeholder, '1');
  if (Array.isArray(template)) return template.map(sampleOfTemplate);
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([key, value]) => [key, sampleOfTemplate(value)]));
  }
  return template;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
