import { ShutdownAbortError } from '../errors.js';

/**
 * `promise`, or a ShutdownAbortError `graceMs` after `signal` aborts (or after the call, when it has
 * already): for work that must not hold a stopping worker past its deadline, such as a command
 * waiting for a Redis that does not answer. The work itself is not withdrawn.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, graceMs = 0): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = () => {
      timer = setTimeout(() => reject(new ShutdownAbortError()), graceMs);
    };
    const stopListening = onAbort(signal, giveUp);
    void promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      stopListening();
    });
  });
}

/** Each signal's listeners of onAbort, behind the one listener it has on the signal itself. */
const listenersOf = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `listener` once when `signal` aborts (at once, when it has already); returns what stops
 * listening. Hundreds of operations in flight listen to one signal (the worker's shutdown, a lane's
 * signal), each for a moment: an EventTarget's listener list costs ~2 % of a worker's CPU at full
 * speed that way (adding allocates; removing walks the list). Here the signal has one listener,
 * and each caller's is an entry in a set.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal.aborted) {
    listener();
    return noop;
  }
  let listeners = listenersOf.get(signal);
  if (!listeners) {
    const all = (listeners = new Set());
    listenersOf.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        listenersOf.delete(signal);
        for (const each of all) {
          try {
            each();
          } catch (error) {
            // As an EventTarget does: the others are still called, the error is not lost.
            queueMicrotask(() => {
              throw error;
            });
          }
        }
      },
      { once: true },
    );
  }
  const own = listeners;
  own.add(listener);
  return () => own.delete(listener);
}

function noop(): void {}
