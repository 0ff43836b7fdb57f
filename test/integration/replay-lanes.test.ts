/**
 * Dead letters replayed in lanes (outcomes/dead-letter-replay.ts, redis/lua/replay-lane-14.lua):
 * those of one batch that share limit keys go back as lanes, each operation with its own id, key and
 * result line; replays that run at once, or after one cut short, send each operation once.
 */
import { describe, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';
import { LANE_OP_ID } from '../../src/queue/lanes.js';
import { createDeadLetterStore } from '../../src/outcomes/dead-letter-store.js';
import { defineScript } from '../../src/redis/scripts.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startApiServer } from '../helpers/api-server.js';
import { replayIdOf } from '../helpers/replay-id.js';

const redis = useRedisServer();

/** A pipeline whose target answers 422 on `/bad` until `fix()`, 200 otherwise, counting sends per key. */
async function failingPipeline(): Promise<{ p: Pipeline; fix: () => void; sends: Map<string, number> }> {
  const p = await startPipeline(redis(), { concurrency: 20 }, { lanes: true, laneSize: 500 });
  const sends = new Map<string, number>();
  let fixed = false;
  p.target.setDefault((request) => {
    const key = request.headers['idempotency-key'] as string;
    sends.set(key, (sends.get(key) ?? 0) + 1);
    if (request.path === '/bad' && !fixed) return { status: 422, json: { error: 'invalid' } };
    return { status: 200, json: { ok: true } };
  });
  return { p, fix: () => (fixed = true), sends };
}

/** Enqueues `count` operations in lanes, every `every`-th to `/bad`, and waits for the batch; returns the dead letters' ids. */
async function deadLettered(p: Pipeline, batchId: string, count: number, every: number): Promise<string[]> {
  const operations = Array.from({ length: count }, (_, n) => p.op(n % every === 0 ? '/bad' : '/ok', { meta: { n } }));
  await p.producer.enqueueMany(operations, { batchId });
  const bad = Math.ceil(count / every);
  expect(await p.settled(batchId)).toMatchObject({ total: count, succeeded: count - bad, deadLettered: bad });
  const letters = await p.deadLetters.list({ batchId });
  expect(letters).toHaveLength(bad);
  return letters.map((letter) => letter.id);
}

describe('dead letters replayed in lanes', () => {
  it('goes back as one lane per batch and limit key: each operation sent once more with its key, its result line updated', async () => {
    const { p, fix, sends } = await failingPipeline();
    const ids = await deadLettered(p, 'replay-lanes-1', 200, 5);
    const other = await deadLettered(p, 'replay-lanes-2', 20, 10);
    fix();

    const replay = await p.deadLetters.replay([...ids, 'no-such-letter', ...other]);
    expect(replay.missing).toEqual(['no-such-letter']);
    expect(replay.replayed.map((entry) => entry.id)).toEqual([...ids, ...other]);
    // One lane for each batch: the 40 of the first share one, the 2 of the second another.
    const lanes = replay.replayed.map((entry) => LANE_OP_ID.exec(entry.jobId)?.[1]);
    expect(lanes.every((lane) => lane !== undefined)).toBe(true);
    expect(new Set(lanes.slice(0, 40)).size).toBe(1);
    expect(new Set(lanes.slice(40)).size).toBe(1);
    expect(lanes[0]).not.toBe(lanes[40]);

    expect(await p.settled('replay-lanes-1')).toMatchObject({ total: 200, succeeded: 200, deadLettered: 0 });
    expect(await p.settled('replay-lanes-2')).toMatchObject({ total: 20, succeeded: 20, deadLettered: 0 });
    // Each sent twice in all, with the one key it had: dead-lettered once, replayed once.
    const badKeys = p.requestsTo('/bad').map((request) => request.headers['idempotency-key'] as string);
    expect(badKeys).toHaveLength(84);
    expect([...new Set(badKeys)].every((key) => sends.get(key) === 2)).toBe(true);
    const lines = (await p.results('replay-lanes-1')).filter((line) => (line.meta as { n: number }).n % 5 === 0);
    expect(lines).toHaveLength(40);
    for (const line of lines) {
      expect(line).toMatchObject({ outcome: 'succeeded', idempotencyKey: `sluice-${line.id}` });
      expect(line.jobId).toBe(replay.replayed.find((entry) => entry.id === line.id)!.jobId);
    }
    expect(await p.deadLetters.summary()).toEqual({ total: 0, groups: [] });
  });

  it('replays at once, and after one cut short, send each operation once and count it once', async () => {
    const { p, fix, sends } = await failingPipeline();
    const batchId = 'replay-lanes-race';
    const ids = await deadLettered(p, batchId, 150, 5);
    fix();
    // No worker until every replay is written, so that none runs before another looks.
    await p.worker.close();

    // A replay as a job of its own cut short after its first step (the batch stops counting it).
    const keys = queueKeys(p.queue);
    const begin = defineScript(redis().client, 'begin-replay-3');
    expect(await begin(keys.deadLetters, keys.replaying, keys.batch(batchId), ids[0]!)).toBe(1);
    expect(await p.batches.status(batchId)).toMatchObject({ deadLettered: 29, pending: 1 });

    const cutShort = await replayIdOf(p.deadLetters, ids[0]!);
    // Two replays in lanes and one without, over the same dead letters, at once; and a purge of one.
    const alone = createDeadLetterStore({ redis: redis().client, queue: p.queue });
    const [a, b, c, purged] = await Promise.all([
      p.deadLetters.replay(ids),
      p.deadLetters.replay([...ids].reverse()),
      alone.replay(ids.slice(0, 10)),
      alone.purge([ids[29]!]),
    ]);
    await alone.close();
    const back = new Map<string, Set<string>>();
    for (const entry of [...a.replayed, ...b.replayed, ...c.replayed])
      back.set(entry.id, (back.get(entry.id) ?? new Set()).add(entry.jobId));
    // Every one went back once (a replay of its own twice, with one id), or was purged first.
    expect(back.size + purged).toBe(30);
    expect([...back.values()].every((jobIds) => jobIds.size === 1)).toBe(true);
    // The one cut short was finished as a job of its own.
    expect([...back.get(ids[0]!)!][0]).toBe(cutShort);

    await p.startWorker({ concurrency: 20 });
    expect(await p.settled(batchId)).toMatchObject({ total: 150, succeeded: 150 - 30 + back.size, deadLettered: purged });
    const badKeys = new Set(p.requestsTo('/bad').map((request) => request.headers['idempotency-key'] as string));
    expect(badKeys.size).toBe(30);
    const sentTwice = [...badKeys].filter((key) => sends.get(key) === 2).length;
    expect(sentTwice).toBe(back.size);
    expect([...badKeys].every((key) => (sends.get(key) ?? 0) <= 2)).toBe(true);
    expect(await p.deadLetters.summary()).toEqual({ total: 0, groups: [] });
  });

  it('POST /v1/dead-letters/replay writes lanes; GET /v1/operations/:id shows a replayed operation queued in its lane, then its run there', async () => {
    const { p, fix } = await failingPipeline();
    const batchId = 'replay-lanes-api';
    const ids = await deadLettered(p, batchId, 30, 10);
    fix();
    await p.worker.close();
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, lanes: true });
    const replayed = await api.call('/v1/dead-letters/replay', { method: 'POST', role: 'admin', json: { ids } });
    expect(replayed.status).toBe(200);
    const { jobIds } = (await replayed.json()) as { jobIds: string[] };
    expect(jobIds).toHaveLength(3);
    expect(jobIds.every((id) => LANE_OP_ID.test(id))).toBe(true);
    const read = async (id: string) => (await (await api.call(`/v1/operations/${id}`, { role: 'read' })).json()) as Record<string, unknown>;
    // Its result line is still the dead letter's run: not this lane's, so the lane's state shows.
    const letter = (await p.results(batchId)).find((line) => line.id === ids[0]);
    expect(letter).toMatchObject({ outcome: 'deadLettered' });
    expect(await read(jobIds[0]!)).toMatchObject({ id: jobIds[0], opId: ids[0], state: 'queued', lane: { index: 0 } });

    await p.startWorker();
    expect(await p.settled(batchId)).toMatchObject({ total: 30, succeeded: 30, deadLettered: 0 });
    expect(await read(jobIds[0]!)).toMatchObject({ id: jobIds[0], opId: ids[0], state: 'succeeded', result: { jobId: jobIds[0] } });
  });

  it('a purge of a dead letter whose replay as a job of its own began and never finished counts it in its batch again', async () => {
    const { p } = await failingPipeline();
    const batchId = 'replay-lanes-purge';
    const ids = await deadLettered(p, batchId, 20, 10);
    const keys = queueKeys(p.queue);
    const begin = defineScript(redis().client, 'begin-replay-3');
    await begin(keys.deadLetters, keys.replaying, keys.batch(batchId), ids[0]!);
    expect(await p.batches.status(batchId)).toMatchObject({ deadLettered: 1, pending: 1 });
    expect(await p.deadLetters.purge(ids)).toBe(2);
    expect(await p.batches.status(batchId)).toMatchObject({ total: 20, succeeded: 18, deadLettered: 2, pending: 0 });
    expect(await redis().client.scard(keys.replaying)).toBe(0);
    expect(await p.deadLetters.summary()).toEqual({ total: 0, groups: [] });
  });
});
