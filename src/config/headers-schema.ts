import { z } from 'zod';

/**
 * The rule for HTTP headers given as data, in a target's default headers (sluice-config.ts) and in
 * an operation's own headers (operation/schema.ts): names are tokens and values hold no CR/LF nor
 * any character the HTTP client refuses to send, so a bad header is refused where it is written
 * rather than failing on every request.
 */

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NO_CR_LF = /^[^\r\n]*$/;
/** What a header value may hold besides CR/LF (refused apart): tabs, visible ASCII, spaces and Latin-1 (sent as its bytes). */
const SENDABLE = /^[\t\r\n\x20-\x7e\x80-\xff]*$/;

/** Why a header value cannot be sent (what the HTTP client refuses), besides CR/LF. */
export const UNSENDABLE_HEADER_VALUE =
  'may hold only visible characters, spaces, tabs and Latin-1 letters (no control characters, nothing above U+00FF: percent-encode or base64 other text)';

/** Whether a value (CR/LF aside) can be sent in a header. */
export function isSendableHeaderValue(value: string): boolean {
  return SENDABLE.test(value);
}

export const headersSchema = z.record(
  z.string().regex(HEADER_NAME, 'header names may only hold token characters'),
  z.string().regex(NO_CR_LF, 'header values may not contain CR or LF').regex(SENDABLE, `header values ${UNSENDABLE_HEADER_VALUE}`),
);
