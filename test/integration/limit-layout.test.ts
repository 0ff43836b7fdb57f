/**
 * The limiter's keys moved from one slot (`{limits}`, every key) to one per group
 * (`{limits:<group>}`, src/redis/keys.ts): what an earlier version left in Redis is copied when a
 * limiter starts (or an operator acts), so an upgrade keeps an operator's overrides (with their
 * lifetimes), paused keys, learned rates and the jobs waiting in a key's line; the earlier keys
 * stay for that version's workers still running. Real redis-server, real limiters.
 */
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { legacyLimiterKeys, limiterKeys } from '../../src/redis/keys.js';
import { type Limiter } from '../../src/limits/limiter.js';
import { createLimitsAdmin } from '../../src/limits/limits-admin.js';
import { moveLegacyLimiterKeys } from '../../src/limits/limit-layout.js';
import { useRedisServer } from '../helpers/redis.js';
import { startLimiterProcess } from '../helpers/limiter-process.js';

const redis = useRedisServer();

const limiterProcess = (config: SluiceConfig): Limiter => startLimiterProcess(redis().url, config);

/** What an earlier version left: three keys in `{limits}`, two of them overridden, one with a line. */
async function writeEarlierLayout(): Promise<void> {
  const client = redis().client;
  await client.sadd(legacyLimiterKeys.index, 'crm', 'crm:tenant-1', 'billing');
  await client.hset(legacyLimiterKeys.of('override', 'crm'), 'rate', '3');
  await client.pexpire(legacyLimiterKeys.of('override', 'crm'), 600_000);
  await client.hset(legacyLimiterKeys.of('override', 'billing'), 'paused', '1');
  await client.hset(
    legacyLimiterKeys.of('state', 'crm:tenant-1'),
    'decRate',
    '2',
    'effRate',
    '2',
    'decAt',
    String(Date.now()),
    'lastSeen',
    String(Date.now()),
  );
  await client.pexpire(legacyLimiterKeys.of('state', 'crm:tenant-1'), 86_400_000);
  await client.zadd(legacyLimiterKeys.of('line', 'crm'), 0, '{q}job-a', 1, '{q}job-b');
  await client.set('sluice:{limits}:version', '41');
  await client.zadd('sluice:{limits}:processes', Date.now() + 15_000, 'old-process');
}

describe('upgrading from the one-slot layout', () => {
  it('a limiter that starts copies every key to its group, keeping overrides, their lifetimes, pauses, learned rates and lines', async () => {
    await writeEarlierLayout();
    const cfg = parseSluiceConfig({ limits: { billing: { requestsPerSecond: 50 } } });
    const limiter = limiterProcess(cfg);

    // The paused key is paused for this limiter: it was copied before the first start was decided.
    const gate = await limiter.acquire(['billing'], '{q}job-1', 5_000);
    expect(gate).toMatchObject({ kind: 'defer', reason: 'paused' });

    const client = redis().client;
    // Copied once: the earlier index is gone; the earlier keys stay for an earlier worker still
    // running, those that had no lifetime (an override) for a day more.
    expect(await client.exists(legacyLimiterKeys.index)).toBe(0);
    expect(await client.hgetall(legacyLimiterKeys.of('override', 'billing'))).toEqual({ paused: '1' });
    const kept = await client.pttl(legacyLimiterKeys.of('override', 'billing'));
    expect(kept).toBeGreaterThan(86_000_000);
    expect(kept).toBeLessThanOrEqual(86_400_000);
    expect(await client.hgetall(limiterKeys.override('crm'))).toEqual({ rate: '3' });
    const ttl = await client.pttl(limiterKeys.override('crm'));
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
    expect(await client.pttl(limiterKeys.override('billing'))).toBe(-1);
    expect(await client.hget(limiterKeys.state('crm:tenant-1'), 'decRate')).toBe('2');
    expect(await client.zrange(limiterKeys.line('crm'), 0, -1)).toEqual(['{q}job-a', '{q}job-b']);
    expect((await client.smembers(limiterKeys.index)).sort()).toEqual(['billing', 'crm', 'crm:tenant-1']);
    // The grouped layout: crm's keys share crm's tag, billing's its own.
    expect(limiterKeys.line('crm')).toBe('sluice:{limits:crm}:line:crm');
    expect(limiterKeys.state('crm:tenant-1')).toBe('sluice:{limits:crm}:state:crm:tenant-1');

    // What operators see is what they set before the upgrade.
    const listed = await createLimitsAdmin({ redis: client, config: cfg }).list();
    expect(listed.find((entry) => entry.key === 'crm')?.override).toMatchObject({ rate: 3 });
    expect(listed.find((entry) => entry.key === 'billing')?.paused).toBe(true);
    expect(listed.find((entry) => entry.key === 'crm:tenant-1')?.effectiveRate).toBe(2);
  });

  it('what the grouped layout already holds wins; copying again copies nothing', async () => {
    const client = redis().client;
    await writeEarlierLayout();
    await client.hset(limiterKeys.override('crm'), 'rate', '7');

    // Two processes at once (two workers starting together) end in the same place.
    const copied = await Promise.all([moveLegacyLimiterKeys(client), moveLegacyLimiterKeys(client)]);
    expect(Math.max(...copied)).toBe(3);
    expect(await moveLegacyLimiterKeys(client)).toBe(0);
    expect(await client.hgetall(limiterKeys.override('crm'))).toEqual({ rate: '7' });
    expect(await client.hgetall(limiterKeys.override('billing'))).toEqual({ paused: '1' });
  });

  it("an operator's first change after the upgrade is made on the copied override, not undone by the copy", async () => {
    const client = redis().client;
    await writeEarlierLayout();
    // `sluice limits resume billing` before any upgraded worker started.
    await createLimitsAdmin({ redis: client, config: parseSluiceConfig({}) }).resume('billing');
    expect(await client.hget(limiterKeys.override('billing'), 'paused')).toBeNull();
    const limiter = limiterProcess(parseSluiceConfig({ limits: { billing: { requestsPerSecond: 50 } } }));
    expect(await limiter.acquire(['billing'], '{q}job-2', 5_000)).toMatchObject({ kind: 'go' });
  });
});
