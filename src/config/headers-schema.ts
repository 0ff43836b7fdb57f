import { z } from 'zod';

/**
 * The rule for HTTP headers given as data, in a target's default headers (sluice-config.ts) and in
 * an operation's own headers (operation/schema.ts): names are tokens and values hold no CR/LF, so a
 * bad header is refused where it is written rather than failing on every request.
 */

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NO_CR_LF = /^[^\r\n]*$/;

export const headersSchema = z.record(
  z.string().regex(HEADER_NAME, 'header names may only hold token characters'),
  z.string().regex(NO_CR_LF, 'header values may not contain CR or LF'),
);
