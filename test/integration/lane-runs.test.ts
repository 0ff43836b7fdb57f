/**
 * A lane's operations on a binding key book their slots in runs (limit-acquire.lua, "Followers";
 * limits/run-grants.ts): the start at the head of a lane's run books the slots of the operations
 * behind it in the line, as if each had asked in turn, so the key is asked once per run rather
 * than once per operation. Against a real redis-server, the script straight and a lane through a
 * worker.
 */
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createLineJoin } from '../../src/limits/line-join.js';
import { limiterKeys } from '../../src/redis/keys.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';
import { acquireScriptFor } from '../helpers/acquire-script.js';

const redis = useRedisServer();

/** `key` at `rate`/s, burst 4 (a client burst of one: slots at the schedule's pace), and `concurrency` when given. */
function keyConfig(key: string, rate: number, concurrency?: number) {
  return parseSluiceConfig({ limits: { [key]: { requestsPerSecond: rate, burst: 4, ...(concurrency ? { concurrency } : {}) } } });
}

/** The acquire script as the limiter calls it, for `holder` with these followers. */
function asker(key: string, rate: number, concurrency?: number) {
  const acquire = acquireScriptFor(redis().client, key, keyConfig(key, rate, concurrency));
  return (holder: string, followers: string[]) => acquire(holder, { followers });
}

/** `count` holders of one lane, placed in the key's line at enqueue as the producer places them. */
async function lineOf(key: string, rate: number, count: number): Promise<string[]> {
  const holders = Array.from({ length: count }, (_, i) => `{q}l-${key}-${i}`);
  await createLineJoin(redis().client, keyConfig(key, rate))(holders.map((holder) => ({ holder, keys: [key] })));
  return holders;
}

const state = async (key: string) => {
  const [next, served] = await redis().client.hmget(limiterKeys.state(key), 'next', 'served');
  return { next: Number(next), served: Number(served) };
};

describe('a lane’s run of slots', () => {
  it('books the followers’ slots with the head’s, one slot apart, as far as the in-slot wait reaches; the rest keep their tickets', async () => {
    // 100/s: slots 10 ms apart; a start may book up to twice the 250 ms in-slot wait ahead.
    const key = 'run-book';
    const holders = await lineOf(key, 100, 80);
    const reply = await asker(key, 100)(holders[0]!, holders.slice(1));
    expect(reply.kind).toBe('go');
    if (reply.kind !== 'go') return;
    const waits = reply.followerWaitsMs;
    expect(waits.length).toBeGreaterThanOrEqual(45);
    expect(waits.length).toBeLessThan(79);
    // Each follower's slot is the next one of the key's schedule: 10 ms after the one before.
    expect(waits[0]! - reply.waitMs).toBe(10);
    for (let i = 1; i < waits.length; i++) expect(waits[i]! - waits[i - 1]!).toBe(10);
    expect(waits.at(-1)!).toBeLessThanOrEqual(500);
    // The booked ones' tickets are used and the line moved by as many; the rest still stand in it, in order.
    const booked = 1 + waits.length;
    expect(await state(key)).toEqual({ next: 80, served: booked });
    expect(await redis().client.zrange(limiterKeys.line(key), 0, -1)).toEqual(holders.slice(booked));
    // The next of them stands at the head: it books the slot after the run's last once that is near
    // enough (a moment later on a busy machine), else it is told its turn, first in line.
    const next = await asker(key, 100)(holders[booked]!, []);
    if (next.kind === 'go') expect(next.waitMs).toBeGreaterThan(400);
    else expect(next).toMatchObject({ kind: 'queued', position: 0 });
  });

  it('stops at a follower whose ticket is gone, and books none on a key with a concurrency limit', async () => {
    // (40: more than a window, so that the producer gives them tickets.)
    const holders = await lineOf('run-gap', 100, 40);
    await redis().client.zrem(limiterKeys.line('run-gap'), holders[4]!);
    const reply = await asker('run-gap', 100)(holders[0]!, holders.slice(1));
    expect(reply).toMatchObject({ kind: 'go', followerWaitsMs: [10, 20, 30] });
    expect(await redis().client.zrange(limiterKeys.line('run-gap'), 0, -1)).toEqual(holders.slice(5));

    // Leases are taken one per start, when it starts: a concurrency-limited key books no followers.
    const limited = await lineOf('run-leased', 100, 40);
    const leased = await asker('run-leased', 100, 5)(limited[0]!, limited.slice(1));
    expect(leased).toMatchObject({ kind: 'go', leasedMask: 1, followerWaitsMs: [] });
    expect(await redis().client.zcard(limiterKeys.line('run-leased'))).toBe(39);
  });

  it('a lane of 300 on a 100/s key: the key is asked about once per 10 operations, the target never sees more than the limit', async () => {
    const config = parseSluiceConfig({ limits: { 'lane-run': { requestsPerSecond: 100, burst: 4 } } });
    const p = await startPipeline(redis(), { concurrency: 20, config }, { lanes: true });
    await p.worker.close();
    const batchId = 'lane-runs';
    await p.producer.enqueueMany(
      Array.from({ length: 300 }, (_, n) => p.op('/run', { meta: { n }, limitKey: 'lane-run' })),
      { batchId },
    );
    await redis().client.config('RESETSTAT');
    await p.startWorker({ concurrency: 20 });
    expect(await p.settled(batchId, 30_000)).toMatchObject({ total: 300, succeeded: 300, deadLettered: 0 });

    // Each limiter script reads Redis TIME once, and nothing else here does.
    const stats = await redis().client.info('commandstats');
    const scriptCalls = Number(/cmdstat_time:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    expect(scriptCalls).toBeGreaterThan(0);
    expect(scriptCalls / 300).toBeLessThan(0.35);
    // At most the rate and the burst in any second: 104.
    const arrivals = p
      .requestsTo('/run')
      .map((request) => request.startedAt)
      .sort((a, b) => a - b);
    expect(arrivals).toHaveLength(300);
    let busiest = 0;
    for (let i = 0, j = 0; i < arrivals.length; i++) {
      while (arrivals[i]! - arrivals[j]! >= 1_000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeLessThanOrEqual(104);
  });
});
