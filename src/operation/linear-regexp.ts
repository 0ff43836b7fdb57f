import type { CodeOptions } from 'ajv';
import { RE2JS } from 're2js';
import { errorMessage } from '../errors.js';
import { runsLinearOnV8 } from './backtrack-safe.js';

/**
 * The regular-expression engine Ajv uses for `expect.schema`'s `pattern`, `patternProperties` (and
 * so `propertyNames`): whoever enqueues writes the pattern, a target writes the text, and V8's
 * backtracking engine can take exponential time on the pair (`^(a+)+$`), holding a worker's event
 * loop for good. Patterns V8 provably runs in linear time stay on V8 (its speed, its exact
 * semantics: `backtrack-safe.ts`); the rest run on RE2 (re2js, a pure-JS port: no native build),
 * whose time is linear in the text. RE2 has no backreferences or lookaround: such a pattern is
 * refused when the schema is compiled, so at enqueue.
 */

/**
 * Largest RE2 program (in instructions) a pattern may compile to: RE2's time grows with text length
 * × program size, and a response may hold SLUICE_MAX_RESPONSE_BYTES of text.
 */
export const MAX_PATTERN_PROGRAM = 500;
/**
 * Largest length plus counted repeats (`{n,m}`) of a pattern given to RE2 at all: compiling costs
 * about that much (~0.7 s for a 100-fold `[a-z]{1,1000}`) before the program's size can be known.
 */
const MAX_PATTERN_WEIGHT = 4_000;
/** RE2 compilations kept, by pattern: a schema is checked, then compiled by Ajv, with the same patterns. */
const COMPILED_KEPT = 256;

type RegExpEngine = NonNullable<CodeOptions['regExp']>;
type RegExpLike = ReturnType<RegExpEngine>;

/** A pattern sluice will not run; its message says why (internal: it becomes a schema problem). */
class PatternError extends Error {}

/** `.` and `\s` as ECMAScript defines them (RE2's `.` takes `\r`, its `\s` only ASCII whitespace). */
const DOT = '[^\\n\\r\\u2028\\u2029]';
const SPACES = '\\x09-\\x0d\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

const compiled = new Map<string, RegExpLike>();

/** Ajv's `code.regExp`: throws PatternError for a pattern that can run on neither engine safely. */
export const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string, flags: string): RegExpLike => (flags === 'u' && runsLinearOnV8(pattern) ? new RegExp(pattern, flags) : re2(pattern)),
  // Ajv names the engine by this text only in standalone code, which sluice does not generate.
  { code: 'linearRegExp' },
);

/** Why `pattern` cannot be used; undefined when it can. */
export function patternProblem(pattern: string): string | undefined {
  try {
    // JSON Schema patterns are ECMAScript's (V8 only parses here: it matches nothing).
    new RegExp(pattern, 'u');
  } catch (error) {
    return `not a valid regular expression: ${errorMessage(error)}`;
  }
  try {
    linearRegExp(pattern, 'u');
    return undefined;
  } catch (error) {
    if (error instanceof PatternError) return error.message;
    throw error;
  }
}

function re2(pattern: string): RegExpLike {
  const known = compiled.get(pattern);
  if (known) return known;
  const weight = [...pattern.matchAll(/\{(\d+)(?:,(\d*))?\}/g)].reduce(
    (sum, [, low, high]) => sum + Math.max(Number(low), Number(high ?? 0)),
    pattern.length,
  );
  if (weight > MAX_PATTERN_WEIGHT) {
    throw new PatternError(
      `pattern is too complex: its length and counted repeats ({n,m}) add up to ${weight}, at most ${MAX_PATTERN_WEIGHT}`,
    );
  }
  let program: RE2JS;
  try {
    program = RE2JS.compile(RE2JS.translateRegExp(toRe2Source(pattern)));
  } catch (error) {
    if (error instanceof PatternError) throw error;
    throw new PatternError(`RE2, which runs patterns in linear time, cannot run this one (${errorMessage(error)})`);
  }
  const size = program.programSize();
  if (size > MAX_PATTERN_PROGRAM) {
    throw new PatternError(
      `pattern is too complex: it compiles to ${size} RE2 instructions, at most ${MAX_PATTERN_PROGRAM} (matching time grows with it)`,
    );
  }
  const engine: RegExpLike = { test: (text) => program.test(text) };
  // Ajv keys the patterns it holds by their text: keep RE2's apart from V8's.
  Object.defineProperty(engine, 'toString', { value: () => `re2:/${pattern}/` });
  if (compiled.size >= COMPILED_KEPT) compiled.clear();
  compiled.set(pattern, engine);
  return engine;
}

/**
 * The pattern with `.` and `\s` spelt out as ECMAScript means them, for RE2; refuses backreferences
 * (which re2js would quietly read as literals: `\k<n>` as `k<n>`) and lookaround.
 */
function toRe2Source(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let at = 0; at < pattern.length; at++) {
    const char = pattern[at]!;
    const next = pattern[at + 1] ?? '';
    if (char === '\\') {
      at += 1;
      if (!inClass && (/[1-9]/.test(next) || (next === 'k' && pattern[at + 1] === '<'))) {
        throw new PatternError(`backreferences (\\${next}…) are not supported: patterns run on RE2, in linear time, which has none`);
      }
      if (next === 's') out += inClass ? SPACES : `[${SPACES}]`;
      else if (next === 'S' && !inClass) out += `[^${SPACES}]`;
      else out += `\\${next}`;
    } else if (inClass) {
      if (char === ']') inClass = false;
      out += char;
    } else if (char === '(' && /^\?(?:[=!]|<[=!])/.test(pattern.slice(at + 1, at + 4))) {
      throw new PatternError(
        'lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported: patterns run on RE2, in linear time, which has none',
      );
    } else {
      if (char === '[') inClass = true;
      out += char === '.' ? DOT : char;
    }
  }
  return out;
}
