import type { Target } from '../config/sluice-config.js';
import { RequestError } from '../errors.js';
import { METHODS_WITHOUT_IDEMPOTENCY_HEADER, type Operation } from '../operation/schema.js';
import type { DownloadSpec } from './download.js';
import { fileTransfersOf, type RequestFiles } from './transfer-spec.js';
import type { UploadSpec } from './upload-body.js';

/** Everything needed to send one attempt of an operation. Built once per job, reused per attempt. */
export interface RequestSpec {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
  timeouts: Operation['timeoutMs'];
  /** Follow 3xx redirects (default true); false when the operation expects a 3xx itself. */
  followRedirects?: boolean;
  /** Headers holding credentials besides Authorization/Cookie: dropped on a redirect to another origin. */
  secretHeaders?: string[];
  /** Keep the whole decoded response body (up to the client's maxResponseBytes) for `expect.schema`. */
  keepBodyText?: boolean;
  /** A body read from files when it is dispatched (every attempt, every 307/308 redirect); `body` is then undefined. */
  upload?: UploadSpec;
  /** Write an accepted response's body to a file instead of keeping it (see download.ts). */
  download?: DownloadSpec;
}

/**
 * Resolves an operation against its target: the URL (path against `baseUrl`, query appended,
 * arrays repeated), headers (target defaults, then the operation's), the encoded body and its
 * content type, and the `Idempotency-Key` header on every non-GET/HEAD request. An operation that
 * uploads or downloads files needs `files` (see transfer-spec.ts); without it, that is a RequestError.
 */
export function buildRequestSpec(
  operation: Operation,
  target: Target | undefined,
  idempotencyKey: string,
  files?: RequestFiles,
): RequestSpec {
  const url = resolveUrl(operation.url, target);
  for (const [name, value] of Object.entries(operation.query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(item));
  }

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(target?.headers ?? {})) headers[name.toLowerCase()] = value;
  for (const [name, value] of Object.entries(operation.headers ?? {})) headers[name.toLowerCase()] = value;

  let body: string | undefined;
  if (operation.json !== undefined) {
    body = JSON.stringify(operation.json);
    headers['content-type'] ??= 'application/json';
  } else if (operation.form !== undefined) {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(operation.form)) {
      for (const item of Array.isArray(value) ? value : [value]) form.append(name, String(item));
    }
    body = form.toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (operation.body !== undefined) {
    body = operation.body;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  }

  const transfers = fileTransfersOf(operation, headers, files);
  if (!METHODS_WITHOUT_IDEMPOTENCY_HEADER.has(operation.method)) headers['idempotency-key'] ??= idempotencyKey;
  const followRedirects = !(operation.expect?.status ?? []).some((status) => status >= 300 && status < 400);
  return {
    method: operation.method,
    url,
    headers,
    body,
    timeouts: operation.timeoutMs,
    followRedirects,
    ...(operation.expect?.schema !== undefined ? { keepBodyText: true } : {}),
    ...transfers,
  };
}

function resolveUrl(url: string, target: Target | undefined): URL {
  if (!url.startsWith('/')) return new URL(url);
  if (!target) throw new RequestError(`operation url ${url} is a path but names no target`);
  // Join rather than resolve, so a baseUrl with a path prefix (https://api.example.com/v2) keeps it.
  const base = baseOf(target.baseUrl);
  const joined = new URL(`${base.prefix}${url}`, base.origin);
  for (const [name, value] of base.query) joined.searchParams.append(name, value);
  return joined;
}

interface ParsedBase {
  origin: string;
  /** The base URL's path without its trailing slash. */
  prefix: string;
  query: [string, string][];
}

/** Targets' base URLs, parsed once each: every operation of a bulk run joins its path to one of a few. */
const bases = new Map<string, ParsedBase>();
const MAX_BASES = 1_000;

function baseOf(baseUrl: string): ParsedBase {
  let base = bases.get(baseUrl);
  if (!base) {
    const parsed = new URL(baseUrl);
    const prefix = parsed.pathname.endsWith('/') ? parsed.pathname.slice(0, -1) : parsed.pathname;
    base = { origin: parsed.origin, prefix, query: [...parsed.searchParams] };
    if (bases.size >= MAX_BASES) bases.clear();
    bases.set(baseUrl, base);
  }
  return base;
}
