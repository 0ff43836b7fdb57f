import { onTestFinished } from 'vitest';
import type { SluiceConfig } from '../../src/config/sluice-config.js';
import { createLimiter, type Limiter, type LimiterOptions } from '../../src/limits/limiter.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { testLogger } from './redis.js';

/** A limiter on its own Redis client (a "process"), closed with its client when the test finishes. */
export function startLimiterProcess(url: string, config: SluiceConfig, options: Partial<LimiterOptions> = {}): Limiter {
  const client = createRedisConnection(url, { name: 'test:limiter' });
  const limiter = createLimiter({ redis: client, config, logger: testLogger(), ...options });
  onTestFinished(async () => {
    await limiter.close();
    await closeRedis(client);
  });
  return limiter;
}
