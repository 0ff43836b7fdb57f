import { onAbort } from './abortable.js';

/** Waits `ms`; resolves false at once when `signal` aborts (the timer is cleared). */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stopListening?.();
      resolve(true);
    }, ms);
    const stopListening = signal
      ? onAbort(signal, () => {
          clearTimeout(timer);
          resolve(false);
        })
      : undefined;
  });
}

/** `ms` spread by ±fraction, so deferred jobs do not come back together. */
export function jitter(ms: number, fraction: number): number {
  return Math.max(1, Math.round(ms * (1 - fraction + Math.random() * 2 * fraction)));
}
