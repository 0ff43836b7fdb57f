import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { errorMessage } from '../errors.js';
import { linearRegExp, patternProblem } from './linear-regexp.js';
import { schemaPatterns } from './schema-patterns.js';

/**
 * `expect.schema`: a JSON Schema (draft-07) that an accepted response body must match. Schemas are
 * compiled once and kept in a small most-recently-used cache, since every job of a batch usually
 * carries the same one; the cache key is the schema's JSON text.
 */

/** Compiled schemas kept at most (least recently used dropped first). */
export const SCHEMA_CACHE_SIZE = 256;
/** Validation errors listed in a mismatch message; the rest are counted. */
export const MAX_LISTED_ERRORS = 20;
/**
 * Ajv keeps every schema object it compiled, for good. After this many compiles the instance (and
 * this cache, whose validators hold on to it) is dropped and a fresh one made, so memory stays
 * bounded however many distinct schemas pass through. (Ajv's removeSchema would also forget any
 * schema sharing the removed one's $id, such as its own meta-schema.)
 */
const COMPILES_PER_INSTANCE = 4 * SCHEMA_CACHE_SIZE;
/** Longest text of one listed error. */
const MAX_ERROR_CHARS = 300;

const DRAFT_07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;

/** One problem with a schema: where in the schema (object keys and array indexes) and what. */
export interface SchemaProblem {
  path: (string | number)[];
  message: string;
}

/** A body that does not match: the listed errors (at most MAX_LISTED_ERRORS) and how many there were. */
export interface SchemaMismatch {
  errors: string[];
  total: number;
  message: string;
}

let shared: Ajv | undefined;
let compiles = 0;
const cache = new Map<string, ValidateFunction>();

function ajv(): Ajv {
  if (compiles >= COMPILES_PER_INSTANCE) {
    shared = undefined;
    cache.clear();
    compiles = 0;
  }
  // Made on first use, so that importing the library does nothing.
  shared ??= createAjv();
  return shared;
}

function createAjv(): Ajv {
  const instance = new Ajv({
    allErrors: true,
    // A misspelt keyword ("requird") would make the schema silently accept anything: refuse it.
    strictSchema: true,
    strictNumbers: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    // Schemas are compiled independently: two operations may use the same $id for different schemas.
    addUsedSchema: false,
    logger: false,
    // Patterns come from whoever enqueues and text from a target: never V8's backtracking where it can blow up.
    code: { regExp: linearRegExp },
  });
  // The CommonJS module's default export is the plugin itself; its types only know `.default`.
  formatsPlugin.default(instance);
  instance.addFormat('url', linearUrlFormat());
  return instance;
}

/**
 * ajv-formats' `url` lets `\S+` take the userinfo, `:` and `@` included: V8 then backtracks
 * quadratically on a long "http://0:0:0:…" a target sends (2.6 s at 40,000 characters). Here the
 * userinfo holds no `@` (RFC 3986 has it percent-encoded) and the user name no `:`; the rest as is.
 */
function linearUrlFormat(): RegExp {
  const url = formatsPlugin.default.get('url') as RegExp;
  return new RegExp(url.source.replace('(?:\\S+(?::\\S*)?@)?', '(?:[^\\s:@]+(?::[^\\s@]*)?@)?'), url.flags);
}

/** The problems that make `schema` unusable; empty when it compiles. */
export function jsonSchemaProblems(schema: Record<string, unknown>): SchemaProblem[] {
  try {
    validatorFor(schema);
    return [];
  } catch (error) {
    return error instanceof InvalidSchemaError ? error.problems : [{ path: [], message: errorMessage(error) }];
  }
}

/** Undefined when the JSON `text` matches `schema`; otherwise what is wrong, path by path. */
export function checkJson(schema: Record<string, unknown>, text: string): SchemaMismatch | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const message = `response body is not JSON (expect.schema needs JSON): ${errorMessage(error)}`;
    return { errors: [message], total: 1, message };
  }
  const validate = validatorFor(schema);
  if (validate(body)) return undefined;
  const all = validate.errors ?? [];
  const errors = all.slice(0, MAX_LISTED_ERRORS).map(describeError);
  const rest = all.length - errors.length;
  const lines = [
    `response body does not match expect.schema (${all.length} error${all.length === 1 ? '' : 's'}):`,
    ...errors,
    ...(rest > 0 ? [`… and ${rest} more`] : []),
  ];
  return { errors, total: all.length, message: lines.join('\n') };
}

class InvalidSchemaError extends Error {
  constructor(readonly problems: SchemaProblem[]) {
    super(problems.map((problem) => problem.message).join('; '));
  }
}

function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = cache.get(key);
  if (cached) {
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const validate = compile(schema);
  if (cache.size >= SCHEMA_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, validate);
  return validate;
}

function compile(schema: Record<string, unknown>): ValidateFunction {
  const declared = schema.$schema;
  if (declared !== undefined && (typeof declared !== 'string' || !DRAFT_07.test(declared))) {
    throw new InvalidSchemaError([
      {
        path: ['$schema'],
        message: `sluice validates JSON Schema draft-07 (http://json-schema.org/draft-07/schema#); got ${JSON.stringify(declared)}`,
      },
    ]);
  }
  const instance = ajv();
  if (!instance.validateSchema(schema)) {
    throw new InvalidSchemaError(schemaErrors(instance.errors ?? [], schema));
  }
  const patternProblems = schemaPatterns(schema).flatMap(({ path, pattern }) => {
    const message = patternProblem(pattern);
    return message === undefined ? [] : [{ path, message }];
  });
  if (patternProblems.length > 0) throw new InvalidSchemaError(patternProblems);
  // An async schema (only with custom async keywords or formats, which sluice has none of) would return a promise.
  if (schema.$async !== undefined) throw new InvalidSchemaError([{ path: ['$async'], message: 'asynchronous schemas are not supported' }]);
  compiles += 1;
  return instance.compile(schema);
}

/**
 * The meta-schema's complaints, one per place: the alternatives of an anyOf/oneOf are joined with
 * "or" in place of Ajv's "must match a schema in anyOf" (`type: "strin"` → "must be equal to one
 * of the allowed values [...] or must be array").
 */
function schemaErrors(errors: ErrorObject[], schema: unknown): SchemaProblem[] {
  const isWrapper = (error: ErrorObject) => error.keyword === 'anyOf' || error.keyword === 'oneOf';
  // (The alternatives' own schema paths may lie elsewhere, behind a $ref: group them by place.)
  const byPlace = new Map<string, ErrorObject[]>();
  for (const error of errors) byPlace.set(error.instancePath, [...(byPlace.get(error.instancePath) ?? []), error]);
  const problems: SchemaProblem[] = [];
  for (const [place, found] of byPlace) {
    const path = segments(place, schema);
    const alternatives = found.filter((error) => !isWrapper(error));
    // An alternative that failed further in (`items: [{...}]` with a bad keyword inside) is the one meant.
    if (found.some(isWrapper) && errors.some((error) => error.instancePath.startsWith(`${place}/`))) continue;
    if (found.some(isWrapper) && alternatives.length > 0) problems.push({ path, message: alternatives.map(withDetail).join(' or ') });
    else for (const error of found) problems.push({ path, message: withDetail(error) });
  }
  return problems;
}

/** `/properties/items/0` → ['properties', 'items', 0]: a number where the schema holds an array. */
function segments(pointer: string, root: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  let node: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node) && /^\d+$/.test(part)) {
      out.push(Number(part));
      node = node[Number(part)];
    } else {
      out.push(part);
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
    }
  }
  return out;
}

/** `/items/3/id: must be string`; the body's root is `(root)`. */
function describeError(error: ErrorObject): string {
  const text = `${error.instancePath === '' ? '(root)' : error.instancePath}: ${withDetail(error)}`;
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}

function withDetail(error: ErrorObject): string {
  const message = error.message ?? `fails ${error.keyword}`;
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') return `${message} (${JSON.stringify(params.additionalProperty)})`;
  if (error.keyword === 'enum') return `${message} ${JSON.stringify(params.allowedValues)}`;
  if (error.keyword === 'const') return `${message} ${JSON.stringify(params.allowedValue)}`;
  return message;
}
