import { DEFAULT_CIRCUIT, type Circuit } from '../config/circuit-schema.js';
import type { Limits, SluiceConfig } from '../config/sluice-config.js';

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
