import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../config/sluice-config.js';
import { limiterKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { configuredLimits, toSpec } from './limit-keys.js';

/** One limit key as operators see it. Rates are requests per second. */
export interface LimitStatus {
  key: string;
  /** From the config file (null: none configured). */
  configured: { rate: number | null; burst: number; concurrency: number | null } | null;
  /** An operator's override (`sluice limits set`), with its remaining lifetime when temporary. */
  override: { rate: number | null; burst: number | null; concurrency: number | null; expiresInMs: number | null } | null;
  /** The rate workers used last (after overrides and what 429s taught); null: no rate limit. */
  effectiveRate: number | null;
  /** Requests in flight across the fleet (concurrency leases held). */
  inFlight: number;
  /** An operator paused the key (`sluice limits pause`). */
  paused: boolean;
  /** The target asked us to wait (Retry-After, RateLimit-Reset) until this time. */
  pausedUntil: string | null;
  /** 429s in the last 5 minutes. */
  recent429s: number;
  /** Operations holding a booked slot and waiting for it. */
  queued: number;
  lastSeen: string | null;
}

export interface LimitChange {
  /** Requests per second (use rate = rpm / 60 for per-minute limits); null removes the override's rate. */
  rate?: number | null;
  burst?: number | null;
  concurrency?: number | null;
}

export interface LimitsAdmin {
  list(): Promise<LimitStatus[]>;
  /**
   * Overrides a key for every worker within a second; `ttlMs` makes it temporary. Returns the ids
   * of the jobs that were deferred for a slot under the old schedule (see wakeDeferredJobs).
   */
  set(key: string, change: LimitChange, ttlMs?: number): Promise<string[]>;
  pause(key: string): Promise<void>;
  /** Lifts an operator pause and any Retry-After pause. */
  resume(key: string): Promise<void>;
  /** Removes an override: the key follows the config file again. Returns the deferred jobs' ids, as set. */
  reset(key: string): Promise<string[]>;
}

const RECENT_MS = 5 * 60_000;

export function createLimitsAdmin(options: { redis: Redis; config: SluiceConfig }): LimitsAdmin {
  const { redis, config } = options;
  const admin = defineScript(redis, 'limit-admin-5');

  /** Applies a change; returns the job ids whose bookings it voided (members are `jobId|epoch`). */
  const change = async (key: string, ttlMs: number, fields: (string | number)[], clear = false): Promise<string[]> => {
    const booked = (await admin(
      limiterKeys.index,
      limiterKeys.version,
      limiterKeys.state(key),
      limiterKeys.override(key),
      limiterKeys.bookings(key),
      key,
      ttlMs,
      clear ? '1' : '0',
      ...fields,
    )) as string[];
    return booked.map((member) => member.slice(0, member.lastIndexOf('|')));
  };

  async function list(): Promise<LimitStatus[]> {
    const names = new Set<string>(await redis.smembers(limiterKeys.index));
    for (const [name, target] of Object.entries(config.targets)) if (target.limits) names.add(name);
    for (const name of Object.keys(config.limits)) names.add(name);
    const now = Date.now();
    const pipeline = redis.pipeline();
    const sorted = [...names].sort();
    for (const name of sorted) {
      pipeline.hgetall(limiterKeys.state(name));
      pipeline.hgetall(limiterKeys.override(name));
      pipeline.pttl(limiterKeys.override(name));
      pipeline.zcount(limiterKeys.leases(name), now, '+inf');
      pipeline.lrange(limiterKeys.recent429(name), 0, 99);
      pipeline.zcard(limiterKeys.bookings(name));
    }
    const replies = (await pipeline.exec()) ?? [];
    // A key nobody has used for a day (its state expired), with no override and nothing in the
    // config, is forgotten: the index would otherwise grow with every key ever named.
    const forgotten = new Set(
      sorted.filter((key, i) => {
        const empty = (j: number) => Object.keys((replies[i * 6 + j]?.[1] ?? {}) as Record<string, string>).length === 0;
        return empty(0) && empty(1) && !configuredLimits(key, config) && Number(replies[i * 6 + 5]?.[1] ?? 0) === 0;
      }),
    );
    if (forgotten.size) await redis.srem(limiterKeys.index, ...forgotten);
    return sorted
      .flatMap((key, i) => (forgotten.has(key) ? [] : [[key, i] as const]))
      .map(([key, i]) => {
        const at = (j: number) => replies[i * 6 + j]?.[1];
        const state = (at(0) ?? {}) as Record<string, string>;
        const override = (at(1) ?? {}) as Record<string, string>;
        const ttl = Number(at(2) ?? -2);
        const limits = configuredLimits(key, config);
        const spec = toSpec(limits);
        const num = (value: string | undefined) => (value === undefined || value === '' ? null : Number(value));
        const pausedUntil = Number(state['pausedUntil'] ?? 0);
        const effective = num(state['effRate']);
        return {
          key,
          configured: limits ? { rate: spec.rate || null, burst: spec.burst, concurrency: spec.concurrency || null } : null,
          override: Object.keys(override).filter((field) => field !== 'paused').length
            ? {
                rate: num(override['rate']),
                burst: num(override['burst']),
                concurrency: num(override['concurrency']),
                expiresInMs: ttl > 0 ? ttl : null,
              }
            : null,
          effectiveRate: effective && effective > 0 ? Math.round(effective * 1_000) / 1_000 : null,
          inFlight: Number(at(3) ?? 0),
          paused: override['paused'] === '1',
          pausedUntil: pausedUntil > now ? new Date(pausedUntil).toISOString() : null,
          recent429s: ((at(4) ?? []) as string[]).filter((t) => now - Number(t) <= RECENT_MS).length,
          queued: Number(at(5) ?? 0),
          lastSeen: state['lastSeen'] ? new Date(Number(state['lastSeen'])).toISOString() : null,
        };
      });
  }

  async function set(key: string, limitChange: LimitChange, ttlMs = 0): Promise<string[]> {
    const fields: (string | number)[] = [];
    for (const name of ['rate', 'burst', 'concurrency'] as const) {
      const value = limitChange[name];
      if (value === undefined) continue;
      fields.push(name, value === null ? '' : value);
    }
    return change(key, ttlMs, fields);
  }

  return {
    list,
    set,
    pause: async (key) => {
      await change(key, -1, ['paused', '1']);
    },
    resume: async (key) => {
      await change(key, -1, ['paused', '']);
    },
    reset: (key) => change(key, 0, [], true),
  };
}

/** Deletes everything the limiter keeps for a key (e.g. a demo's own key when it ends). */
export async function removeLimitKey(redis: Redis, key: string): Promise<void> {
  await redis.del(
    limiterKeys.state(key),
    limiterKeys.override(key),
    limiterKeys.leases(key),
    limiterKeys.bookings(key),
    limiterKeys.recent429(key),
  );
  await redis.srem(limiterKeys.index, key);
  if ((await redis.scard(limiterKeys.index)) === 0) await redis.del(limiterKeys.version);
}
