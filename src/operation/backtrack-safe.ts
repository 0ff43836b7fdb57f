/**
 * Which `expect.schema` patterns V8's own backtracking engine runs in linear time, so that they keep
 * its speed and exact ECMAScript semantics; every other pattern runs on RE2 (`linear-regexp.ts`).
 *
 * The class: an optional `^`, then single-character atoms (a literal, `.`, `\d \D \w \W \s \S`, a
 * bracket class of those and ranges), each with an optional greedy quantifier, then an optional `$`.
 * No groups, alternation, lookaround, backreferences or lazy quantifiers. Why that is linear: when the
 * characters a repeated atom takes are disjoint from those the atoms after it can start with (up to
 * and including the first required one), giving a character back can never lead to a match, so no
 * atom is ever re-tried with another count: one pass per start position. `^` makes that one start
 * position; a pattern without it qualifies only when it has a short, fixed length.
 */

/** A code point range, both ends included. */
type Range = readonly [number, number];

interface Atom {
  set: Range[];
  min: number;
  max: number;
}

/** Longest pattern without `^` kept on V8: it is tried at every start position. */
const MAX_UNANCHORED_LENGTH = 32;
/** Longest pattern (code points) this check looks at: it is quadratic in the atoms, and real patterns are short. */
const MAX_PATTERN_LENGTH = 256;
const MAX_CODE_POINT = 0x10ffff;

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** ECMAScript's WhiteSpace and LineTerminator, what `\s` matches. */
const SPACE: Range[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Range[] = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];
const CLASS_ESCAPES: Record<string, Range[]> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};
const CONTROL_ESCAPES: Record<string, number> = { t: 0x09, n: 0x0a, v: 0x0b, f: 0x0c, r: 0x0d };
/** Characters that `\` may escape in a unicode-mode pattern (`-` only inside a class). */
const SYNTAX_CHARACTERS = new Set('^$\\.*+?()[]{}|/');
/** Characters with a meaning of their own outside a class: not literals. */
const NOT_LITERAL = new Set('^$\\.*+?()[]{}|');

/** True when V8 runs `pattern` (with the `u` flag, as Ajv compiles it) in time linear in the input. */
export function runsLinearOnV8(pattern: string): boolean {
  const parsed = parseSimple(pattern);
  if (!parsed) return false;
  const { atoms, anchored } = parsed;
  if (!anchored && !atoms.every((atom) => atom.min === atom.max)) return false;
  if (!anchored && atoms.reduce((sum, atom) => sum + atom.max, 0) > MAX_UNANCHORED_LENGTH) return false;
  return atoms.every((atom, index) => atom.min === atom.max || !overlaps(atom.set, followSet(atoms, index)));
}

/** What the atoms after `index` can start with: up to and including the first one that must match. */
function followSet(atoms: readonly Atom[], index: number): Range[] {
  const follow: Range[] = [];
  for (const atom of atoms.slice(index + 1)) {
    follow.push(...atom.set);
    if (atom.min >= 1) break;
  }
  return follow;
}

/** The pattern as atoms, or undefined when it is outside the class. */
function parseSimple(pattern: string): { atoms: Atom[]; anchored: boolean } | undefined {
  const chars = Array.from(pattern);
  if (chars.length > MAX_PATTERN_LENGTH) return undefined;
  const anchored = chars[0] === '^';
  let end = chars.length;
  if (end > (anchored ? 1 : 0) && chars[end - 1] === '$' && chars[end - 2] !== '\\') end -= 1;
  const atoms: Atom[] = [];
  let at = anchored ? 1 : 0;
  while (at < end) {
    const set = parseAtom(chars, at);
    if (!set) return undefined;
    const quantifier = parseQuantifier(chars, set.next, end);
    if (!quantifier) return undefined;
    atoms.push({ set: set.set, min: quantifier.min, max: quantifier.max });
    at = quantifier.next;
  }
  return { atoms, anchored };
}

function parseAtom(chars: readonly string[], at: number): { set: Range[]; next: number } | undefined {
  const char = chars[at]!;
  if (char === '.') return { set: complement(LINE_TERMINATORS), next: at + 1 };
  if (char === '[') return parseClass(chars, at + 1);
  if (char === '\\') {
    const escaped = chars[at + 1] ?? '';
    const set = CLASS_ESCAPES[escaped] ?? single(escapedCodePoint(escaped, false));
    return set ? { set, next: at + 2 } : undefined;
  }
  if (NOT_LITERAL.has(char)) return undefined;
  return { set: [[char.codePointAt(0)!, char.codePointAt(0)!]], next: at + 1 };
}

/** `[...]` from just after its `[`: its code points, complemented for `[^...]`. */
function parseClass(chars: readonly string[], start: number): { set: Range[]; next: number } | undefined {
  const negated = chars[start] === '^';
  const ranges: Range[] = [];
  let at = negated ? start + 1 : start;
  while (at < chars.length && chars[at] !== ']') {
    const low = classAtom(chars, at);
    if (!low) return undefined;
    at = low.next;
    if (chars[at] === '-' && at + 1 < chars.length && chars[at + 1] !== ']') {
      const high = classAtom(chars, at + 1);
      if (!high || low.codePoint === undefined || high.codePoint === undefined || high.codePoint < low.codePoint) return undefined;
      ranges.push([low.codePoint, high.codePoint]);
      at = high.next;
    } else if (low.codePoint === undefined) ranges.push(...low.set);
    else ranges.push([low.codePoint, low.codePoint]);
  }
  if (at >= chars.length) return undefined;
  const set = normalize(ranges);
  return { set: negated ? complement(set) : set, next: at + 1 };
}

/** One member of a class: a code point (which may end a range) or a class escape's set. */
function classAtom(chars: readonly string[], at: number): { codePoint?: number; set: Range[]; next: number } | undefined {
  const char = chars[at]!;
  if (char !== '\\') return { codePoint: char.codePointAt(0)!, set: [], next: at + 1 };
  const escaped = chars[at + 1] ?? '';
  const set = CLASS_ESCAPES[escaped];
  if (set) return { set, next: at + 2 };
  const codePoint = escapedCodePoint(escaped, true);
  return codePoint === undefined ? undefined : { codePoint, set: [], next: at + 2 };
}

/** `\t`, `\.`, `\-` (in a class)…; undefined for every escape outside the class (`\b`, `\1`, `\u…`, `\p{…}`). */
function escapedCodePoint(escaped: string, inClass: boolean): number | undefined {
  if (escaped in CONTROL_ESCAPES) return CONTROL_ESCAPES[escaped];
  if (SYNTAX_CHARACTERS.has(escaped) || (inClass && escaped === '-')) return escaped.codePointAt(0);
  return undefined;
}

/** A greedy quantifier at `at` (none: exactly once); undefined for a lazy one or anything else. */
function parseQuantifier(chars: readonly string[], at: number, end: number): { min: number; max: number; next: number } | undefined {
  const char = at < end ? chars[at] : undefined;
  let bounds: { min: number; max: number; next: number } | undefined;
  if (char === '*') bounds = { min: 0, max: Infinity, next: at + 1 };
  else if (char === '+') bounds = { min: 1, max: Infinity, next: at + 1 };
  else if (char === '?') bounds = { min: 0, max: 1, next: at + 1 };
  else if (char === '{') {
    const text = chars.slice(at, end).join('');
    const match = /^\{(\d+)(,(\d*))?\}/.exec(text);
    if (!match) return undefined;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3]);
    bounds = { min, max, next: at + Array.from(match[0]).length };
  } else return { min: 1, max: 1, next: at };
  return bounds.next < end && chars[bounds.next] === '?' ? undefined : bounds;
}

function single(codePoint: number | undefined): Range[] | undefined {
  return codePoint === undefined ? undefined : [[codePoint, codePoint]];
}

function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [low, high] of sorted) {
    const last = out.at(-1);
    if (last && low <= last[1] + 1) last[1] = Math.max(last[1], high);
    else out.push([low, high]);
  }
  return out;
}

function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [low, high] of normalize(ranges)) {
    if (low > next) out.push([next, low - 1]);
    next = high + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

function overlaps(a: readonly Range[], b: readonly Range[]): boolean {
  return a.some(([low, high]) => b.some(([otherLow, otherHigh]) => low <= otherHigh && otherLow <= high));
}
