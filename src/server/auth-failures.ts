import { isIP } from 'node:net';
import type { RedisClient } from '../redis/client.js';
import { authFailuresKey } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { ApiError } from './api-errors.js';

export interface AuthFailuresOptions {
  /** Borrowed. */
  redis: RedisClient;
  /** Failures an address may have in one window; the next credential it sends is refused. Default 10. */
  limit?: number;
  /** How long a window lasts, from its first failure. Default 60 s. */
  windowSeconds?: number;
}

export interface AuthFailures {
  /** Refuses (429 with Retry-After) an address that has used up its failures in the current window. */
  check(address: string): Promise<void>;
  /** Counts one failed sign-in or unknown bearer token of an address. */
  record(address: string): Promise<void>;
}

/**
 * Failed sign-ins and bearer tokens per client address, counted in Redis so every server replica
 * sees the same numbers. Once an address has `limit` failures in a window, every credential it
 * sends is refused until the window ends, the right ones too: otherwise the answers would still
 * tell a guessed token from a wrong one, at full speed.
 */
export function createAuthFailures(options: AuthFailuresOptions): AuthFailures {
  const { redis } = options;
  const limit = options.limit ?? 10;
  const windowSeconds = options.windowSeconds ?? 60;
  for (const [name, value] of [
    ['limit', limit],
    ['windowSeconds', windowSeconds],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new TypeError(`auth failures ${name}: expected a whole number of at least 1, received ${value}`);
  }
  const count = defineScript<[string, number]>(redis, 'auth-failure-1');

  const refused = (leftMs: number) => {
    const seconds = Math.max(1, Math.ceil((leftMs > 0 ? leftMs : windowSeconds * 1_000) / 1_000));
    return new ApiError(
      429,
      'TOO_MANY_AUTH_FAILURES',
      `${limit} failed sign-ins or tokens from this address within ${windowSeconds} s: every credential from it is refused for ${seconds} s more`,
      undefined,
      { 'retry-after': String(seconds) },
    );
  };

  return {
    async check(address) {
      const key = authFailuresKey(clientAddressKey(address));
      // A pipeline, not a MULTI: Redis aborts every MULTI while it refuses writes (maxmemory), and
      // requests must still be answered then.
      const [[failuresError, failures], [, leftMs]] = ((await redis.pipeline().get(key).pttl(key).exec()) ?? []) as [
        [Error | null, string | null],
        [Error | null, number],
      ];
      if (failuresError) throw failuresError;
      if (Number(failures ?? 0) >= limit) throw refused(leftMs);
    },
    async record(address) {
      await count(authFailuresKey(clientAddressKey(address)), windowSeconds * 1_000);
    },
  };
}

/**
 * The address failures are counted under: IPv4 as it is, IPv6 by its /64 (one host usually holds a
 * whole /64, so counting single addresses would let it rotate past the limit).
 */
export function clientAddressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address.split('%')[0]!);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : address;
}

/** The eight groups of an IPv6 address, without leading zeros (an embedded IPv4 tail counts as two). */
function ipv6Groups(address: string): string[] | undefined {
  const halves = address.split('::');
  const split = (half: string | undefined) =>
    half ? half.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
  const head = split(halves[0]);
  const tail = split(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length > 2 || missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  return [...head, ...Array<string>(missing).fill('0'), ...tail].map((group) => parseInt(group, 16).toString(16));
}
