import type { RedisClient } from '../redis/client.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { limiterKeys } from '../redis/keys.js';
import type { Circuit } from '../config/circuit-schema.js';
import { circuitOf, configuredSpecs, keysBySlot, type LimitSpec } from './limit-keys.js';

/**
 * What this process knows of its limit keys: each key's configured spec, and the keys Redis holds
 * something for (an operator override, a learned rate, a pause, an open circuit). A key in neither
 * has no limit at all and skips Redis entirely.
 */
export interface KeyState {
  specOf(key: string): LimitSpec;
  /** The key's circuit breaker settings; undefined when it is off. */
  circuitOf(key: string): Circuit | undefined;
  /** Whether starts on these keys must go through the acquire script. */
  needsScript(keys: readonly string[]): boolean;
  /** Redis holds something for the key now (a response taught it), before the next refresh reads it. */
  markDynamic(key: string): void;
  /** Reads the keys Redis holds something for again, if the version key says anything changed. */
  refresh(): Promise<void>;
}

export function createKeyState(redis: RedisClient, config: SluiceConfig): KeyState {
  const specOf = configuredSpecs(config);
  const circuits = new Map<string, Circuit | undefined>();
  /** Keys that Redis holds something for (override, learned rate, pause): they must use the script. */
  let dynamicKeys = new Set<string>();
  let seenVersion: string | null | undefined;

  function circuitOfKey(key: string): Circuit | undefined {
    if (!circuits.has(key)) circuits.set(key, circuitOf(key, config));
    return circuits.get(key);
  }

  async function refresh(): Promise<void> {
    const version = await redis.get(limiterKeys.version);
    if (version === seenVersion) return;
    seenVersion = version;
    const names = await redis.smembers(limiterKeys.index);
    const groups = await Promise.all(keysBySlot(redis, names).map((group) => dynamicOf(group)));
    dynamicKeys = new Set(groups.flat());
  }

  /** The keys of one pipeline (one slot on a Redis Cluster) that Redis holds something for. */
  async function dynamicOf(names: string[]): Promise<string[]> {
    const pipeline = redis.pipeline();
    for (const name of names) {
      pipeline.exists(limiterKeys.override(name));
      pipeline.hmget(limiterKeys.state(name), 'decRate', 'pausedUntil', 'circuit');
    }
    const replies = (await pipeline.exec()) ?? [];
    return names.filter((_, i) => {
      const hasOverride = replies[2 * i]?.[1] === 1;
      const [decRate, pausedUntil, circuit] = (replies[2 * i + 1]?.[1] as (string | null)[] | undefined) ?? [];
      return hasOverride || decRate || circuit || Number(pausedUntil ?? 0) > Date.now();
    });
  }

  return {
    specOf,
    circuitOf: circuitOfKey,
    needsScript: (keys) => keys.some((key) => dynamicKeys.has(key) || specOf(key).rate > 0 || specOf(key).concurrency > 0),
    markDynamic(key) {
      dynamicKeys.add(key);
    },
    refresh,
  };
}
