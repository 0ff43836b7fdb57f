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

/**
 * Sends one request through `dispatcher` and resolves with its response once the status and headers
 * are in (an informational 1xx is skipped); rejects with undici's error (or the abort's reason) when
 * there is no response. The request is aborted by `abort`, before or during the body.
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
    const handler = new ResponseHandler(resolve, reject, abort);
    if (abort.aborted) {
      reject(abort.reason);
      return;
    }
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
  #ended = false;
  #failed = false;
  #error: unknown = undefined;
  /** The reader waiting for the next chunk. */
  #waiting: { resolve: (result: IteratorResult<Uint8Array>) => void; reject: (error: unknown) => void } | undefined;

  constructor(resolve: (response: DispatchedResponse) => void, reject: (error: unknown) => void, abort: AbortSource) {
    this.#onResponse = resolve;
    this.#onFailure = reject;
    this.#abort = abort;
  }

  readonly onAbort = (): void => {
    // Before the request is on a socket, it is aborted as it gets one (onRequestStart).
    this.#controller?.abort(this.#abort.reason as Error);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abort.aborted) controller.abort(this.#abort.reason as Error);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
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
    this.#abort.removeListener('abort', this.onAbort);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(DONE);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#abort.removeListener('abort', this.onAbort);
    const onFailure = this.#onFailure;
    if (onFailure) {
      this.#onResponse = this.#onFailure = undefined;
      onFailure(error);
      return;
    }
    this.#failed = true;
    this.#error = error;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.#chunks.shift();
    if (chunk) {
      this.#queuedBytes -= chunk.byteLength;
      if (this.#controller?.paused && this.#queuedBytes <= HIGH_WATER_BYTES) this.#controller.resume();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.#failed) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(DONE);
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
    if (this.#ended || this.#failed) return;
    this.#controller?.abort(new Error('response body destroyed'));
  }

  async dump(): Promise<void> {
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
