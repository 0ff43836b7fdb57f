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
    if (signal.aborted) giveUp();
    else signal.addEventListener('abort', giveUp, { once: true });
    void promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', giveUp);
    });
  });
}
