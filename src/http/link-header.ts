/**
 * The `Link` header (RFC 8288 §3): `<target>; name=value; name="quoted, value", <target2>; ...`.
 * A scanner rather than a regular expression, so that commas, semicolons and `rel=` inside quoted
 * parameter values (a `title="Page, two"`) stay inside them. It never throws: a part it cannot read
 * is noted (the first such place is reported) and skipped up to the next comma, as a lenient client
 * would; the caller decides whether that is good enough.
 */

export interface LinkValue {
  /** The URI reference between `<` and `>`, as written (relative ones are resolved by the caller). */
  target: string;
  /** Parameter names lower-cased; the first occurrence of a name wins (RFC 8288 §3.3 for `rel`). */
  params: ReadonlyMap<string, string>;
}

export interface LinkHeader {
  /** The link-values that could be read. */
  links: LinkValue[];
  /** The first place that is not RFC 8288 syntax: its character offset and what was expected there. */
  problem?: { at: number; expected: string };
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const BARE_VALUE_CHAR = /[^\s;,"]/;
const OWS = /[ \t]/;

/** Where a read got to and what it read, or where it stopped and what it expected there. */
type Read<T> = { ok: true; value: T; at: number } | { ok: false; at: number; expected: string };

const unexpected = (at: number, expected: string): { ok: false; at: number; expected: string } => ({ ok: false, at, expected });

export function parseLinkHeader(header: string): LinkHeader {
  const links: LinkValue[] = [];
  let problem: LinkHeader['problem'];
  let at = 0;
  while (at < header.length) {
    at = skipOws(header, at);
    // Empty list elements (`, ,`) are allowed in HTTP lists (RFC 9110 §5.6.1).
    if (header[at] === ',') {
      at += 1;
      continue;
    }
    if (at >= header.length) break;
    const read = readLinkValue(header, at);
    if (read.ok) {
      links.push(read.value);
      at = read.at + 1;
    } else {
      problem ??= { at: read.at, expected: read.expected };
      at = skipPastComma(header, read.at);
    }
  }
  return problem ? { links, problem } : { links };
}

/** The relation types of a link-value's `rel` (case-insensitive, so lower-cased). */
export function relationsOf(link: LinkValue): string[] {
  const rel = link.params.get('rel');
  return rel === undefined
    ? []
    : rel
        .toLowerCase()
        .split(/[ \t]+/)
        .filter(Boolean);
}

/** One link-value from its `<`, up to the `,` after it (or the end). */
function readLinkValue(header: string, open: number): Read<LinkValue> {
  if (header[open] !== '<') return unexpected(open, '"<" opening a link target');
  const close = header.indexOf('>', open + 1);
  if (close === -1) return unexpected(header.length, '">" closing the link target');
  const params = new Map<string, string>();
  let at = close + 1;
  for (;;) {
    at = skipOws(header, at);
    if (at >= header.length || header[at] === ',') return { ok: true, value: { target: header.slice(open + 1, close), params }, at };
    if (header[at] !== ';') return unexpected(at, '";" before a parameter, or "," before the next link');
    at = skipOws(header, at + 1);
    const name = readToken(header, at, 'a parameter name');
    if (!name.ok) return name;
    at = skipOws(header, name.at);
    let value = '';
    if (header[at] === '=') {
      at = skipOws(header, at + 1);
      const read = header[at] === '"' ? readQuoted(header, at + 1) : readBareValue(header, at);
      if (!read.ok) return read;
      [value, at] = [read.value, read.at];
    }
    const key = name.value.toLowerCase();
    if (!params.has(key)) params.set(key, value);
  }
}

/** A quoted-string's text from just after its opening quote: `\x` is x; ends after the closing quote. */
function readQuoted(header: string, at: number): Read<string> {
  let value = '';
  while (at < header.length && header[at] !== '"') {
    if (header[at] === '\\' && at + 1 < header.length) at += 1;
    value += header[at];
    at += 1;
  }
  if (at >= header.length) return unexpected(at, 'a closing quote');
  return { ok: true, value, at: at + 1 };
}

/** A token (RFC 9110 §5.6.2): a parameter name. */
function readToken(header: string, at: number, what: string): Read<string> {
  return readWhile(header, at, TOKEN_CHAR, what);
}

/**
 * An unquoted value. The grammar says token, which an ext-value's `UTF-8'de'n%C3%A4chst` is; servers
 * also write `rel=http://x.test/next` unquoted, so anything up to white space, `;`, `,` or `"` is taken.
 */
function readBareValue(header: string, at: number): Read<string> {
  return readWhile(header, at, BARE_VALUE_CHAR, 'a parameter value');
}

function readWhile(header: string, at: number, allowed: RegExp, what: string): Read<string> {
  const start = at;
  while (at < header.length && allowed.test(header[at]!)) at += 1;
  if (at === start) return unexpected(at, what);
  return { ok: true, value: header.slice(start, at), at };
}

/** Past the next comma that is outside a quoted-string (or the end). */
function skipPastComma(header: string, at: number): number {
  let quoted = false;
  for (; at < header.length; at += 1) {
    const char = header[at];
    if (quoted && char === '\\') at += 1;
    else if (char === '"') quoted = !quoted;
    else if (char === ',' && !quoted) return at + 1;
  }
  return at;
}

function skipOws(header: string, at: number): number {
  while (at < header.length && OWS.test(header[at]!)) at += 1;
  return at;
}
