/**
 * Job data as bull-board shows it, with anything that looks like a credential replaced. Operations
 * are not supposed to carry secrets (credentials come from the target config, resolved by the
 * worker), but a caller may still put an `Authorization` header or an `api_key` query parameter in
 * one; the dashboard must not be where it leaks.
 */

export const REDACTED = '[redacted]';

/**
 * Names (of headers, query parameters, object keys) whose values are withheld: authorization,
 * cookies, API keys, tokens, secrets, passwords, credentials, sessions, signatures, private keys.
 */
const CREDENTIAL_NAME =
  /authori[sz]ation|cookie|api[-_.]?key|^key$|^x-[\w-]*-key$|token|secret|passw(?:or)?d|^pwd$|credential|session|signature|^sig$|private[-_]?key|^auth$|^x-auth/i;

export function isCredentialName(name: string): boolean {
  return CREDENTIAL_NAME.test(name);
}

const URL_LIKE = /^[a-z][a-z\d+.-]*:\/\//i;

/** A URL with its password and credential-looking query parameters withheld; other text unchanged. */
export function redactUrlText(text: string): string {
  if (!URL_LIKE.test(text)) return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  let changed = false;
  if (url.password) {
    url.password = 'redacted';
    changed = true;
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (!isCredentialName(name)) continue;
    url.searchParams.set(name, REDACTED);
    changed = true;
  }
  // The brackets stay legible (they are display only, never sent anywhere).
  return changed ? url.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED) : text;
}

/** A URL inside free text; trailing punctuation is left outside it. */
const URL_IN_TEXT = /[a-z][a-z\d+.-]*:\/\/[^\s"'<>]*[^\s"'<>.,;:!?)\]}]/gi;
/** `"name": "value"` (JSON, quoted). */
const QUOTED_PAIR = /(["'])([A-Za-z_][\w.-]*)\1(\s*[:=]\s*)"((?:[^"\\]|\\.)*)"/g;
/** `name=value`, `name: value`, and `Authorization: Bearer value`. */
const BARE_PAIR = /\b([A-Za-z_][\w.-]*)(\s*[:=]\s*)((?:(?:Bearer|Basic|Digest|Token)\s+)?[^\s"',;&)}\]]+)/g;
/** A bearer or basic credential on its own. */
const SCHEME_CREDENTIAL = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*/g;

/**
 * Free text (an error message, a stack trace, a log line) with credentials withheld: URLs as
 * `redactUrlText` does, values of credential-looking names (`token=…`, `"password":"…"`,
 * `Authorization: Bearer …`), and bearer or basic credentials standing alone.
 */
export function redactText(text: string): string {
  return text
    .replace(URL_IN_TEXT, (url) => redactUrlText(url))
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

/**
 * A request target (`/path?query`) with the values of credential-looking query parameters withheld,
 * for logs. Parameter names are matched decoded (`access%5Ftoken` is `access_token`); everything
 * else is kept byte for byte.
 */
export function redactRequestTarget(target: string): string {
  const question = target.indexOf('?');
  if (question === -1) return target;
  const query = target
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        // A malformed escape: match the name as it was sent.
      }
      return isCredentialName(name) ? `${pair.slice(0, eq)}=${REDACTED}` : pair;
    });
  return `${target.slice(0, question)}?${query.join('&')}`;
}

/**
 * A copy of `value` in which every property whose name looks like a credential holds `[redacted]`
 * (at any depth: headers, query, bodies, result lines), and every URL string has its password and
 * credential-looking query parameters withheld. Cycles and very deep values are cut off.
 */
export function redactJobData(value: unknown, depth = 0): unknown {
  if (depth > 32) return REDACTED;
  if (typeof value === 'string') return redactUrlText(value);
  if (Array.isArray(value)) return value.map((item) => redactJobData(item, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isCredentialName(key) && item !== null && item !== undefined && item !== '' ? REDACTED : redactJobData(item, depth + 1);
  }
  return out;
}
