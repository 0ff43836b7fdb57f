import { onAbort } from '../support/abortable.js';

/**
 * A worker process's budget of operations in flight, shared by single jobs and the operations of
 * lanes (see lane-runner.ts): every operation takes a permit before it runs and gives it back when
 * it has ended. Waiters are served first come, first served, and a lane keeps at most one request
 * waiting, so a lane of 500 and ten single jobs take turns rather than the lane taking every
 * permit that frees.
 */
export interface OpPermits {
  /** Resolves with a permit; rejects when `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void>;
  give(): void;
  readonly inUse: number;
  readonly free: number;
  /** Called after every take and give (the fetch gate listens: see bull-worker.ts). */
  onChange(listener: () => void): void;
}

export function createOpPermits(size: number): OpPermits {
  let inUse = 0;
  const waiters: { resolve: () => void; stopListening: (() => void) | undefined }[] = [];
  const listeners: (() => void)[] = [];
  const changed = () => {
    for (const listener of listeners) listener();
  };

  return {
    take(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (inUse < size && waiters.length === 0) {
        inUse += 1;
        changed();
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const waiter = { resolve, stopListening: undefined as (() => void) | undefined };
        waiters.push(waiter);
        if (signal) {
          waiter.stopListening = onAbort(signal, () => {
            const at = waiters.indexOf(waiter);
            if (at >= 0) waiters.splice(at, 1);
            reject(signal.reason);
          });
        }
      });
    },
    give() {
      const next = waiters.shift();
      if (next) {
        // The permit passes straight on: inUse does not change.
        next.stopListening?.();
        next.resolve();
      } else inUse = Math.max(0, inUse - 1);
      changed();
    },
    get inUse() {
      return inUse;
    },
    get free() {
      return Math.max(0, size - inUse);
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
