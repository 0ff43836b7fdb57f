import { limiterKeys } from '../redis/keys.js';

/** Concurrency leases taken by one start, on the keys with a concurrency limit. */
export interface Lease {
  id: string;
  keys: string[];
}

/** The lease a start took: on the keys whose bit is set in the acquire script's `leasedMask` (undefined: none). */
export function leaseOf(keys: readonly string[], id: string, leasedMask: number): Lease | undefined {
  const leased = keys.filter((_, i) => (leasedMask & (2 ** i)) !== 0);
  return leased.length ? { id, keys: leased } : undefined;
}

/** This process's side of concurrency leases: giving them back, and waiting in a slot for one to be given back. */
export interface Leases {
  release(lease: Lease | undefined): Promise<void>;
  /** Resolves after `ms`, or sooner when this process releases a lease (or closes). */
  waitForRelease(ms: number): Promise<void>;
  close(): void;
}

/**
 * `releaseScript`: the release script (KEYS: the leases zsets; ARGV: the lease id); `bySlot`: a
 * lease's keys split into calls (one per slot on a Redis Cluster, see keysBySlot).
 */
export function createLeases(
  releaseScript: (...args: (string | number)[]) => Promise<unknown>,
  bySlot: (keys: readonly string[]) => string[][],
): Leases {
  const releaseWaiters = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of [...releaseWaiters]) wake();
  };

  return {
    async release(lease) {
      if (!lease) return;
      await Promise.all(
        bySlot(lease.keys).map((keys) => releaseScript(keys.length, ...keys.map((key) => limiterKeys.leases(key)), lease.id)),
      );
      wakeAll();
    },
    waitForRelease(ms) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timeout);
          releaseWaiters.delete(done);
          resolve();
        };
        const timeout = setTimeout(done, ms);
        releaseWaiters.add(done);
      });
    },
    close: wakeAll,
  };
}
