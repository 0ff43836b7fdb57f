import { PassThrough, type Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './api-errors.js';
import { PROBLEM_JSON, problemDetails } from './problem-types.js';

/**
 * How long a client may take to send a request. Node's HTTP server enforces the first two (fastify
 * turns its 300 s request timeout off by default, so a body sent a byte at a time was never cut);
 * the sign-in deadline is a per-route read deadline, as a token fits in one packet.
 */
export interface ServerTimeouts {
  /** The request line and headers. Default 10,000 ms. */
  headersTimeoutMs: number;
  /** The whole request, headers and body (a 32 MiB upload included). Default 60,000 ms; 0 turns it off. */
  requestTimeoutMs: number;
  /** The body of a sign-in (`POST /login`), from when its headers arrived. Default 10,000 ms. */
  signInTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, signInTimeoutMs: 10_000 };

const MAX_TIMEOUT_MS = 3_600_000;

/** The timeouts with defaults filled in; a TypeError names an option that cannot work. */
export function resolveTimeouts(given: Partial<ServerTimeouts>): ServerTimeouts {
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const name of Object.keys(DEFAULT_TIMEOUTS) as (keyof ServerTimeouts)[]) {
    if (given[name] !== undefined) timeouts[name] = given[name];
  }
  for (const [name, value] of Object.entries(timeouts)) {
    const least = name === 'requestTimeoutMs' ? 0 : 1;
    if (!Number.isInteger(value) || value < least || value > MAX_TIMEOUT_MS) {
      throw new TypeError(
        `${name}: expected a whole number of ms from ${least} to ${MAX_TIMEOUT_MS}${least === 0 ? ' (0 turns it off)' : ''}, received ${String(value)}`,
      );
    }
  }
  if (timeouts.requestTimeoutMs > 0 && timeouts.headersTimeoutMs > timeouts.requestTimeoutMs) {
    throw new TypeError(
      `headersTimeoutMs (${timeouts.headersTimeoutMs}) must not be larger than requestTimeoutMs (${timeouts.requestTimeoutMs}): the headers are part of the request`,
    );
  }
  return timeouts;
}

/** Fastify's and node's options that enforce the header and request timeouts. */
export function serverTimeoutOptions(timeouts: ServerTimeouts) {
  const shortest = Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs || Infinity);
  return {
    requestTimeout: timeouts.requestTimeoutMs,
    // Node looks for expired requests every 30 s by default: a 10 s limit would hold up to 40 s.
    http: {
      headersTimeout: timeouts.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(shortest / 4))),
    },
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => answerClientError(error, socket, timeouts),
  };
}

export function requestTimedOut(timeouts: Pick<ServerTimeouts, 'headersTimeoutMs' | 'requestTimeoutMs'>): ApiError {
  return new ApiError(
    408,
    'REQUEST_TIMEOUT',
    `the request did not arrive in time: headers are due within ${timeouts.headersTimeoutMs} ms and the whole request within ${timeouts.requestTimeoutMs} ms`,
  );
}

/**
 * Node's `clientError` (a timeout, a malformed request): answers with problem details and closes the socket,
 * as fastify's default does, unless an answer has already begun on it.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket, timeouts: ServerTimeouts): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, body] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', problemDetails(408, 'REQUEST_TIMEOUT', requestTimedOut(timeouts).message)]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', problemDetails(431, 'HEADERS_TOO_LARGE', 'the request headers are too large')]
        : [400, 'Bad Request', problemDetails(400, 'BAD_REQUEST', 'malformed HTTP request')];
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (socket.writable && !answering) {
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${PROBLEM_JSON}; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}

/**
 * A `preParsing` hook: the body must be read within `ms` of the headers, or the request fails with
 * 408 (the error handler then closes the connection, the rest unread).
 */
export function bodyDeadline(ms: number) {
  return async (_request: FastifyRequest, reply: FastifyReply, payload: Readable): Promise<Readable> => {
    const through = new PassThrough();
    // Only while the body is being read is there a reader to tell: an answer given without reading
    // it (a 413 for its announced length) listens no more, and an unheard error would crash.
    const fail = (error: Error) => {
      payload.unpipe(through);
      through.destroy(through.listenerCount('error') > 0 ? error : undefined);
    };
    const timer = setTimeout(() => fail(new ApiError(408, 'REQUEST_TIMEOUT', `the request body did not arrive within ${ms} ms`)), ms);
    const stop = () => clearTimeout(timer);
    through.once('end', stop).once('close', stop);
    // Answered (maybe without reading the body): what still arrives is dropped, not held back.
    reply.raw.once('close', () => {
      stop();
      payload.unpipe(through);
      payload.resume();
    });
    payload.once('error', fail);
    payload.pipe(through);
    return through;
  };
}
