import { DEFAULT_CIRCUIT, type Circuit } from '../config/circuit-schema.js';
import type { Limits, SluiceConfig } from '../config/sluice-config.js';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import { limitGroupOf } from '../redis/keys.js';

/** A key's configured limit in the limiter's units. `rate` in requests per second; 0 = none. */
export interface LimitSpec {
  rate: number;
  burst: number;
  concurrency: number;
}

export const NO_LIMIT: LimitSpec = Object.freeze({ rate: 0, burst: 1, concurrency: 0 });

export function toSpec(limits: Limits | undefined): LimitSpec {
  if (!limits) return NO_LIMIT;
  const rate = limits.requestsPerSecond ?? (limits.requestsPerMinute !== undefined ? limits.requestsPerMinute / 60 : 0);
  return { rate, burst: limits.burst ?? 1, concurrency: limits.concurrency ?? 0 };
}

/** Each key's configured spec, worked out once per key. */
export function configuredSpecs(config: SluiceConfig): (key: string) => LimitSpec {
  const specs = new Map<string, LimitSpec>();
  return (key) => {
    let spec = specs.get(key);
    if (!spec) {
      spec = toSpec(configuredLimits(key, config));
      specs.set(key, spec);
    }
    return spec;
  };
}

/** A target's limits apply to the key named after the target; the top-level map covers the rest. */
export function configuredLimits(key: string, config: SluiceConfig): Limits | undefined {
  if (Object.hasOwn(config.targets, key)) {
    const targetLimits = config.targets[key]!.limits;
    if (targetLimits) return targetLimits;
  }
  return Object.hasOwn(config.limits, key) ? config.limits[key] : undefined;
}

/** A key's circuit breaker settings (the target's, else the `circuits` map's, else the defaults); undefined when it is off. */
export function circuitOf(key: string, config: SluiceConfig): Circuit | undefined {
  const setting = Object.hasOwn(config.targets, key) ? config.targets[key]!.circuit : undefined;
  const chosen = setting ?? (config.circuits && Object.hasOwn(config.circuits, key) ? config.circuits[key] : undefined) ?? DEFAULT_CIRCUIT;
  return chosen === false ? undefined : chosen;
}

/**
 * Keys split by their group (redis/keys.ts limitGroupOf), each group's in the order given: what
 * touches several keys at once does it group by group, one slot at a time on a Redis Cluster.
 */
export function byLimitGroup(keys: readonly string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const group = limitGroupOf(key);
    const members = groups.get(group);
    if (members) members.push(key);
    else groups.set(group, [key]);
  }
  return [...groups.values()];
}

/**
 * Why one operation may not name these keys on a Redis Cluster, or undefined: they are of several
 * groups, which the cluster keeps in different slots, and one operation's keys are acquired
 * together, in one script.
 */
export function crossGroupRefusal(keys: readonly string[]): string | undefined {
  if (keys.length < 2) return undefined;
  const groups = byLimitGroup(keys);
  if (groups.length < 2) return undefined;
  const named = groups.map((members) => `${members.map((key) => JSON.stringify(key)).join(', ')} (group "${limitGroupOf(members[0]!)}")`);
  const [first, second] = [groups[0]![0]!, groups[1]![0]!];
  return (
    `limit keys of different groups: ${named.join(' and ')}. On a Redis Cluster one operation's keys are acquired together, ` +
    `in one slot: name them in one group, the part before the first ":" (e.g. "${first}" and "${limitGroupOf(first)}:${second}")`
  );
}

/** What operations must also satisfy on this Redis: on a cluster, their limit keys of one group. */
export function operationRulesOf(redis: RedisClient): { oneLimitGroup: boolean } {
  return { oneLimitGroup: redis instanceof Cluster };
}

/**
 * Keys split for calls that touch several at once: by group on a Redis Cluster (one slot per call),
 * all in one call on a single Redis (no slots: one round trip, and one script stays atomic).
 */
export function keysBySlot(redis: RedisClient, keys: readonly string[]): string[][] {
  if (!(redis instanceof Cluster)) return keys.length ? [[...keys]] : [];
  return byLimitGroup(keys);
}
