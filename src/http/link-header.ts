/**
 * The `Link` header (RFC 8288 §3): `<target>; name=value; name="quoted, value", <target2>; ...`.
 * A scanner rather than a regular expression, so that commas, semicolons and `rel=` inside quoted
 * parameter values (a `title="Page, two"`) stay inside them. It never throws: a link-value it
 * cannot read is skipped up to the next comma, as a lenient client would.
 */

export interface LinkValue {
  /** The URI reference between `<` and `>`, as written (relative ones are resolved by the caller). */
  target: string;
  /** Parameter names lower-cased; the first occurrence of a name wins (RFC 8288 §3.3 for `rel`). */
  params: ReadonlyMap<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const OWS = /[ \t]/;

export function parseLinkHeader(header: string): LinkValue[] {
  const links: LinkValue[] = [];
  let at = 0;
  while (at < header.length) {
    const open = header.indexOf('<', at);
    if (open === -1) break;
    const close = header.indexOf('>', open + 1);
    if (close === -1) break;
    const params = new Map<string, string>();
    at = readParams(header, close + 1, params);
    links.push({ target: header.slice(open + 1, close), params });
    // Anything but the comma that ends a link-value is not one: skip to the next comma.
    while (at < header.length && header[at] !== ',') at += 1;
  }
  return links;
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

/** Reads `; name[=value]` parameters from `at` into `params`; returns where they end. */
function readParams(header: string, at: number, params: Map<string, string>): number {
  for (;;) {
    at = skipOws(header, at);
    if (header[at] !== ';') return at;
    at = skipOws(header, at + 1);
    const nameStart = at;
    while (at < header.length && TOKEN_CHAR.test(header[at]!)) at += 1;
    const name = header.slice(nameStart, at).toLowerCase();
    at = skipOws(header, at);
    let value = '';
    if (header[at] === '=') {
      at = skipOws(header, at + 1);
      [value, at] = header[at] === '"' ? readQuoted(header, at + 1) : readToken(header, at);
    }
    if (name !== '' && !params.has(name)) params.set(name, value);
  }
}

/** A quoted-string's text from just after its opening quote: `\x` is x; ends after the closing quote. */
function readQuoted(header: string, at: number): [string, number] {
  let value = '';
  while (at < header.length && header[at] !== '"') {
    if (header[at] === '\\' && at + 1 < header.length) at += 1;
    value += header[at];
    at += 1;
  }
  return [value, at + 1];
}

/** An unquoted value: up to white space, `;` or `,`. */
function readToken(header: string, at: number): [string, number] {
  const start = at;
  while (at < header.length && !/[\s;,]/.test(header[at]!)) at += 1;
  return [header.slice(start, at), at];
}

function skipOws(header: string, at: number): number {
  while (at < header.length && OWS.test(header[at]!)) at += 1;
  return at;
}
