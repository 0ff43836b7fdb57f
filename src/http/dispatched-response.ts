import type { Dispatcher } from 'undici';

/** What can abort a request (RequestAbort in http-client.ts): its reason is the request's error. */
export interface AbortSource {
  readonly aborted: boolean;
  readonly reason: unknown;
  once(event: 'abort', listener: () => void): unknown;
  removeListener(event: 'abort', listener: () => void): unknown;
}

/** A response's status and headers, and its body as it arrives. */
export interface DispatchedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

/** A response body read chunk by chunk; what arrives past HIGH_WATER_BYTES unread waits on the socket. */
export interface ResponseBody extends AsyncIterable<Uint8Array> {
  /** Stops the request: the connection is closed (the rest of the body is not read). */
  destroy(): void;
  /** Reads the rest of a short body so the connection can be reused; a longer one is dropped with its connection. */
  dump(): Promise<void>;
}

/** Body bytes received and not yet read, past which the socket is paused. */
const HIGH_WATER_BYTES = 64 * 1024;
/** What `dump` reads at most before it drops the connection instead. */
const DUMP_LIMIT_BYTES = 128 * 1024;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** undici's code for a request it cannot send as given (how http-client.ts tells a RequestError). */
class InvalidRequest extends Error {
  readonly code = 'UND_ERR_INVALID_ARG';
}

/**
 * Sends one request through `dispatcher` and resolves with its response once the status and headers
 * are in (an informational 1xx is skipped); rejects with undici's error (or the abort's reason) when
 * there is no response. `abort` aborts the request: before it is sent (also while it waits for a
 * connection: it is dropped when it gets one), during the body, or after the body arrived and before
 * it was read (the reader gets the reason, as a destroyed stream's would).
 *
 * This is undici's `dispatch` with a handler of our own, rather than `request`: `request` wraps every
 * body in a node:stream Readable and an async-context resource, which cost a worker about a fifth of
 * its CPU per operation at full speed (measured beside this one on the bench's fast target).
 */
export function dispatchRequest(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  abort: AbortSource,
): Promise<DispatchedResponse> {
  return new Promise((resolve, reject) => {
    if (abort.aborted) {
      reject(abort.reason);
      return;
    }
    // undici would hand the connection over (an upgrade) rather than answer: `request` refuses these too.
    if (options.method === 'CONNECT' || options.upgrade) {
      reject(new InvalidRequest(`invalid method ${options.method}: a tunnel or an upgrade is not an HTTP request sluice can send`));
      return;
    }
    const handler = new ResponseHandler(resolve, reject, abort);
    abort.once('abort', handler.onAbort);
    dispatcher.dispatch(options, handler);
  });
}

/** The handler of one request, and the body it delivers. */
class ResponseHandler implements Dispatcher.DispatchHandler, ResponseBody, AsyncIterator<Uint8Array> {
  #controller: Dispatcher.DispatchController | undefined;
  #onResponse: ((response: DispatchedResponse) => void) | undefined;
  #onFailure: ((error: unknown) => void) | undefined;
  readonly #abort: AbortSource;
  readonly #chunks: Buffer[] = [];
  #queuedBytes = 0;
  /** The response's content-length, when it gave one (dump drops a longer body at once). */
  #length = -1;
  #ended = false;
  /** The reader stopped (return, destroy): what follows reads as done. */
  #finished = false;
  #failed = false;
  #error: unknown = undefined;
  /** The reader waiting for the next chunk (one at a time: a second waiting reader is refused). */
  #waiting: { resolve: (result: IteratorResult<Uint8Array>) => void; reject: (error: unknown) => void } | undefined;

  constructor(resolve: (response: DispatchedResponse) => void, reject: (error: unknown) => void, abort: AbortSource) {
    this.#onResponse = resolve;
    this.#onFailure = reject;
    this.#abort = abort;
  }

  readonly onAbort = (): void => {
    const reason = this.#abort.reason;
    if (this.#ended) {
      // All of it arrived, not all of it read: the reader gets the reason.
      this.#fail(reason);
      return;
    }
    // Not on a socket yet (waiting for a connection): the caller hears now; the request is dropped
    // as it gets one (onRequestStart).
    if (!this.#controller) this.#reject(reason);
    this.#controller?.abort(reason as Error);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abort.aborted) controller.abort(this.#abort.reason as Error);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, _statusCode: number, _headers: unknown, socket: { destroy(): void }): void {
    // Refused before it is sent (dispatchRequest); should undici upgrade all the same, nothing waits forever.
    socket.destroy();
    this.#abort.removeListener('abort', this.onAbort);
    this.#reject(new InvalidRequest('the target upgraded the connection instead of answering'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    const length = headers['content-length'];
    if (typeof length === 'string' && /^\d+$/.test(length)) this.#length = Number(length);
    const onResponse = this.#onResponse;
    this.#onResponse = this.#onFailure = undefined;
    onResponse?.({ statusCode, headers, body: this });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve({ done: false, value: chunk });
      return;
    }
    this.#chunks.push(chunk);
    this.#queuedBytes += chunk.byteLength;
    if (this.#queuedBytes > HIGH_WATER_BYTES) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    if (!waiting) return;
    this.#waiting = undefined;
    this.#done();
    waiting.resolve(DONE);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#reject(error)) {
      this.#abort.removeListener('abort', this.onAbort);
      return;
    }
    this.#fail(error);
  }

  /** Fails the request before its response; false when the response came already. */
  #reject(error: unknown): boolean {
    const onFailure = this.#onFailure;
    if (!onFailure) return false;
    this.#onResponse = this.#onFailure = undefined;
    onFailure(error);
    return true;
  }

  /** Fails the body: what was queued is dropped (as a destroyed stream's buffer is), the reader gets `error`. */
  #fail(error: unknown): void {
    this.#abort.removeListener('abort', this.onAbort);
    if (this.#finished || this.#failed) return;
    this.#failed = true;
    this.#error = error;
    this.#chunks.length = 0;
    this.#queuedBytes = 0;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  /** The reader is done with the body: the abort no longer concerns it. */
  #done(): void {
    this.#finished = true;
    this.#abort.removeListener('abort', this.onAbort);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#failed) return Promise.reject(this.#error);
    const chunk = this.#chunks.shift();
    if (chunk) {
      this.#queuedBytes -= chunk.byteLength;
      if (this.#controller?.paused && this.#queuedBytes <= HIGH_WATER_BYTES) this.#controller.resume();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.#finished) return Promise.resolve(DONE);
    if (this.#ended) {
      this.#done();
      return Promise.resolve(DONE);
    }
    if (this.#waiting) return Promise.reject(new Error('a response body is read by one reader at a time'));
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  /** A reader that stops early (a `break` out of `for await`) leaves the rest unread: the request stops. */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.destroy();
    return Promise.resolve(DONE);
  }

  destroy(): void {
    this.#chunks.length = 0;
    this.#queuedBytes = 0;
    const unread = !this.#ended && !this.#failed;
    this.#done();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(DONE);
    if (unread) this.#controller?.abort(new Error('response body destroyed'));
  }

  async dump(): Promise<void> {
    if (this.#length > DUMP_LIMIT_BYTES) {
      this.destroy();
      return;
    }
    let bytes = 0;
    try {
      while (bytes <= DUMP_LIMIT_BYTES) {
        const next = await this.next();
        if (next.done) return;
        bytes += next.value.byteLength;
      }
      this.destroy();
    } catch {
      // A body that fails while it is dropped does not matter.
    }
  }
}
