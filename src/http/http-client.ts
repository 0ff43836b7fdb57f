import { Agent, buildConnector, type Dispatcher } from 'undici';
import { NetworkError, SluiceError, RequestError, ShutdownAbortError, TimeoutError, TlsError, errorMessage } from '../errors.js';
import type { RequestSpec } from './request-spec.js';
import { ACCEPT_ENCODING } from './decode-body.js';
import { readCappedBody, type CappedBody } from './read-body.js';
import { dispatchRequest, type AbortSource, type DispatchedResponse } from './dispatched-response.js';
import { parseRetryAfter } from './retry-after.js';
import { parseRateLimitHeaders, type RateLimitInfo } from './rate-limit-headers.js';
import { isExpectedStatus } from './expected-status.js';
import { saveDownload, type DownloadedFile, type SavedDownload } from './download.js';
import { prepareDownloadPaths, type DownloadPaths } from './safe-path.js';
import { openUploadBody } from './upload-body.js';
import { followRedirects } from './redirects.js';
import { guardedConnector } from './guarded-connector.js';
import { keepTlsAlerts, type TlsConnectOptions } from './tls-connector.js';
import { tlsFailure } from './tls-failures.js';
import { onAbort } from '../support/abortable.js';

export interface HttpClientOptions {
  /** Largest response body kept in a result, in bytes; the rest is read and dropped. Default 8 KiB. */
  maxBodyBytes?: number;
  /**
   * Largest response body read at all, in decoded bytes; past it reading stops and the body gets a
   * RESPONSE_TOO_LARGE problem (a compression bomb stops here too). Default 10 MiB.
   */
  maxResponseBytes?: number;
  /** How long an idle keep-alive connection is kept open. Default 10 s. */
  keepAliveTimeoutMs?: number;
  /** Connections per origin at most. Default: unbounded (the worker's concurrency bounds it). */
  connectionsPerOrigin?: number;
  /** Asked for every redirect's URL: a reason not to follow it, or undefined (see config/destinations.ts). */
  refuseUrl?: (url: URL) => string | undefined;
  /**
   * Asked for every address a connection would go to, after DNS: a reason to refuse it, or
   * undefined. The connection is refused before any byte is sent (see config/destinations.ts).
   */
  refuseAddress?: (hostname: string, port: number, address: string) => string | undefined;
  /**
   * TLS settings per origin (`https://host[:port]`, as `URL.origin` writes it): a private CA, a
   * client certificate, the server name. Connections to that origin, and only those, use them: a
   * redirect elsewhere does not take a client certificate along.
   */
  tls?: ReadonlyMap<string, TlsConnectOptions>;
}

export interface HttpResponseSummary {
  status: number;
  headers: ResponseHeaders;
  body: CappedBody;
  durationMs: number;
  /** `Retry-After` in milliseconds from now, when the target sent one. */
  retryAfterMs: number | undefined;
  /** The rate-limit headers, when the target sent them. */
  rateLimit: RateLimitInfo | undefined;
  /** The file an accepted body was written to (`spec.download`); `body` then holds no value. */
  download?: DownloadedFile;
}

/** The few response headers worth keeping in a result. */
export interface ResponseHeaders {
  contentType?: string;
  location?: string;
  etag?: string;
  /** RFC 8288 links (pagination). */
  link?: string;
  requestId?: string;
}

export interface HttpClient {
  /** Sends one attempt. Resolves with any HTTP status; rejects with a Timeout/Network/Request/ShutdownAbort error. */
  send(spec: RequestSpec, signal?: AbortSignal): Promise<HttpResponseSummary>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/** Distinct connect timeouts that get a pool of their own before they are rounded to seconds. */
const MAX_EXACT_AGENTS = 8;

const REQUEST_ID_HEADERS = ['x-request-id', 'request-id', 'x-amzn-requestid', 'x-correlation-id'];

/**
 * One undici keep-alive pool per origin (an `Agent` per distinct connect timeout, since undici sets
 * that per dispatcher). Every request is bounded: connect, response headers and a total deadline.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const maxBodyBytes = options.maxBodyBytes ?? 8 * 1024;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const agents = new Map<string, Agent>();
  const timeouts = new Set<number>();
  let closing: Promise<void> | undefined;

  function agentFor(requestedMs: number, origin: string): Agent {
    // Operations choose their own connect timeout; past a few distinct values, round them up to
    // whole seconds so that the number of pools stays small.
    const connectTimeoutMs =
      timeouts.has(requestedMs) || timeouts.size < MAX_EXACT_AGENTS ? requestedMs : Math.ceil(requestedMs / 1_000) * 1_000;
    timeouts.add(connectTimeoutMs);
    // An origin with TLS settings of its own gets pools of its own.
    const tls = options.tls?.get(origin);
    const key = tls ? `${connectTimeoutMs} ${origin}` : String(connectTimeoutMs);
    let agent = agents.get(key);
    if (!agent) {
      const connector = options.refuseAddress
        ? guardedConnector(connectTimeoutMs, options.refuseAddress, tls)
        : buildConnector({ ...tls, timeout: connectTimeoutMs });
      agent = new Agent({
        connect: keepTlsAlerts(connector),
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
        ...(options.connectionsPerOrigin ? { connections: options.connectionsPerOrigin } : {}),
      });
      agents.set(key, agent);
    }
    return agent;
  }

  async function send(spec: RequestSpec, signal?: AbortSignal): Promise<HttpResponseSummary> {
    if (closing) throw new ShutdownAbortError();
    // One abort per attempt, by the total deadline or by the caller's signal. (Cheaper than
    // AbortSignal.timeout + AbortSignal.any, which showed as ~5% of a worker's CPU in a profile, and
    // than an AbortController, whose signal is an EventTarget: see RequestAbort.)
    const controller = new RequestAbort();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException(`total timeout of ${spec.timeouts.total} ms`, 'TimeoutError'));
    }, spec.timeouts.total);
    const stopListening = signal ? onAbort(signal, () => controller.abort(signal.reason)) : undefined;
    const started = performance.now();
    const dispatch = async (request: RequestSpec) =>
      dispatchRequest(
        agentFor(request.timeouts.connect, request.url.origin),
        {
          origin: request.url.origin,
          path: `${request.url.pathname}${request.url.search}`,
          method: request.method,
          headers: withAcceptEncoding(request.headers),
          // Files are opened afresh for every dispatch: a streamed body cannot be replayed. undici sends
          // a Blob (a file-backed one here) by streaming it, though its types leave Blob out.
          body: request.upload ? ((await openUploadBody(request.upload)) as Dispatcher.DispatchOptions['body']) : request.body,
          headersTimeout: request.timeouts.headers,
          bodyTimeout: request.timeouts.total,
        },
        controller,
      );
    try {
      // Before the request is sent: a download path that cannot be used fails the attempt unsent.
      const paths = spec.download ? await prepareDownloadPaths(spec.download.downloadDir, spec.download.path) : undefined;
      const response = await followRedirects(spec, await dispatch(spec), dispatch, options.refuseUrl);
      const headers = response.headers;
      const { body, file } = await readBody(response, spec, paths, { maxBodyBytes, maxResponseBytes });
      return {
        status: response.statusCode,
        headers: pickHeaders(headers),
        body,
        durationMs: Math.round(performance.now() - started),
        retryAfterMs: parseRetryAfter(header(headers, 'retry-after')),
        rateLimit: parseRateLimitHeaders(headers),
        ...(file ? { download: file } : {}),
      };
    } catch (error) {
      throw toSluiceError(error, spec, signal, timedOut);
    } finally {
      clearTimeout(deadline);
      stopListening?.();
    }
  }

  function close(): Promise<void> {
    closing ??= Promise.allSettled([...agents.values()].map((agent) => agent.close())).then(() => undefined);
    return closing;
  }

  return { send, close };
}

/**
 * What aborts one request (dispatched-response.ts AbortSource): the total deadline or the caller's
 * signal. It holds one listener per request and dispatch. Creating an AbortController's signal and
 * adding and removing its listener cost ~4 % of a worker's CPU at full speed (a profile of 60,000
 * operations in lanes).
 */
class RequestAbort implements AbortSource {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] = [];

  once(event: string, listener: () => void): this {
    if (event === 'abort') this.#listeners.push(listener);
    return this;
  }

  removeListener(event: string, listener: () => void): this {
    // Called once per request as undici finishes with it: no array made for it.
    const at = event === 'abort' ? this.#listeners.indexOf(listener) : -1;
    if (at >= 0) this.#listeners.splice(at, 1);
    return this;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }
}

/**
 * The body of the final response. An accepted body of a download goes to its file, however large
 * (maxResponseBytes is for bodies kept in memory); any other is read into memory, capped.
 */
async function readBody(
  response: DispatchedResponse,
  spec: RequestSpec,
  paths: DownloadPaths | undefined,
  limits: { maxBodyBytes: number; maxResponseBytes: number },
): Promise<SavedDownload> {
  const headers = response.headers;
  const saved =
    paths && isExpectedStatus(response.statusCode, spec.download?.acceptStatus)
      ? await saveDownload(response.body, paths, {
          contentEncoding: allValues(headers, 'content-encoding'),
          maxBytes: spec.download?.maxBytes,
        })
      : undefined;
  const body =
    saved?.body ??
    (await readCappedBody(response.body, limits.maxBodyBytes, header(headers, 'content-type'), {
      contentEncoding: allValues(headers, 'content-encoding'),
      maxTotalBytes: limits.maxResponseBytes,
      keepText: spec.keepBodyText === true,
    }));
  // Not read to its end: drop the connection rather than leave the rest of the body pending on it.
  if (body.problem) response.body.destroy();
  return saved ?? { body };
}

type RawHeaders = Record<string, string | string[] | undefined>;

function header(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A header that may be repeated, its values joined with `, ` (how `content-encoding` lists codings). */
function allValues(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Compressed answers unless the operation (or its target) chose its own `accept-encoding`, even `identity`. */
function withAcceptEncoding(headers: Record<string, string>): Record<string, string> {
  for (const name in headers) if (name.length === 15 && name.toLowerCase() === 'accept-encoding') return headers;
  return { ...headers, 'accept-encoding': ACCEPT_ENCODING };
}

function pickHeaders(headers: RawHeaders): ResponseHeaders {
  const picked: ResponseHeaders = {};
  const contentType = header(headers, 'content-type');
  if (contentType) picked.contentType = contentType;
  const location = header(headers, 'location');
  if (location) picked.location = location;
  // Several Link fields are one list (RFC 8288): rel="next" may be in any of them.
  const links = headers['link'];
  const link = Array.isArray(links) ? links.join(', ') : links;
  if (link) picked.link = link;
  const etag = header(headers, 'etag');
  if (etag) picked.etag = etag;
  for (const name of REQUEST_ID_HEADERS) {
    const value = header(headers, name);
    if (value) {
      picked.requestId = value;
      break;
    }
  }
  return picked;
}

function toSluiceError(error: unknown, spec: RequestSpec, signal: AbortSignal | undefined, timedOut: boolean): Error {
  if (signal?.aborted) return new ShutdownAbortError();
  // Our own (a refused address or redirect, too many redirects) are already what they mean.
  if (error instanceof SluiceError) return error;
  if (timedOut) return new TimeoutError('total', spec.timeouts.total, error);
  const code = (error as { code?: unknown } | null)?.code;
  const tls = typeof code === 'string' ? tlsFailure(code) : undefined;
  if (tls && typeof code === 'string') {
    // Node's own words for a verification failure; an alert's message is OpenSSL's, with file and line.
    const detail = code.startsWith('ERR_SSL_') ? code : `${code}: ${errorMessage(error)}`;
    return new TlsError(`${spec.method} ${spec.url.origin}${spec.url.pathname} failed: ${tls.what} (${detail})`, tls.code, error);
  }
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new TimeoutError('connect', spec.timeouts.connect, error);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new TimeoutError('headers', spec.timeouts.headers, error);
    case 'UND_ERR_BODY_TIMEOUT':
      return new TimeoutError('body', spec.timeouts.total, error);
    case 'UND_ERR_INVALID_ARG':
    case 'ERR_INVALID_URL':
    case 'ERR_INVALID_CHAR':
      return new RequestError(`cannot send ${spec.method} ${spec.url.origin}${spec.url.pathname}: ${errorMessage(error)}`, error);
    default: {
      const networkCode = typeof code === 'string' ? code : 'NETWORK_ERROR';
      return new NetworkError(`${spec.method} ${spec.url.origin}${spec.url.pathname} failed: ${errorMessage(error)}`, networkCode, error);
    }
  }
}
