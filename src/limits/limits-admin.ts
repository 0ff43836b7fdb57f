import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { LIMIT_KEY_KINDS, limiterKeys } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { SluiceError } from '../errors.js';
import { circuitOf, configuredSpecs } from './limit-keys.js';
import { createLimitIndex } from './limit-index.js';
import { legacyLayoutCopy } from './limit-layout.js';
import { isForgotten, limitStatus, readKeys, type LimitStatus } from './limit-status.js';

export type { LimitStatus };

export interface LimitChange {
  /** Requests per second (use rate = rpm / 60 for per-minute limits); null removes the override's rate. */
  rate?: number | null;
  burst?: number | null;
  concurrency?: number | null;
}

/** Who waits in a key's line after a change, in order, and the key's slot spacing from now on (0: no rate). */
export interface LineAfterChange {
  holders: string[];
  intervalMs: number;
}

export interface LimitsAdmin {
  list(): Promise<LimitStatus[]>;
  /**
   * Overrides a key for every worker within a second; `ttlMs` makes it temporary. Returns who waits
   * in the key's line: the jobs delayed until about their turn at the old rate (see wakeDeferredJobs).
   */
  set(key: string, change: LimitChange, ttlMs?: number): Promise<LineAfterChange>;
  pause(key: string): Promise<void>;
  /**
   * Lifts an operator pause and any Retry-After pause. Returns who waits in the key's line, as set:
   * jobs delayed until the pause's end (a Retry-After of a day) are woken to their turns now.
   */
  resume(key: string): Promise<LineAfterChange>;
  /** Removes an override: the key follows the config file again. Returns the deferred jobs' holders, as set. */
  reset(key: string): Promise<LineAfterChange>;
  /**
   * Opens or closes a key's circuit by hand; returns the transition made ('' when it was so already).
   * After a close, wake the jobs that waited for it (wakeCircuitWaiters).
   */
  circuit(key: string, action: 'open' | 'close'): Promise<'opened' | 'closed' | ''>;
}

export function createLimitsAdmin(options: { redis: RedisClient; config: SluiceConfig }): LimitsAdmin {
  const { redis, config } = options;
  const admin = defineScript(redis, 'limit-admin-3');
  const circuitAdmin = defineScript(redis, 'circuit-admin-2');
  const index = createLimitIndex(redis);
  // An earlier version's overrides are copied before the first change, or a change made here first
  // (a resume, a reset) would be undone by the copy.
  const copyLayout = legacyLayoutCopy(redis);

  const specOf = configuredSpecs(config);

  /** Applies a change; returns who waits in the key's line, and its pace from now on. */
  const change = async (key: string, ttlMs: number, fields: (string | number)[], clear = false): Promise<LineAfterChange> => {
    const spec = specOf(key);
    await copyLayout();
    const [intervalUs, ...holders] = (await admin(
      limiterKeys.state(key),
      limiterKeys.override(key),
      limiterKeys.line(key),
      ttlMs,
      clear ? '1' : '0',
      spec.rate,
      spec.burst,
      ...fields,
    )) as [number, ...string[]];
    await index.changed([key]);
    return { holders, intervalMs: Number(intervalUs) / 1_000 };
  };

  async function list(): Promise<LimitStatus[]> {
    await copyLayout();
    // Every target has a circuit breaker unless it says `circuit: false`: its state is worth seeing.
    const configured = new Set<string>(Object.keys(config.limits));
    for (const [name, target] of Object.entries(config.targets)) if (target.limits || circuitOf(name, config)) configured.add(name);
    for (const [name, circuit] of Object.entries(config.circuits ?? {})) if (circuit) configured.add(name);
    const names = new Set<string>([...(await redis.smembers(limiterKeys.index)), ...configured]);
    const now = Date.now();
    const readings = await readKeys(redis, [...names].sort(), now);
    // A key nobody has used for a day (its state expired), with no override and nothing in the
    // config, is forgotten: the index would otherwise grow with every key ever named.
    const forgotten = readings.filter(({ key, ...reading }) => isForgotten(reading) && !configured.has(key));
    // Housekeeping: a Redis that refuses writes (maxmemory, a read-only replica) must not fail the listing.
    if (forgotten.length) await redis.srem(limiterKeys.index, ...forgotten.map(({ key }) => key)).catch(() => undefined);
    return readings.filter((reading) => !forgotten.includes(reading)).map((reading) => limitStatus(reading, config, now));
  }

  async function set(key: string, limitChange: LimitChange, ttlMs = 0): Promise<LineAfterChange> {
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
    resume: (key) => change(key, -1, ['paused', '']),
    reset: (key) => change(key, 0, [], true),
    async circuit(key, action) {
      const circuit = circuitOf(key, config);
      if (!circuit) {
        throw new SluiceError(`the circuit breaker of ${key} is off (circuit: false in the config)`, { code: 'CIRCUIT_OFF' });
      }
      await copyLayout();
      const keys = [limiterKeys.state(key), limiterKeys.circuitWindow(key)];
      const transition = (await circuitAdmin(...keys, action, circuit.probeIntervalMs)) as 'opened' | 'closed' | '';
      if (transition !== '') await index.changed([key]);
      return transition;
    },
  };
}

/** Deletes everything the limiter keeps for a key (e.g. a demo's own key when it ends). */
export async function removeLimitKey(redis: RedisClient, key: string): Promise<void> {
  await redis.del(...LIMIT_KEY_KINDS.map((kind) => limiterKeys[kind](key)));
  await redis.srem(limiterKeys.index, key);
  if ((await redis.scard(limiterKeys.index)) === 0) await redis.del(limiterKeys.version);
}
