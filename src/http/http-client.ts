import { Agent } from 'undici';
import { NetworkError, RequestError, ShutdownAbortError, TimeoutError, errorMessage } from '../errors.js';
import type { RequestSpec } from './request-spec.js';
import { readCappedBody, type CappedBody } from './read-body.js';
import { parseRetryAfter } from './retry-after.js';
import { parseRateLimitHeaders, type RateLimitInfo } from './rate-limit-headers.js';

export interface HttpClientOptions {
  /** Largest response body kept in a result, in bytes; the rest is read and dropped. Default 8 KiB. */
  maxBodyBytes?: number;
  /** How long an idle keep-alive connection is kept open. Default 10 s. */
  keepAliveTimeoutMs?: number;
  /** Connections per origin at most. Default: unbounded (the worker's concurrency bounds it). */
  connectionsPerOrigin?: number;
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
}

/** The few response headers worth keeping in a result. */
export interface ResponseHeaders {
  contentType?: string;
  location?: string;
  etag?: string;
  requestId?: string;
}

export interface HttpClient {
  /** Sends one attempt. Resolves with any HTTP status; rejects with a Timeout/Network/Request/ShutdownAbort error. */
  send(spec: RequestSpec, signal?: AbortSignal): Promise<HttpResponseSummary>;
  close(): Promise<void>;
}

/** Distinct connect timeouts that get a pool of their own before they are rounded to seconds. */
const MAX_EXACT_AGENTS = 8;

const REQUEST_ID_HEADERS = ['x-request-id', 'request-id', 'x-amzn-requestid', 'x-correlation-id'];

/**
 * One undici keep-alive pool per origin (an `Agent` per distinct connect timeout, since undici sets
 * that per dispatcher). Every request is bounded: connect, response headers and a total deadline.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const maxBodyBytes = options.maxBodyBytes ?? 8 * 1024;
  const agents = new Map<number, Agent>();
  let closing: Promise<void> | undefined;

  function agentFor(requestedMs: number): Agent {
    // Operations choose their own connect timeout; past a few distinct values, round them up to
    // whole seconds so that the number of pools stays small.
    const connectTimeoutMs = agents.has(requestedMs) || agents.size < MAX_EXACT_AGENTS ? requestedMs : Math.ceil(requestedMs / 1_000) * 1_000;
    let agent = agents.get(connectTimeoutMs);
    if (!agent) {
      agent = new Agent({
        connect: { timeout: connectTimeoutMs },
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
        ...(options.connectionsPerOrigin ? { connections: options.connectionsPerOrigin } : {}),
      });
      agents.set(connectTimeoutMs, agent);
    }
    return agent;
  }

  async function send(spec: RequestSpec, signal?: AbortSignal): Promise<HttpResponseSummary> {
    if (closing) throw new ShutdownAbortError();
    const deadline = AbortSignal.timeout(spec.timeouts.total);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const started = performance.now();
    try {
      const response = await agentFor(spec.timeouts.connect).request({
        origin: spec.url.origin,
        path: `${spec.url.pathname}${spec.url.search}`,
        method: spec.method,
        headers: spec.headers,
        body: spec.body,
        signal: combined,
        headersTimeout: spec.timeouts.headers,
        bodyTimeout: spec.timeouts.total,
      });
      const headers = response.headers;
      const body = await readCappedBody(response.body, maxBodyBytes, header(headers, 'content-type'));
      return {
        status: response.statusCode,
        headers: pickHeaders(headers),
        body,
        durationMs: Math.round(performance.now() - started),
        retryAfterMs: parseRetryAfter(header(headers, 'retry-after')),
        rateLimit: parseRateLimitHeaders(headers),
      };
    } catch (error) {
      throw toSluiceError(error, spec, signal, deadline);
    }
  }

  function close(): Promise<void> {
    closing ??= Promise.allSettled([...agents.values()].map((agent) => agent.close())).then(() => undefined);
    return closing;
  }

  return { send, close };
}

type RawHeaders = Record<string, string | string[] | undefined>;

function header(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function pickHeaders(headers: RawHeaders): ResponseHeaders {
  const picked: ResponseHeaders = {};
  const contentType = header(headers, 'content-type');
  if (contentType) picked.contentType = contentType;
  const location = header(headers, 'location');
  if (location) picked.location = location;
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

function toSluiceError(error: unknown, spec: RequestSpec, signal: AbortSignal | undefined, deadline: AbortSignal): Error {
  if (signal?.aborted) return new ShutdownAbortError();
  if (deadline.aborted) return new TimeoutError('total', spec.timeouts.total, error);
  const code = (error as { code?: unknown } | null)?.code;
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
