import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createKeyState } from '../../src/limits/key-state.js';

/** specOf and needsScript read only the configuration and what the process learned: no Redis. */
const noRedis = new Proxy({}, { get: () => expect.unreachable('Redis touched') }) as Redis;

const config = parseSluiceConfig({
  targets: { orders: { baseUrl: 'https://orders.example.com', limits: { requestsPerMinute: 600, burst: 5 } } },
  limits: { uploads: { concurrency: 2 }, orders: { requestsPerSecond: 1 } },
});

describe('key state', () => {
  it("reads a key's spec from its target first, then the top-level limits, else no limit", () => {
    const keys = createKeyState(noRedis, config);
    expect(keys.specOf('orders')).toEqual({ rate: 10, burst: 5, concurrency: 0 });
    expect(keys.specOf('uploads')).toEqual({ rate: 0, burst: 1, concurrency: 2 });
    expect(keys.specOf('anything')).toEqual({ rate: 0, burst: 1, concurrency: 0 });
  });

  it.each([
    { keys: ['orders'], needs: true },
    { keys: ['uploads'], needs: true },
    { keys: ['anything'], needs: false },
    { keys: ['anything', 'uploads'], needs: true },
    { keys: [], needs: false },
  ])('$keys: the script is needed: $needs', ({ keys, needs }) => {
    expect(createKeyState(noRedis, config).needsScript(keys)).toBe(needs);
  });

  it('a key with no limit needs the script once Redis holds something for it', () => {
    const keys = createKeyState(noRedis, config);
    keys.markDynamic('anything');
    expect(keys.needsScript(['anything'])).toBe(true);
    expect(keys.needsScript(['other'])).toBe(false);
  });
});
