import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { limiterKeys } from '../redis/keys.js';
import { circuitOf, configuredLimits, keysBySlot, toSpec } from './limit-keys.js';

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
  /** 429s in the last 5 minutes, up to RECENT_429S_KEPT (which then reads as that many or more). */
  recent429s: number;
  /** Operations holding a booked slot and waiting for it. */
  queued: number;
  lastSeen: string | null;
  /** The key's circuit breaker; null when it is off. */
  circuit: CircuitStatus | null;
}

/** The newest 429s a key keeps (limit-report.lua trims its list to them): recent429s counts no further. */
export const RECENT_429S_KEPT = 100;

export interface CircuitStatus {
  state: 'open' | 'closed';
  /** When it opened (open only). */
  openSince: string | null;
  /** When the next probe may go (open only). */
  nextProbeAt: string | null;
  /** Attempts and failures counted in the window now. */
  attempts: number;
  failures: number;
  /** Operations waiting for it to close (open only). */
  waiting: number;
  /** Transitions so far (kept as long as the key's state). */
  opened: number;
  closed: number;
}

const RECENT_MS = 5 * 60_000;

/** What Redis holds for one limit key. */
export interface KeyReading {
  key: string;
  state: Record<string, string>;
  override: Record<string, string>;
  /** The override's remaining lifetime (PTTL: negative when it has none). */
  overrideTtlMs: number;
  inFlight: number;
  recent429s: string[];
  queued: number;
  /** The circuit's window (field → count) and its waiting jobs. */
  circuitWindow: Record<string, string>;
  circuitWaiting: number;
}

/** One pipeline (one per slot on a Redis Cluster, all at once); in the keys' order. */
export async function readKeys(redis: RedisClient, keys: string[], now: number): Promise<KeyReading[]> {
  const readings = new Map<string, KeyReading>();
  for (const group of await Promise.all(keysBySlot(redis, keys).map((members) => readGroup(redis, members, now)))) {
    for (const reading of group) readings.set(reading.key, reading);
  }
  return keys.map((key) => readings.get(key)!);
}

async function readGroup(redis: RedisClient, keys: string[], now: number): Promise<KeyReading[]> {
  const pipeline = redis.pipeline();
  for (const key of keys) {
    pipeline.hgetall(limiterKeys.state(key));
    pipeline.hgetall(limiterKeys.override(key));
    pipeline.pttl(limiterKeys.override(key));
    pipeline.zcount(limiterKeys.leases(key), now, '+inf');
    pipeline.lrange(limiterKeys.recent429(key), 0, 99);
    pipeline.zcard(limiterKeys.line(key));
    pipeline.hgetall(limiterKeys.circuitWindow(key));
    pipeline.zcard(limiterKeys.circuitWaiting(key));
  }
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((key, i) => {
    const at = (j: number) => replies[i * 8 + j]?.[1];
    return {
      key,
      state: (at(0) ?? {}) as Record<string, string>,
      override: (at(1) ?? {}) as Record<string, string>,
      overrideTtlMs: Number(at(2) ?? -2),
      inFlight: Number(at(3) ?? 0),
      recent429s: (at(4) ?? []) as string[],
      queued: Number(at(5) ?? 0),
      circuitWindow: (at(6) ?? {}) as Record<string, string>,
      circuitWaiting: Number(at(7) ?? 0),
    };
  });
}

/** Nothing left in Redis for the key: no state, no override, nobody in line. */
export function isForgotten(reading: Omit<KeyReading, 'key'>): boolean {
  return Object.keys(reading.state).length === 0 && Object.keys(reading.override).length === 0 && reading.queued === 0;
}

export function limitStatus(reading: KeyReading, config: SluiceConfig, now: number): LimitStatus {
  const { key, state, override } = reading;
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
          expiresInMs: reading.overrideTtlMs > 0 ? reading.overrideTtlMs : null,
        }
      : null,
    effectiveRate: effective && effective > 0 ? Math.round(effective * 1_000) / 1_000 : null,
    inFlight: reading.inFlight,
    paused: override['paused'] === '1',
    pausedUntil: pausedUntil > now ? new Date(pausedUntil).toISOString() : null,
    recent429s: reading.recent429s.filter((t) => now - Number(t) <= RECENT_MS).length,
    queued: reading.queued,
    lastSeen: state['lastSeen'] ? new Date(Number(state['lastSeen'])).toISOString() : null,
    circuit: circuitStatus(reading, config, now),
  };
}

function circuitStatus(reading: KeyReading, config: SluiceConfig, now: number): CircuitStatus | null {
  const circuit = circuitOf(reading.key, config);
  if (!circuit) return null;
  const { state } = reading;
  const open = state['circuit'] === 'open';
  // The window's buckets as circuit-report.lua keeps them: the last ten tenths of the window.
  const bucket = Math.floor(now / (circuit.windowMs / 10));
  let attempts = 0;
  let failures = 0;
  for (const [field, count] of Object.entries(reading.circuitWindow)) {
    if (Number(field.slice(2)) <= bucket - 10) continue;
    if (field.startsWith('n:')) attempts += Number(count);
    else failures += Number(count);
  }
  const time = (value: string | undefined) => (value ? new Date(Number(value)).toISOString() : null);
  return {
    state: open ? 'open' : 'closed',
    openSince: open ? time(state['openedAt']) : null,
    nextProbeAt: open ? time(state['probeAt']) : null,
    attempts,
    failures,
    waiting: open ? reading.circuitWaiting : 0,
    opened: Number(state['opened'] ?? 0),
    closed: Number(state['closed'] ?? 0),
  };
}
