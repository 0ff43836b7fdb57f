/**
 * A queue spread over shards (queue/shards.ts) is one queue to the server: its shard count is read
 * and set over the API (admin only, refused while idempotency marks are held), an operation is
 * found by id whichever shard holds it, and the overview, the fleet metrics and bull-board add the
 * shards up (bull-board lists each shard, named after its queue).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { parseExposition } from '../helpers/prom-text.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { createFleetMetrics } from '../../src/observability/fleet-metrics.js';
import { discoverQueues } from '../../src/queue/discover-queues.js';
import { shardOfJob } from '../../src/queue/shards.js';
import { PREFIX, jobIdForKey, queueKeys, shardName } from '../../src/redis/keys.js';

const redis = useRedisServer();

async function setup(extra: { lanes?: boolean; laneSize?: number } = {}): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, queueDiscoveryMs: 0, ...extra });
  return { p, api };
}

async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

/** An idempotency key whose job lands on `shard` of a queue of `count` shards. */
function keyOnShard(shard: number, count: number, prefix = 'key'): string {
  for (let i = 0; ; i += 1) {
    const key = `${prefix}-${i}`;
    if (shardOfJob(jobIdForKey(key), count) === shard) return key;
  }
}

/** Whether shard `index` of `queue` holds the job `id` (its BullMQ hash). */
async function shardHolds(queue: string, index: number, id: string): Promise<boolean> {
  return (await redis().client.exists(`${PREFIX}:{${shardName(queue, index)}}:${id}`)) === 1;
}

const setShards = (api: ApiServer, queue: string, json: unknown, role: keyof typeof TOKENS = 'admin') =>
  api.call(`/v1/queues/${queue}/shards`, { method: 'PUT', role, json });

describe('the shard count over the API', () => {
  it('shows a queue with its shards; only an admin sets them; a bad count is a 400 naming the field; held marks a 409 unless forced', async () => {
    const { p, api } = await setup();
    const queue = uniqueQueue('spread');
    expect((await api.call(`/v1/queues/${queue}`, { role: 'read' })).status).toBe(404);
    expect(await json(await api.call(`/v1/queues/${p.queue}`, { role: 'read' }))).toEqual({
      name: p.queue,
      isDefault: true,
      shards: { count: 1, highest: 1 },
    });

    for (const role of ['read', 'enqueue'] as const) {
      const refused = await setShards(api, queue, { count: 3 }, role);
      expect(refused.status, role).toBe(403);
      expect((await json(refused))['code']).toBe('FORBIDDEN');
    }
    for (const [body, path] of [
      [{ count: 0 }, 'body.count'],
      [{ count: 65 }, 'body.count'],
      [{ count: 2.5 }, 'body.count'],
      [{ count: 'three' }, 'body.count'],
      [{}, 'body.count'],
      [{ count: 2, force: 'yes' }, 'body.force'],
    ] as const) {
      const bad = await setShards(api, queue, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      const problem = await json<{ code: string; errors: { path: string }[] }>(bad);
      expect(problem.code).toBe('VALIDATION_FAILED');
      expect(problem.errors.map((issue) => issue.path)).toContain(path);
    }
    // Nothing refused made the queue.
    expect((await api.call(`/v1/queues/${queue}`, { role: 'read' })).status).toBe(404);

    // A queue may be spread before its first enqueue.
    const spread = await setShards(api, queue, { count: 3 });
    expect(spread.status).toBe(200);
    expect(await json(spread)).toEqual({ name: queue, previous: 1, shards: { count: 3, highest: 3 } });
    expect(await json(await api.call(`/v1/queues/${queue}`, { role: 'read' }))).toEqual({
      name: queue,
      isDefault: false,
      shards: { count: 3, highest: 3 },
    });

    // An idempotency key's mark is held: the same key after a change could pick another shard.
    const enqueued = await api.call(`/v1/operations?queue=${queue}`, {
      method: 'POST',
      role: 'enqueue',
      json: p.op('/once', { idempotencyKey: 'order-1' }),
    });
    expect(enqueued.status).toBe(202);
    const refused = await setShards(api, queue, { count: 2 });
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    const problem = await json(refused);
    expect(problem).toMatchObject({
      type: '/problems/shards-change-refused',
      status: 409,
      code: 'SHARDS_CHANGE_REFUSED',
      instance: `/v1/queues/${queue}/shards`,
      heldMarks: 1,
    });
    expect(problem['detail']).toContain('not changing its shards from 3 to 2: 1 idempotency key(s) are held in their dedup window');
    expect((await json(await api.call(`/v1/queues/${queue}`, { role: 'read' })))['shards']).toEqual({ count: 3, highest: 3 });

    const forced = await setShards(api, queue, { count: 2, force: true });
    expect(forced.status).toBe(200);
    expect(await json(forced)).toEqual({ name: queue, previous: 3, shards: { count: 2, highest: 3 } });
    expect(api.log()).toContain('"msg":"shard count changed"');
  });
});

describe('an operation by id, on any shard', () => {
  it('finds a job on shard 2, and still finds it after the count went down', async () => {
    const { p, api } = await setup();
    const queue = uniqueQueue('spread');
    expect((await setShards(api, queue, { count: 3 })).status).toBe(200);
    const key = keyOnShard(2, 3);
    const enqueued = await json<{ ids: string[] }>(
      await api.call(`/v1/operations?queue=${queue}`, {
        method: 'POST',
        role: 'enqueue',
        json: [p.op('/zero', { idempotencyKey: keyOnShard(0, 3) }), p.op('/two', { idempotencyKey: key })],
      }),
    );
    const id = enqueued.ids[1]!;
    expect(id).toBe(jobIdForKey(key));
    expect(await shardHolds(queue, 2, id)).toBe(true);
    expect(await shardHolds(queue, 0, id)).toBe(false);

    const found = await api.call(`/v1/operations/${id}?queue=${queue}`, { role: 'read' });
    expect(found.status).toBe(200);
    expect(await json(found)).toMatchObject({ id, queue, state: 'queued', idempotencyKey: key, lane: null });

    // Its id picks shard 0 of one: the lookup goes on to the others.
    expect((await setShards(api, queue, { count: 1, force: true })).status).toBe(200);
    expect(await json(await api.call(`/v1/operations/${id}?queue=${queue}`, { role: 'read' }))).toMatchObject({ id, state: 'queued' });
    expect((await api.call(`/v1/operations/k-${'0'.repeat(40)}?queue=${queue}`, { role: 'read' })).status).toBe(404);
  });

  it('finds an operation inside a lane on shard 2', async () => {
    const { p, api } = await setup({ lanes: true, laneSize: 2 });
    const queue = uniqueQueue('lanes');
    expect((await setShards(api, queue, { count: 3 })).status).toBe(200);
    // Forty operations, each on the shard its id picks, in lanes: some on shard 2 (all but certainly).
    const ops = Array.from({ length: 40 }, (_, i) => p.op(`/lane/${i}`));
    const { ids } = await json<{ ids: string[] }>(
      await api.call(`/v1/operations?queue=${queue}`, { method: 'POST', role: 'enqueue', json: ops }),
    );
    // A shard's operations are cut into lanes of two (one left over is a job of its own).
    const laneOf = (id: string) => /^(l-[0-9a-f]{24})-\d+$/.exec(id)?.[1];
    const onShard2 = [];
    for (const id of ids) if (laneOf(id) && (await shardHolds(queue, 2, laneOf(id)!))) onShard2.push(id);
    expect(onShard2.length).toBeGreaterThan(0);
    for (const id of onShard2) {
      const found = await api.call(`/v1/operations/${id}?queue=${queue}`, { role: 'read' });
      expect(found.status, id).toBe(200);
      expect(await json(found)).toMatchObject({ id, queue, state: 'queued', lane: { id: laneOf(id) } });
    }
  });
});

describe('the shards added up', () => {
  /** A queue of three shards with one operation waiting on each, and a dead letter stored on shards 0 and 2. */
  async function spreadQueue(p: Pipeline, api: ApiServer): Promise<string> {
    const queue = uniqueQueue('spread');
    expect((await setShards(api, queue, { count: 3 })).status).toBe(200);
    const ops = [0, 1, 2].map((shard) => p.op(`/s${shard}`, { idempotencyKey: keyOnShard(shard, 3) }));
    expect((await api.call(`/v1/operations?queue=${queue}`, { method: 'POST', role: 'enqueue', json: ops })).status).toBe(202);
    // The gauge counts what each shard's dead-letter hash holds (HLEN).
    for (const shard of [0, 2]) await redis().client.hset(queueKeys(shardName(queue, shard)).deadLetters, `dead-${shard}`, '{}');
    return queue;
  }

  it('reports jobs and dead letters per logical queue in the fleet metrics, never a shard of its own', async () => {
    const { p, api } = await setup();
    const queue = await spreadQueue(p, api);
    const metrics = createFleetMetrics({
      redis: redis().client,
      queues: () => discoverQueues(redis().client),
      config: p.config,
      processMetrics: false,
    });
    onTestFinished(() => metrics.close());
    const exposition = parseExposition(await metrics.render());
    expect(exposition.sum('sluice_queue_jobs', { queue })).toBe(3);
    expect(exposition.sum('sluice_dead_letters_stored', { queue })).toBe(2);
    const labelled = ['sluice_queue_jobs', 'sluice_dead_letters_stored', 'sluice_workers'].flatMap((name) => exposition.samples(name));
    expect(labelled.filter((sample) => sample.labels['queue']?.includes('#'))).toEqual([]);
  });

  it("shows the queue once in the overview, with its shards' jobs", async () => {
    const { p, api } = await setup();
    const queue = await spreadQueue(p, api);
    const overview = await json<{ queues: { name: string; jobs: Record<string, number>; paused: boolean }[] }>(
      await api.call('/v1/overview', { role: 'read' }),
    );
    expect(overview.queues.filter((entry) => entry.name.startsWith(queue))).toEqual([
      expect.objectContaining({ name: queue, paused: false, jobs: expect.objectContaining({ waiting: 3, paused: 0 }) }),
    ]);
  });

  it('lists every shard on bull-board, named after its queue, and guards its actions as a queue of its own', async () => {
    const { p, api } = await setup();
    const queue = await spreadQueue(p, api);
    const admin = { authorization: `Bearer ${TOKENS.admin}` };
    const listed = await json<{ queues: { name: string; displayName: string; description: string; counts: Record<string, number> }[] }>(
      await fetch(`${api.url}/dashboard/api/queues`, { headers: admin }),
    );
    const shards = listed.queues.filter((entry) => entry.name.startsWith(`{${queue}`));
    expect(shards.map(({ name, displayName }) => ({ name, displayName }))).toEqual(
      [0, 1, 2].map((index) => ({
        name: `{${shardName(queue, index)}}`,
        displayName: `${queue} · shard ${index}`,
      })),
    );
    expect(shards[2]!.description).toBe(`sluice queue ${queue}, shard 2 of 3 (BullMQ queue {${queue}#2})`);
    for (const shard of shards)
      expect(
        Object.values(shard.counts).reduce((sum, n) => sum + n, 0),
        shard.name,
      ).toBe(1);
    // A queue never spread keeps its plain name.
    expect(listed.queues.find((entry) => entry.name === `{${p.queue}}`)?.displayName).toBe(p.queue);

    // Each shard's job is unfinished: cleaning it would strand its batch, on shard 2 as on shard 0.
    const onShard2 = encodeURIComponent(`{${shardName(queue, 2)}}`);
    const id = jobIdForKey(keyOnShard(2, 3));
    for (const path of [`/api/queues/${onShard2}/empty`, `/api/queues/${onShard2}/${id}/clean`]) {
      const refused = await fetch(`${api.url}/dashboard${path}`, { method: 'PUT', headers: admin });
      expect(refused.status, path).toBe(409);
      expect((await json(refused))['code']).toBe('WOULD_STRAND_BATCHES');
    }
    expect(await shardHolds(queue, 2, id)).toBe(true);
    // Pausing one shard pauses that shard: the overview shows its job as paused, the queue as not (the others run).
    expect((await fetch(`${api.url}/dashboard/api/queues/${onShard2}/pause`, { method: 'PUT', headers: admin })).ok).toBe(true);
    const overview = await json<{ queues: { name: string; jobs: Record<string, number>; paused: boolean }[] }>(
      await api.call('/v1/overview', { role: 'read' }),
    );
    expect(overview.queues.find((entry) => entry.name === queue)).toMatchObject({ paused: false, jobs: { waiting: 2, paused: 1 } });
  });
});
