import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../../src/config/sluice-config.js';
import { acquireArgs, decodeAcquireReply, type AcquireReply } from '../../src/limits/acquire-call.js';
import { configuredSpecs } from '../../src/limits/limit-keys.js';
import { defineScript } from '../../src/redis/scripts.js';

/**
 * limit-acquire.lua for one key, called straight as the limiter calls it (one slot wanted, a lease
 * of a minute, a 250 ms in-slot wait), so that a test chooses each call's restore flag and followers.
 */
export function acquireScriptFor(
  client: Redis,
  key: string,
  config: SluiceConfig,
): (holder: string, options?: { restore?: boolean; followers?: string[] }) => Promise<AcquireReply> {
  const specs = configuredSpecs(config);
  const acquire = defineScript(client, 'limit-acquire');
  return async (holder, { restore = false, followers } = {}) =>
    decodeAcquireReply(
      await acquire(
        ...acquireArgs({
          keys: [key],
          holder,
          leaseId: `lease-${holder}`,
          leaseMs: 60_000,
          maxInSlotWaitMs: 250,
          wantSlots: 1,
          waiter: '',
          restore,
          ...(followers ? { followers } : {}),
          specOf: (name) => specs(name),
          circuitOn: () => false,
        }),
      ),
    );
}
