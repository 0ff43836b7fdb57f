/**
 * What people are shown of operations and jobs — the HTTP API, the CLI, bull-board and the
 * dashboard — with anything that looks like a credential withheld. Operations are not supposed to
 * carry secrets (credentials come from the target config, resolved by the worker), but a caller may
 * still put an `Authorization` header, an `api_key` query parameter or a password in a URL into one;
 * a read token or a terminal must not be where it leaks. Only copies are redacted: what is stored
 * (and what a replay sends) stays as it was enqueued.
 */

export const REDACTED = '[redacted]';

/**
 * Names (of headers, query parameters, object keys) whose values are withheld: authorization,
 * cookies, API keys, tokens, secrets, passwords and passphrases, credentials, sessions, signatures,
 * private keys.
 */
const CREDENTIAL_NAME =
  /authori[sz]ation|cookie|api[-_.]?key|^key$|^x-[\w-]*-key$|token|secret|passw(?:or)?d|passphrase|^pwd$|credential|session|signature|^sig$|private[-_]?key|^auth$|^x-auth/i;

export function isCredentialName(name: string): boolean {
  return CREDENTIAL_NAME.test(name);
}

/** A header value that is a scheme and a credential (`Bearer abc`, `Basic dXNlcjpw`), whatever the header's name. */
const AUTH_SCHEME_VALUE = /^(?:bearer|basic|digest|token|negotiate|bot|apikey|aws4-hmac-sha256)\s+\S/i;

const URL_LIKE = /^[a-z][a-z\d+.-]*:\/\//i;

/** Deeper values are cut off (cycles, or a pathological body). */
const MAX_DEPTH = 32;

/** Strings longer than this are not parsed as JSON to look inside them. */
const MAX_JSON_TEXT = 1_000_000;

/** `a=1&token=x`: the values of credential-looking names withheld; anything else as it was. */
function redactParams(params: string): string {
  let changed = false;
  const pairs = params.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) return pair;
    let name = pair.slice(0, eq);
    try {
      name = decodeURIComponent(name.replaceAll('+', ' '));
    } catch {
      // Not percent-encoded properly: judged as written.
    }
    if (!isCredentialName(name)) return pair;
    changed = true;
    return `${pair.slice(0, eq + 1)}${REDACTED}`;
  });
  return changed ? pairs.join('&') : params;
}

/**
 * One word of text: a URL (absolute, or a path with a query) with its password and credential-looking
 * query parameters withheld, or `k=v&k=v` (a form body) likewise. Text is kept as written otherwise
 * (no URL normalisation), so what is shown is what was enqueued, less the secrets.
 */
function redactWord(word: string): string {
  let out = word;
  const scheme = word.indexOf('://');
  if (scheme !== -1) {
    const start = scheme + 3;
    let end = start;
    while (end < word.length && !'/?#'.includes(word[end]!)) end += 1;
    const authority = word.slice(start, end);
    const at = authority.lastIndexOf('@');
    const colon = authority.indexOf(':');
    if (at !== -1 && colon !== -1 && colon < at) out = `${word.slice(0, start + colon + 1)}redacted${word.slice(start + at)}`;
  }
  const query = out.indexOf('?');
  if (query !== -1) {
    const hash = out.indexOf('#', query);
    const end = hash === -1 ? out.length : hash;
    return `${out.slice(0, query + 1)}${redactParams(out.slice(query + 1, end))}${out.slice(end)}`;
  }
  return scheme === -1 && out.includes('=') ? redactParams(out) : out;
}

/** A URL with its password and credential-looking query parameters withheld; text that is not a URL unchanged. */
export function redactUrlText(text: string): string {
  return URL_LIKE.test(text) ? redactWord(text) : text;
}

/** `"name": "value"` (JSON, quoted). */
const QUOTED_PAIR = /(["'])([A-Za-z_][\w.-]*)\1(\s*[:=]\s*)"((?:[^"\\]|\\.)*)"/g;
/** `name: value`, `name=value`, and `Authorization: Bearer value`. */
const BARE_PAIR = /\b([A-Za-z_][\w.-]*)(\s*[:=]\s*)((?:(?:Bearer|Basic|Digest|Token)\s+)?[^\s"',;&)}\]]+)/g;
/** A bearer or basic credential on its own. */
const SCHEME_CREDENTIAL = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*/g;

/**
 * Free text (an error message, a URL, a form body, a stack trace, a job's log line) with credentials
 * withheld: every URL's password and credential-looking query parameter, the values of
 * credential-looking names (`token=…`, `"password":"…"`, `Authorization: Bearer …`), and bearer or
 * basic credentials standing alone. Words are split at white space and quotes.
 */
export function redactText(text: string): string {
  const words = text.includes('=') || text.includes('@') ? text.split(/([\s"'<>`]+)/) : [text];
  for (let i = 0; i < words.length; i += 2) {
    // Punctuation that ends a sentence or closes a bracket is not part of a value.
    const [, word, after] = /^(.*?)([.,;:!?)\]}]*)$/s.exec(words[i]!)!;
    words[i] = redactWord(word!) + after!;
  }
  return words
    .join('')
    .replace(QUOTED_PAIR, (pair, quote: string, name: string, separator: string) =>
      isCredentialName(name) ? `${quote}${name}${quote}${separator}"${REDACTED}"` : pair,
    )
    .replace(BARE_PAIR, (pair, name: string, separator: string, value: string) =>
      isCredentialName(name) && !value.startsWith(REDACTED.slice(0, -1)) && !value.startsWith('"')
        ? `${name}${separator}${REDACTED}`
        : pair,
    )
    .replace(SCHEME_CREDENTIAL, (_credential, scheme: string) => `${scheme} ${REDACTED}`);
}

/** A request target (`/path?query`) with the values of credential-looking query parameters withheld, for logs. */
export function redactRequestTarget(target: string): string {
  const question = target.indexOf('?');
  return question === -1 ? target : `${target.slice(0, question + 1)}${redactParams(target.slice(question + 1))}`;
}

/** A string holding JSON (a `body`, an excerpt) is looked into; the JSON is rewritten only when something was withheld. */
function redactString(text: string, depth: number): string {
  const first = text.trimStart()[0];
  if ((first === '{' || first === '[') && text.length <= MAX_JSON_TEXT) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return redactText(text);
    }
    const redacted = redactValue(parsed, depth + 1, false);
    const again = JSON.stringify(redacted);
    return again === JSON.stringify(parsed) ? text : again;
  }
  return redactText(text);
}

const present = (value: unknown): boolean => value !== null && value !== undefined && value !== '';

/** `headers`: the value is a map of header names to values. */
function redactValue(value: unknown, depth: number, headers: boolean): unknown {
  if (depth > MAX_DEPTH) return REDACTED;
  if (typeof value === 'string') return redactString(value, depth);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, false));
  if (value === null || typeof value !== 'object') return value;
  // `{name, value}`: a multipart part (or a header given as a pair) named like a credential.
  const named = (value as { name?: unknown }).name;
  const secretPair = typeof named === 'string' && isCredentialName(named);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const secret =
      isCredentialName(key) || (secretPair && key === 'value') || (headers && typeof item === 'string' && AUTH_SCHEME_VALUE.test(item));
    out[key] = secret && present(item) ? REDACTED : redactValue(item, depth + 1, /^headers$/i.test(key));
  }
  return out;
}

/**
 * A copy of `value` in which every property whose name looks like a credential holds `[redacted]`
 * (at any depth: headers, query, bodies, multipart parts, result lines), header values that carry
 * an auth scheme (`Bearer …`) are withheld, and every URL, path with a query, form body or JSON held
 * in a string has its passwords and credential-looking parameters withheld.
 */
export function redactJobData(value: unknown): unknown {
  return redactValue(value, 0, false);
}

/** `redactJobData` for a value whose shape callers keep using (a withheld field holds the string `[redacted]`). */
export function redacted<T>(value: T): T {
  return redactJobData(value) as T;
}
