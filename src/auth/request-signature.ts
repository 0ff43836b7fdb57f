import { createHash, createHmac } from 'node:crypto';

/**
 * Signed requests: an HMAC over a canonical string built from the request as it is sent, made
 * afresh for every attempt (a new timestamp; the same ids). Pure functions of their inputs; the
 * secret comes from the worker's environment (credentials.ts).
 */

/** What a template may name. `path` is the URL path as sent (percent-encoded); `pathWithQuery` adds `?query` when there is one. */
export const SIGNING_PLACEHOLDERS = ['timestamp', 'method', 'path', 'pathWithQuery', 'body', 'bodySha256', 'idempotencyKey', 'id'] as const;

export type SigningPlaceholder = (typeof SIGNING_PLACEHOLDERS)[number];

export type TimestampFormat = 'unixSeconds' | 'unixMilliseconds' | 'iso';

export interface HmacSettings {
  algorithm: 'sha256' | 'sha512' | 'sha1';
  /** `{placeholder}`s and literal text, e.g. `{timestamp}.{method}.{pathWithQuery}.{bodySha256}`. */
  template: string;
  /** Lower-case header names. */
  header: string;
  timestampHeader?: string | undefined;
  timestampFormat: TimestampFormat;
  encoding: 'hex' | 'base64';
  /** Written before the signature in its header, e.g. `sha256=`. */
  prefix: string;
}

/** The request as it goes out, and the ids that stay the same across its attempts. */
export interface SignedRequest {
  method: string;
  url: URL;
  /** The body text (sent as UTF-8); undefined for none. */
  body: string | undefined;
  /** The operation's idempotency key (also its `Idempotency-Key` header, except on GET/HEAD). */
  idempotencyKey: string;
  /** The operation's id (replays keep it). */
  id: string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** What is wrong with a template, or undefined: each unknown `{name}`, and a `{` or `}` that opens or closes nothing. */
export function templateProblem(template: string): string | undefined {
  const known = new Set<string>(SIGNING_PLACEHOLDERS);
  const unknown = [...template.matchAll(PLACEHOLDER)].map((match) => match[1]!).filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const names = [...new Set(unknown)].map((name) => `{${name}}`).join(', ');
    return `unknown placeholder ${names}; known: ${SIGNING_PLACEHOLDERS.map((name) => `{${name}}`).join(', ')}`;
  }
  if (/[{}]/.test(template.replace(PLACEHOLDER, ''))) return 'a { or } that is not part of a {placeholder}';
  return undefined;
}

/** Whether a template names a placeholder. */
export const templateUses = (template: string, name: SigningPlaceholder): boolean => template.includes(`{${name}}`);

export function formatTimestamp(nowMs: number, format: TimestampFormat): string {
  if (format === 'unixMilliseconds') return String(Math.floor(nowMs));
  if (format === 'iso') return new Date(nowMs).toISOString();
  return String(Math.floor(nowMs / 1000));
}

/** The canonical string a template describes, for this request at this time. */
export function canonicalString(template: string, request: SignedRequest, timestamp: string): string {
  const body = request.body ?? '';
  const values: Record<SigningPlaceholder, () => string> = {
    timestamp: () => timestamp,
    method: () => request.method.toUpperCase(),
    path: () => request.url.pathname,
    pathWithQuery: () => `${request.url.pathname}${request.url.search}`,
    body: () => body,
    bodySha256: () => createHash('sha256').update(body, 'utf8').digest('hex'),
    idempotencyKey: () => request.idempotencyKey,
    id: () => request.id,
  };
  // One pass over the template: a `{…}` inside the body is text, never a placeholder.
  return template.replace(PLACEHOLDER, (_, name: string) => values[name as SigningPlaceholder]());
}

/** The headers of a custom HMAC signature: the signature, and the timestamp when configured. */
export function hmacHeaders(settings: HmacSettings, secret: string, request: SignedRequest, nowMs: number): Record<string, string> {
  const timestamp = formatTimestamp(nowMs, settings.timestampFormat);
  const signature = createHmac(settings.algorithm, secret)
    .update(canonicalString(settings.template, request, timestamp), 'utf8')
    .digest(settings.encoding);
  return {
    [settings.header]: `${settings.prefix}${signature}`,
    ...(settings.timestampHeader ? { [settings.timestampHeader]: timestamp } : {}),
  };
}

const WHSEC = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The key of a Standard Webhooks secret (`whsec_` + base64; the prefix may be left out), or undefined when it is not one. */
export function standardWebhooksKey(secret: string): Buffer | undefined {
  const encoded = secret.startsWith(WHSEC) ? secret.slice(WHSEC.length) : secret;
  if (encoded.length === 0 || !BASE64.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64');
}

/**
 * Standard Webhooks (https://www.standardwebhooks.com): `webhook-id` is the idempotency key — the
 * same for every retry and replay of a message, as the spec asks — `webhook-timestamp` the unix
 * seconds of this attempt, `webhook-signature` `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
 */
export function standardWebhooksHeaders(key: Buffer, request: SignedRequest, nowMs: number): Record<string, string> {
  const timestamp = formatTimestamp(nowMs, 'unixSeconds');
  const signature = createHmac('sha256', key)
    .update(`${request.idempotencyKey}.${timestamp}.`, 'utf8')
    .update(request.body ?? '', 'utf8')
    .digest('base64');
  return { 'webhook-id': request.idempotencyKey, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
