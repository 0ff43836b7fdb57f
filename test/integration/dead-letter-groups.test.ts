import { describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/redis/keys.js';
import { useRedisServer } from '../helpers/redis.js';
import { startPipeline } from '../helpers/pipeline-harness.js';

const redis = useRedisServer();

describe('dead-letter groups', () => {
  it('are counted as dead letters are written, replayed and purged, per queue and per batch, without reading them', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /gone', [{ status: 404 }]);
    p.target.script('POST /bad', [{ status: 422 }]);
    const first = await p.producer.enqueueMany([p.op('/gone'), p.op('/gone'), p.op('/bad')], { batchId: 'groups-a' });
    const second = await p.producer.enqueueMany([p.op('/gone')], { batchId: 'groups-b' });
    await p.settled(first.batchId);
    await p.settled(second.batchId);

    const all = await p.deadLetters.summary();
    expect(all.total).toBe(4);
    expect(all.groups.map((g) => [g.status, g.reason, g.count])).toEqual([
      [404, 'permanent-status', 3],
      [422, 'permanent-status', 1],
    ]);
    expect(all.groups[0]!.example).toContain('404');
    expect(all.groups[0]!.latest).toMatch(/^\d{4}-/);
    const batchA = await p.deadLetters.summary({ batchId: 'groups-a' });
    expect(batchA.groups.map((g) => [g.status, g.count])).toEqual([
      [404, 2],
      [422, 1],
    ]);
    expect((await p.deadLetters.summary({ status: 422 })).total).toBe(1);

    // The counters are read, not the dead letters: a summary is a handful of commands.
    const keys = queueKeys(p.queue);
    expect(await redis().client.hgetall(keys.deadLetterGroups)).toEqual({
      [JSON.stringify([all.groups[0]!.limitKey, 404, 'permanent-status'])]: '3',
      [JSON.stringify([all.groups[0]!.limitKey, 422, 'permanent-status'])]: '1',
    });

    // Replaying and purging lower them.
    const [goneInB] = await p.deadLetters.ids({ batchId: 'groups-b' });
    p.target.script('POST /gone', [{ status: 200, json: { ok: true } }]);
    await p.deadLetters.replay([goneInB!]);
    await p.settled(second.batchId);
    const [badInA] = await p.deadLetters.ids({ batchId: 'groups-a', status: 422 });
    await p.deadLetters.purge([badInA!]);
    expect((await p.deadLetters.summary()).groups.map((g) => [g.status, g.count])).toEqual([[404, 2]]);
    expect((await p.deadLetters.summary({ batchId: 'groups-a' })).groups.map((g) => [g.status, g.count])).toEqual([[404, 2]]);
    expect((await p.deadLetters.summary({ batchId: 'groups-b' })).total).toBe(0);
  });

  it('rebuilds counters that disagree with the dead letters (lost, or written by an older version)', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /gone', [{ status: 410 }]);
    const { batchId } = await p.producer.enqueueMany([p.op('/gone'), p.op('/gone')], { batchId: 'groups-c' });
    await p.settled(batchId);
    const keys = queueKeys(p.queue);
    await redis().client.del(keys.deadLetterGroups, keys.deadLetterGroupLatest, keys.batchDeadLetterGroups(batchId));
    const rebuilt = await p.deadLetters.summary();
    expect(rebuilt.groups.map((g) => [g.status, g.count])).toEqual([[410, 2]]);
    expect(rebuilt.groups[0]!.example).toContain('410');
    expect((await p.deadLetters.summary({ batchId })).groups.map((g) => [g.status, g.count])).toEqual([[410, 2]]);
    // and keeps them: the next summary reads the counters.
    expect(Object.values(await redis().client.hgetall(keys.deadLetterGroups))).toEqual(['2']);
  });
});
