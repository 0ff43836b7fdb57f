import { describe, expect, it } from 'vitest';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';
import type { RecordedRequest } from '../helpers/target-server.js';
import { LANE_OP_ID } from '../../src/queue/lanes.js';
import { startApiServer } from '../helpers/api-server.js';
import { createProducer } from '../../src/queue/producer.js';
import type { SluiceConfig } from '../../src/config/sluice-config.js';
import { queueKeys } from '../../src/redis/keys.js';
import { createLimitsAdmin } from '../../src/limits/limits-admin.js';

const redis = useRedisServer();
const LANES = { lanes: true };

/** The lane of an operation id `l-<24 hex>-<index>`. */
const laneOf = (id: string): string | undefined => /^(l-[0-9a-f]{24})-\d+$/.exec(id)?.[1];

/** The jobs a queue holds by name, in any state BullMQ keeps them. */
async function jobNames(queue: string): Promise<Map<string, number>> {
  const names = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await redis().client.scan(cursor, 'MATCH', `sluice:{${queue}}:*`, 'COUNT', 1_000);
    cursor = next;
    for (const key of keys) {
      if ((await redis().client.type(key)) !== 'hash') continue;
      const name = await redis().client.hget(key, 'name');
      if (name) names.set(name, (names.get(name) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return names;
}

const keysSeen = (requests: RecordedRequest[]) => requests.map((request) => request.headers['idempotency-key'] as string);

describe('lanes', () => {
  it('runs a batch of 1,200 operations as three lanes: each sent once with its own key, result and line', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, { lanes: true, laneSize: 500 });
    const batchId = 'lanes-1';
    const operations = Array.from({ length: 1_200 }, (_, n) => p.op('/lane', { meta: { n } }));
    await p.worker.close();
    const summary = await p.producer.enqueueMany(operations, { batchId });
    expect(summary).toMatchObject({ enqueued: 1_200, duplicates: 0 });
    expect(summary.results.every((result) => LANE_OP_ID.test(result.id))).toBe(true);
    // 1,200 operations in chunks of 500: lanes of 500, 500 and 200, and no job per operation.
    expect(await jobNames(p.queue)).toEqual(new Map([['lane', 3]]));
    await p.startWorker({ concurrency: 20 });

    expect(await p.settled(batchId, 30_000)).toMatchObject({ total: 1_200, succeeded: 1_200, deadLettered: 0, retries: 0 });
    const keys = keysSeen(p.requestsTo('/lane'));
    expect(keys).toHaveLength(1_200);
    expect(new Set(keys).size).toBe(1_200);
    const lines = await p.results(batchId);
    expect(lines).toHaveLength(1_200);
    const ids = new Set(summary.results.map((result) => result.id));
    for (const line of lines) {
      expect(ids.has(line.id)).toBe(true);
      expect(line).toMatchObject({ jobId: line.id, idempotencyKey: `sluice-${line.id}`, outcome: 'succeeded', attempts: 1 });
    }
    expect(new Set(lines.map((line) => (line.meta as { n: number }).n)).size).toBe(1_200);
    // A lane does not run all its operations at once: the worker's concurrency holds.
    expect(p.target.maxInFlight).toBeLessThanOrEqual(20);
  });

  it('dead-letters a 422 alone, retries a 503 alone as a job of its own, succeeds the rest once; the dead letters replay', async () => {
    const p = await startPipeline(redis(), { concurrency: 10 }, LANES);
    const seen = new Map<string, number>();
    let fixed = false;
    p.target.setDefault((request) => {
      const key = request.headers['idempotency-key'] as string;
      const count = (seen.get(key) ?? 0) + 1;
      seen.set(key, count);
      if (request.path === '/bad' && !fixed) return { status: 422, json: { error: 'invalid' } };
      if (request.path === '/flaky' && count === 1) return { status: 503, body: 'busy' };
      return { status: 200, json: { ok: true } };
    });
    // Enqueued before a worker runs, so that the lane is seen whole.
    await p.worker.close();
    const batchId = 'lanes-mixed';
    const paths = Array.from({ length: 60 }, (_, n) => (n % 10 === 3 ? '/bad' : n % 10 === 7 ? '/flaky' : '/ok'));
    // One limit key for all (the target's URL): one lane.
    const summary = await p.producer.enqueueMany(
      paths.map((path, n) => p.op(path, { meta: { n } })),
      { batchId },
    );
    expect(await jobNames(p.queue)).toEqual(new Map([['lane', 1]]));
    await p.startWorker({ concurrency: 10 });

    expect(await p.settled(batchId)).toMatchObject({ total: 60, succeeded: 54, deadLettered: 6, retries: 6 });
    expect(p.requestsTo('/ok')).toHaveLength(48);
    expect(new Set(keysSeen(p.requestsTo('/ok'))).size).toBe(48);
    // Each 503 sent twice with the same key: the retry left the lane as a job named after the operation.
    expect(p.requestsTo('/flaky')).toHaveLength(12);
    expect(new Set(keysSeen(p.requestsTo('/flaky'))).size).toBe(6);
    const names = await jobNames(p.queue);
    expect(names.get('lane')).toBe(1);
    expect(names.get('op')).toBe(6);
    expect(p.requestsTo('/bad')).toHaveLength(6);

    const lines = await p.results(batchId);
    const byN = new Map(lines.map((line) => [(line.meta as { n: number }).n, line]));
    expect(byN.get(7)).toMatchObject({ outcome: 'succeeded', attempts: 2, id: summary.results[7]!.id });
    expect(byN.get(3)).toMatchObject({ outcome: 'deadLettered', id: summary.results[3]!.id });
    const letters = await p.deadLetters.list({ batchId });
    expect(letters.map((letter) => letter.id).sort()).toEqual([3, 13, 23, 33, 43, 53].map((n) => summary.results[n]!.id).sort());
    expect(letters.every((letter) => letter.reason === 'permanent-status')).toBe(true);

    fixed = true;
    const replay = await p.deadLetters.replay(letters.map((letter) => letter.id));
    expect(replay.replayed).toHaveLength(6);
    // Back as one lane (the producer writes lanes): one job for the six.
    expect(new Set(replay.replayed.map((entry) => LANE_OP_ID.exec(entry.jobId)?.[1])).size).toBe(1);
    expect((await jobNames(p.queue)).get('lane')).toBe(2);
    expect(await p.settled(batchId)).toMatchObject({ total: 60, succeeded: 60, deadLettered: 0 });
    // Replayed with the key it had in its lane.
    expect(keysSeen(p.requestsTo('/bad')).filter((key) => key === `sluice-${summary.results[3]!.id}`)).toHaveLength(2);
  });

  it('keeps each key once: a key repeated in a lane, and a key already held by a single job, are duplicates', async () => {
    const p = await startPipeline(redis(), {}, LANES);
    await p.worker.close();
    const single = await p.producer.enqueue(p.op('/dup', { idempotencyKey: 'k-held' }), { batchId: 'dup-a' });
    const operations = [
      p.op('/dup', { idempotencyKey: 'k-1' }),
      p.op('/dup', { idempotencyKey: 'k-held' }),
      p.op('/dup', { idempotencyKey: 'k-2' }),
      p.op('/dup', { idempotencyKey: 'k-1' }),
    ];
    const summary = await p.producer.enqueueMany(operations, { batchId: 'dup-b' });
    expect(summary).toMatchObject({ enqueued: 2, duplicates: 2 });
    expect(summary.results[1]).toEqual({ id: single.id, duplicate: true });
    expect(summary.results[3]).toEqual({ id: summary.results[0]!.id, duplicate: true });
    await p.startWorker();
    expect(await p.settled('dup-b')).toMatchObject({ total: 2, succeeded: 2 });
    await p.settled('dup-a');
    expect(keysSeen(p.requestsTo('/dup')).sort()).toEqual(['k-1', 'k-2', 'k-held']);
  });

  it('a duplicate left out of a lane keeps its place empty: every id the enqueue gave names its own operation, its dead letter and its replay', async () => {
    const p = await startPipeline(redis(), {}, LANES);
    await p.worker.close();
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, lanes: true });
    // [a, a again, c (fails: 422), held by another batch, e (fails: 422)]: two members left out, before c and e.
    await p.producer.enqueue(p.op('/gap', { idempotencyKey: 'gap-held' }), { batchId: 'gap-other' });
    p.target.setDefault((request) => ({ status: request.headers['idempotency-key']?.toString().endsWith('-fails') ? 422 : 200 }));
    const summary = await p.producer.enqueueMany(
      [
        p.op('/gap', { idempotencyKey: 'gap-a', meta: { name: 'a' } }),
        p.op('/gap', { idempotencyKey: 'gap-a', meta: { name: 'a again' } }),
        p.op('/gap', { idempotencyKey: 'gap-c-fails', meta: { name: 'c' } }),
        p.op('/gap', { idempotencyKey: 'gap-held', meta: { name: 'held' } }),
        p.op('/gap', { idempotencyKey: 'gap-e-fails', meta: { name: 'e' } }),
      ],
      { batchId: 'gap' },
    );
    expect(summary).toMatchObject({ enqueued: 3, duplicates: 2 });
    const [a, , c, , e] = summary.results.map((result) => result.id);
    const read = async (id: string) => {
      const response = await api.call(`/v1/operations/${id}`, { role: 'read' });
      return {
        status: response.status,
        body: (await response.json()) as { state?: string; createdAt?: string | null; operation?: { meta?: { name?: string } } },
      };
    };
    // Queued: each id reads as its own operation; the empty places are no operation.
    for (const [id, name] of [
      [a, 'a'],
      [c, 'c'],
      [e, 'e'],
    ] as const)
      expect((await read(id!)).body.operation?.meta).toEqual({ name });
    const lane = LANE_OP_ID.exec(a!)![1]!;
    // Written with its empty places, as the version that has them (a worker before it leaves the lane alone).
    const data = JSON.parse((await redis().client.hget(`sluice:{${p.queue}}:${lane}`, 'data'))!) as { v: number; ops: unknown[] };
    expect(data.v).toBe(2);
    expect(data.ops.map((item) => item === null)).toEqual([false, true, false, true, false]);
    expect((await read(`${lane}-1`)).status).toBe(404);
    expect((await read(`${lane}-3`)).status).toBe(404);

    await p.startWorker();
    expect(await p.settled('gap')).toMatchObject({ total: 3, succeeded: 1, deadLettered: 2 });
    await p.settled('gap-other');
    // Each result line and dead letter under the id the enqueue gave (the key held by another batch is listed as its duplicate).
    const lines = await p.results('gap');
    expect(lines.filter((line) => line.outcome === 'duplicate')).toHaveLength(1);
    const ran = lines.filter((line) => line.outcome !== 'duplicate');
    expect(ran.map((line) => [line.id, line.jobId, line.outcome]).sort()).toEqual(
      [
        [a, a, 'succeeded'],
        [c, c, 'deadLettered'],
        [e, e, 'deadLettered'],
      ].sort(),
    );
    expect((await p.deadLetters.get(c!))?.operation).toMatchObject({ meta: { name: 'c' } });
    expect((await p.deadLetters.get(e!))?.operation).toMatchObject({ meta: { name: 'e' } });
    // A dead-lettered operation of a lane says when it was enqueued, as one that succeeded in it does (its lane's time).
    const [readA, readC] = [(await read(a!)).body, (await read(c!)).body];
    expect(readC).toMatchObject({ state: 'dead-lettered', createdAt: readA.createdAt });
    expect(readA.createdAt).toEqual(expect.any(String));
    // A replay by the id the enqueue gave sends that operation again, and no other.
    p.target.setDefault(() => ({ status: 200 }));
    expect(await p.deadLetters.replay([e!])).toMatchObject({ replayed: [{ id: e }], missing: [] });
    await waitFor(async () => (await p.batches.status('gap'))?.succeeded === 2, { what: 'the replay of e' });
    expect(keysSeen(p.requestsTo('/gap')).sort()).toEqual(['gap-a', 'gap-c-fails', 'gap-e-fails', 'gap-e-fails', 'gap-held']);
    // Its run in the lane ended dead-lettered (its line is the replay's now); the replay's job succeeded.
    expect((await read(e!)).body.state).toBe('dead-lettered');
    const replayedLine = (await p.results('gap')).find((line) => line.id === e);
    expect(replayedLine).toMatchObject({ outcome: 'succeeded' });
    expect(replayedLine!.jobId).not.toBe(e);
    expect((await p.deadLetters.get(c!))?.operation).toMatchObject({ meta: { name: 'c' } });
  });

  it("a lane with duplicates left out hands its line tickets back: the key's line is empty once the batch is done", async () => {
    const config = { targets: {}, limits: { 'gap-line': { requestsPerSecond: 200 } } } as unknown as SluiceConfig;
    const p = await startPipeline(redis(), { config }, LANES);
    await p.worker.close();
    // Every fifth a repeat of the key before it: 40 left out of lanes of 200.
    const operations = Array.from({ length: 200 }, (_, n) =>
      p.op('/gap-line', { limitKey: 'gap-line', idempotencyKey: `gap-line-${n % 5 === 4 ? n - 1 : n}` }),
    );
    expect(await p.producer.enqueueMany(operations, { batchId: 'gap-line' })).toMatchObject({ enqueued: 160, duplicates: 40 });
    await p.startWorker({ concurrency: 20 });
    expect(await p.settled('gap-line', 20_000)).toMatchObject({ total: 160, succeeded: 160 });
    // Each operation's ticket was used by the operation its id names, or given back: none is left to hold up the line.
    await waitFor(async () => (await redis().client.zcard('sluice:{limits:gap-line}:line:gap-line')) === 0, { what: 'the line to empty' });
  });

  it("a lane whose key is paused does not hold up the worker's other jobs: they are fetched and run while it waits", async () => {
    const config = { targets: {}, limits: { held: { requestsPerSecond: 100 } } } as unknown as SluiceConfig;
    const p = await startPipeline(redis(), { config, concurrency: 5 }, { lanes: true, laneSize: 20 });
    const admin = createLimitsAdmin({ redis: redis().client, config: p.config });
    await admin.pause('held');
    // One lane of 20 on the paused key: its first operations take every permit of the worker, and
    // the fetch gate stops BullMQ fetching until they give them back.
    await p.producer.enqueueMany(
      Array.from({ length: 20 }, (_, n) => p.op('/held', { limitKey: 'held', meta: { n } })),
      { batchId: 'held' },
    );
    await waitFor(async () => (await redis().client.llen(`sluice:{${p.queue}}:active`)) === 1, { what: 'the lane to be taken' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Jobs of another key, enqueued while the key stays paused, run.
    for (let n = 0; n < 3; n++) await p.producer.enqueue(p.op('/free', { meta: { n } }), { batchId: 'free' });
    expect(await p.settled('free', 10_000)).toMatchObject({ total: 3, succeeded: 3 });
    expect(p.requestsTo('/held')).toHaveLength(0);
    await admin.resume('held');
    expect(await p.settled('held', 20_000)).toMatchObject({ total: 20, succeeded: 20 });
  });

  it('a lane of a format newer than this worker knows waits for a newer worker, sent nowhere and not dead-lettered', async () => {
    const p = await startPipeline(redis(), {}, LANES);
    const queue = p.bullQueue();
    await queue.add(
      'lane',
      { v: 3, lane: 'l-00000000000000000000000f', batchId: 'b-newer', ops: [{ op: p.op('/newer') }] },
      { jobId: 'l-00000000000000000000000f' },
    );
    await waitFor(async () => (await queue.getJobState('l-00000000000000000000000f')) === 'delayed', {
      what: 'the lane to be left for later',
    });
    expect(p.requestsTo('/newer')).toHaveLength(0);
    expect(await p.deadLetters.count()).toBe(0);
  });

  it('a resumable input enqueued again after its lanes would be cut otherwise (a limit change) adds nothing: each operation is sent once', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, { lanes: true, laneSize: 50 });
    await p.worker.close();
    const batchId = 'lanes-resumed';
    // Two chunks (of 500 and 200), in lanes of 50.
    const input = Array.from({ length: 700 }, (_, n) => p.op('/resumed', { meta: { n } }));
    const first = await p.producer.enqueueMany(input, { batchId, resumable: true });
    expect(first).toMatchObject({ enqueued: 700, alreadyEnqueued: 0 });
    expect(await jobNames(p.queue)).toEqual(new Map([['lane', 14]]));

    // Lanes of 70 now: the same chunks would be packed into other lanes, with other ids.
    const repacking = createProducer({ connection: redis().url, queue: p.queue, config: p.config, lanes: true, laneSize: 70 });
    const index = queueKeys(p.queue).batchPlaces(batchId);
    await redis().client.expire(index, 30);
    try {
      const again = await repacking.enqueueMany(input, { batchId, resumable: true });
      expect(again).toMatchObject({ enqueued: 0, alreadyEnqueued: 700 });
      // Answered by its chunk marks, the run renews the batch's index of places as a writing one does.
      expect(await redis().client.ttl(index)).toBeGreaterThan(30);
      // Each answered with the id its first run gave it.
      expect(again.results.map((result) => result.id)).toEqual(first.results.map((result) => result.id));
      expect(await jobNames(p.queue)).toEqual(new Map([['lane', 14]]));

      await p.startWorker({ concurrency: 20 });
      expect(await p.settled(batchId, 30_000)).toMatchObject({ total: 700, succeeded: 700, deadLettered: 0 });
      // And once more after they ran (within the dedup window): still nothing added, nothing sent again.
      expect(await repacking.enqueueMany(input, { batchId, resumable: true })).toMatchObject({ enqueued: 0, alreadyEnqueued: 700 });
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(await p.batches.status(batchId)).toMatchObject({ total: 700, succeeded: 700 });
    } finally {
      await repacking.close();
    }
    const keys = keysSeen(p.requestsTo('/resumed'));
    expect(keys).toHaveLength(700);
    expect(new Set(keys).size).toBe(700);
  });

  it('a resumable input that ran is found by its lines whatever packed it: enqueued again with lanes off, or in other lanes after the window, it adds nothing', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, { lanes: true, laneSize: 50 });
    const batchId = 'lanes-placed';
    const input = Array.from({ length: 300 }, (_, n) => p.op('/placed', { meta: { n } }));
    const producer = (options: { lanes: boolean; laneSize?: number }) =>
      createProducer({ connection: redis().url, queue: p.queue, config: p.config, dedupWindowSeconds: 1, ...options });
    const first = producer({ lanes: true, laneSize: 50 });
    try {
      expect(await first.enqueueMany(input, { batchId, resumable: true })).toMatchObject({ enqueued: 300 });
    } finally {
      await first.close();
    }
    expect(await p.settled(batchId, 20_000)).toMatchObject({ total: 300, succeeded: 300 });
    // Past the window: no chunk mark answers; the lines' results do.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // Each line's result is under the id its single job would have: its place.
    expect((await p.results(batchId)).every((line) => /^p-[0-9a-f]{40}$/.test(line.id))).toBe(true);
    for (const options of [{ lanes: true, laneSize: 70 }, { lanes: false }]) {
      const again = producer(options);
      try {
        expect(await again.enqueueMany(input, { batchId, resumable: true })).toMatchObject({ enqueued: 0, alreadyEnqueued: 300 });
      } finally {
        await again.close();
      }
    }
    expect(await p.batches.status(batchId)).toMatchObject({ total: 300, succeeded: 300 });
    expect(new Set(keysSeen(p.requestsTo('/placed'))).size).toBe(300);
    expect(p.requestsTo('/placed')).toHaveLength(300);
  });

  it('a resumable input written as jobs of their own (lanes off, an enqueue cut short) and enqueued again with lanes on adds nothing', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, LANES);
    await p.worker.close();
    const batchId = 'lanes-switched';
    const input = Array.from({ length: 120 }, (_, n) => p.op('/switched', { meta: { n } }));
    const off = createProducer({ connection: redis().url, queue: p.queue, config: p.config, lanes: false });
    const on = createProducer({ connection: redis().url, queue: p.queue, config: p.config, lanes: true, laneSize: 50 });
    try {
      const first = await off.enqueueMany(input.slice(0, 80), { batchId, resumable: true });
      expect(first).toMatchObject({ enqueued: 80 });
      // The whole input with lanes on: the 80 queued as jobs of their own are answered by their ids, the rest added.
      const again = await on.enqueueMany(input, { batchId, resumable: true });
      expect(again).toMatchObject({ enqueued: 40, alreadyEnqueued: 80 });
      expect(again.results.slice(0, 80).map((result) => result.id)).toEqual(first.results.map((result) => result.id));
      expect(again.results.slice(80).every((result) => LANE_OP_ID.test(result.id))).toBe(true);
    } finally {
      await off.close();
      await on.close();
    }
    await p.startWorker({ concurrency: 20 });
    expect(await p.settled(batchId, 20_000)).toMatchObject({ total: 120, succeeded: 120 });
    expect(p.requestsTo('/switched')).toHaveLength(120);
    expect(new Set(keysSeen(p.requestsTo('/switched'))).size).toBe(120);
  });

  it('a batch given by id is checked line by line for jobs of their own, even after its hash and index expired; only a batch made for the enqueue is not', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, LANES);
    await p.worker.close();
    const keys = queueKeys(p.queue);
    const input = Array.from({ length: 120 }, (_, n) => p.op('/given', { meta: { n } }));
    const off = createProducer({ connection: redis().url, queue: p.queue, config: p.config, lanes: false });
    const on = createProducer({ connection: redis().url, queue: p.queue, config: p.config, lanes: true, laneSize: 50 });
    // Each look for a line's job of its own (p-<place>), as Redis runs it.
    const monitor = await redis().client.monitor();
    let looks = 0;
    const marks = new Set<string>();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'exists' && args[1]?.startsWith(`sluice:{${p.queue}}:p-`)) looks += 1;
      if (args[0]?.toLowerCase() === 'get' && args[1]?.startsWith('test-mark:')) marks.add(args[1]);
    });
    // The monitor lags behind Redis: a command sent now and seen there means all before it were seen too.
    const caughtUp = async (mark: string) => {
      await redis().client.get(`test-mark:${mark}`);
      await waitFor(() => marks.has(`test-mark:${mark}`), { what: `the monitor to see ${mark}` });
    };
    try {
      // Lines 0-79 queued as jobs of their own; the batch's hash and index then expire while they wait.
      expect(await off.enqueueMany(input.slice(0, 80), { batchId: 'given', resumable: true })).toMatchObject({ enqueued: 80 });
      await redis().client.del(keys.batch('given'), keys.batchPlaces('given'));
      // The whole input again, in lanes: the 80 are found by their jobs, only 80-119 are added.
      const again = await on.enqueueMany(input, { batchId: 'given', resumable: true });
      expect(again).toMatchObject({ enqueued: 40, alreadyEnqueued: 80 });
      await caughtUp('given');
      expect(looks).toBeGreaterThanOrEqual(80);
      // A batch made for the enqueue: its places are new, so no line looks for a job of its own.
      looks = 0;
      const made = await on.enqueueMany(input, { resumable: true });
      expect(made).toMatchObject({ enqueued: 120 });
      await caughtUp('made');
      expect(looks).toBe(0);
      await p.startWorker({ concurrency: 20 });
      expect(await p.settled(made.batchId, 20_000)).toMatchObject({ total: 120, succeeded: 120 });
      // (The expired hash's total of 80 is gone: the batch counts the 40 added since, and every outcome.)
      await waitFor(async () => (await p.batches.status('given'))?.succeeded === 120, { what: "the given batch's 120 outcomes" });
    } finally {
      await off.close();
      await on.close();
      monitor.disconnect();
    }
    // Each line of each batch sent once.
    expect(p.requestsTo('/given')).toHaveLength(240);
    expect(new Set(keysSeen(p.requestsTo('/given'))).size).toBe(240);
  });

  it('a resumable input still queued in lanes is found by its places however it is packed again: a fixed line that moves the chunks, other lanes past the window, lanes off', async () => {
    const p = await startPipeline(redis(), { concurrency: 20 }, LANES);
    await p.worker.close();
    const batchId = 'lanes-queued-repacked';
    // Every 25th line has a key of its own, and the last repeats line 0's; each line's position is
    // its line number, as the CLI gives it.
    const keyOf = (n: number) => (n === 299 ? 'line-0' : n % 25 === 0 ? `line-${n}` : undefined);
    const input = Array.from({ length: 300 }, (_, n) =>
      p.op('/repacked', { meta: { n }, ...(keyOf(n) ? { idempotencyKey: keyOf(n) } : {}) }),
    );
    const resumable = { positionOf: (operation: unknown) => (operation as { meta: { n: number } }).meta.n };
    const producer = (options: { lanes: boolean; laneSize?: number }) =>
      createProducer({ connection: redis().url, queue: p.queue, config: p.config, dedupWindowSeconds: 1, ...options });
    const run = async (options: { lanes: boolean; laneSize?: number }, operations: unknown[]) => {
      const again = producer(options);
      try {
        return await again.enqueueMany(operations, { batchId, resumable });
      } finally {
        await again.close();
      }
    };
    // Line 10 left out (skipped as invalid, say): the chunk and every lane after it are cut otherwise once it is back.
    const first = await run(
      { lanes: true, laneSize: 50 },
      input.filter((_, n) => n !== 10),
    );
    expect(first).toMatchObject({ enqueued: 298, duplicates: 1 });
    const fixed = await run({ lanes: true, laneSize: 50 }, input);
    // The repeated key's line too is as the first run left it (listed as a duplicate in the batch): already enqueued.
    expect(fixed).toMatchObject({ enqueued: 1, alreadyEnqueued: 299, duplicates: 0 });
    // A line of a key of its own is answered with the id it was given; one without, with its operation id (its place's).
    const firstIds = new Map(first.results.map((result, i) => [i < 10 ? i : i + 1, result.id]));
    fixed.results.forEach((result, n) => {
      if (n === 10) expect(result.alreadyEnqueued).toBeFalsy();
      else if (n === 299) expect(result).toMatchObject({ id: firstIds.get(0), duplicate: false, alreadyEnqueued: true });
      else if (n % 25 === 0) expect(result.id).toBe(firstIds.get(n));
      else expect(result.id).toMatch(/^p-[0-9a-f]{40}$/);
    });

    // Past the window (no chunk or key mark holds): other lanes, then lanes off, find each line
    // queued in its lane, and the repeated key counted as a duplicate the first time is not added.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const index = queueKeys(p.queue).batchPlaces(batchId);
    for (const options of [{ lanes: true, laneSize: 70 }, { lanes: false }]) {
      // A run that adds nothing renews the index too (a batch held back past its retention keeps it).
      await redis().client.expire(index, 30);
      const again = await run(options, input);
      expect(await redis().client.ttl(index)).toBeGreaterThan(30);
      expect(again).toMatchObject({ enqueued: 0, alreadyEnqueued: 300 });
      again.results.forEach((result, n) => {
        if (keyOf(n)) expect(result.id).toBe(firstIds.get(n === 299 ? 0 : n));
      });
    }
    // The index: a part per 64 lines (300 lines: 5), each entry `;` and 16 hex digits, and `=<id>` for a keyed line in a lane.
    expect(await redis().client.hlen(index)).toBe(5);
    const first64 = (await redis().client.hget(index, '0'))!;
    expect(first64.split(';').slice(1)).toHaveLength(64);
    expect(first64).toContain(`=${firstIds.get(25)}`);
    expect(await redis().client.ttl(index)).toBeGreaterThan(0);

    // Outcomes renew the index with the batch's results: it lasts as long as the batch runs.
    await redis().client.expire(index, 30);
    await p.startWorker({ concurrency: 20 });
    expect(await p.settled(batchId, 20_000)).toMatchObject({ total: 299, succeeded: 299, deadLettered: 0 });
    expect(await redis().client.ttl(index)).toBeGreaterThan(30);
    expect(p.requestsTo('/repacked')).toHaveLength(299);
    expect(new Set(keysSeen(p.requestsTo('/repacked'))).size).toBe(299);
  });

  it('a worker takes one lane at a time, even when it finds several waiting: a second worker gets the others', async () => {
    const p = await startPipeline(redis(), {}, { lanes: true, laneSize: 50 });
    await p.worker.close();
    p.target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 100 }));
    const batchId = 'lanes-shared';
    await p.producer.enqueueMany(
      Array.from({ length: 300 }, (_, n) => p.op('/shared', { meta: { n } })),
      { batchId },
    );
    expect(await jobNames(p.queue)).toEqual(new Map([['lane', 6]]));
    await p.startWorker({ concurrency: 10 });
    await waitFor(() => p.target.inFlight() >= 10, { what: 'the first lane under way' });
    // BullMQ fetches several jobs in a row before it starts any: unless the fetch gate counts the
    // jobs fetched, the worker takes every lane waiting (6 here). It holds the lane it runs and at
    // most one more, fetched before the first had taken its permits, waiting for them.
    expect(await redis().client.llen(`sluice:{${p.queue}}:active`)).toBeLessThanOrEqual(2);
    await p.startWorker({ concurrency: 10 });
    await waitFor(() => p.target.inFlight() > 10, { what: 'a lane under way on the second worker' });
    expect(await p.settled(batchId, 30_000)).toMatchObject({ total: 300, succeeded: 300 });
    expect(new Set(keysSeen(p.requestsTo('/shared'))).size).toBe(300);
  });

  it('a worker stopping mid-lane hands the rest back; the next sends each operation once', async () => {
    const p = await startPipeline(redis(), { concurrency: 4 }, LANES);
    p.target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 40 }));
    const batchId = 'lanes-stop';
    await p.producer.enqueueMany(
      Array.from({ length: 200 }, (_, n) => p.op('/slow', { meta: { n } })),
      { batchId },
    );
    await waitFor(() => p.requestsTo('/slow').length >= 20, { what: 'the lane to be under way' });
    await p.worker.close();
    const sentByFirst = p.requestsTo('/slow').length;
    expect(sentByFirst).toBeLessThan(200);
    await p.startWorker({ concurrency: 8 });
    expect(await p.settled(batchId, 30_000)).toMatchObject({ total: 200, succeeded: 200 });
    const keys = keysSeen(p.requestsTo('/slow'));
    expect(keys).toHaveLength(200);
    expect(new Set(keys).size).toBe(200);
  });

  it('GET /v1/operations/:id finds an operation in its lane: queued with the lane, then succeeded with its result line; 404 past the lane', async () => {
    const p = await startPipeline(redis(), {}, LANES);
    await p.worker.close();
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, lanes: true });
    const posted = await api.call('/v1/operations?batch=lane-api', {
      method: 'POST',
      role: 'enqueue',
      json: [p.op('/api', { meta: { row: 1 } }), p.op('/api', { meta: { row: 2 } })],
    });
    expect(posted.status).toBe(202);
    const ids = ((await posted.json()) as { ids: string[] }).ids;
    expect(ids.every((id) => LANE_OP_ID.test(id))).toBe(true);
    const read = async (id: string) => {
      const response = await api.call(`/v1/operations/${id}`, { role: 'read' });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const queued = await read(ids[1]!);
    expect(queued).toMatchObject({
      status: 200,
      body: { id: ids[1], state: 'queued', batchId: 'lane-api', idempotencyKey: `sluice-${ids[1]}`, lane: { index: 1 } },
    });
    expect((queued.body['operation'] as { meta: unknown }).meta).toEqual({ row: 2 });
    expect(queued.body['finishedAt']).toBeNull();

    await p.startWorker();
    await p.settled('lane-api');
    const done = await read(ids[1]!);
    expect(done.body).toMatchObject({ state: 'succeeded', result: { outcome: 'succeeded', status: 200, meta: { row: 2 } } });
    // When it ended: its result line says (not its lane's end).
    const line = done.body['result'] as { finishedAt: string };
    expect(done.body['finishedAt']).toBe(line.finishedAt);
    expect(Date.parse(line.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.body['createdAt'] as string));
    const lane = (done.body['lane'] as { id: string }).id;
    expect((await read(`${lane}-2`)).status).toBe(404);
    // One id per place: a leading zero names none.
    expect((await read(`${lane}-01`)).status).toBe(404);
  });

  it('GET /v1/operations/:id: an operation dead-lettered in its lane and replayed while the lane still runs reads dead-lettered, not active', async () => {
    const p = await startPipeline(redis(), {}, LANES);
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, lanes: true });
    p.target.script('POST /bad', [{ status: 400 }, { status: 201 }]);
    p.target.script('POST /slow', [{ status: 200, delayMs: 4_000 }]);
    const { results } = await p.producer.enqueueMany([p.op('/bad'), p.op('/slow')], { batchId: 'lane-replayed' });
    const [bad, slow] = results.map((result) => result.id) as [string, string];
    expect(laneOf(bad)).toBe(laneOf(slow));
    await waitFor(() => p.deadLetters.get(bad), { what: 'the dead letter' });
    const replayed = await p.deadLetters.replay([bad]);
    expect(replayed.replayed).toHaveLength(1);
    await waitFor(async () => (await p.batches.status('lane-replayed'))?.succeeded === 1, { what: 'the replay to succeed' });
    const read = async (id: string) => (await (await api.call(`/v1/operations/${id}`, { role: 'read' })).json()) as Record<string, unknown>;
    // The lane is still running its slow operation: this run of the first one ended dead-lettered, and was replayed since.
    expect(await read(slow)).toMatchObject({ state: 'active' });
    expect(await read(bad)).toMatchObject({ state: 'dead-lettered', lane: { index: 0 } });
    expect(await p.settled('lane-replayed')).toMatchObject({ total: 2, succeeded: 2, deadLettered: 0 });
    expect(await read(bad)).toMatchObject({ state: 'dead-lettered' });
  });

  it("a worker that loses a lane's lock (another worker took it) stops starting its operations", async () => {
    const p = await startPipeline(redis(), { concurrency: 4, lockDurationMs: 1_000 }, { lanes: true, laneSize: 500 });
    p.target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 50 }));
    const { results } = await p.producer.enqueueMany(
      Array.from({ length: 300 }, (_, n) => p.op('/locked', { meta: { n } })),
      { batchId: 'lanes-lock' },
    );
    const lane = /^(l-[0-9a-f]{24})-/.exec(results[0]!.id)![1]!;
    await waitFor(() => p.requestsTo('/locked').length >= 12, { what: 'the lane to be under way' });
    // As the stalled-job check does when it gives the lane to another worker: the lock is someone else's.
    await redis().client.set(`sluice:{${p.queue}}:${lane}:lock`, 'another-worker', 'PX', 60_000);
    // BullMQ renews locks every half lock duration; the renewal that fails stops the lane.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const atStop = p.requestsTo('/locked').length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // At most the operations in flight when it stopped (its 4 permits) arrive after.
    expect(p.requestsTo('/locked').length - atStop).toBeLessThanOrEqual(4);
    expect(p.requestsTo('/locked').length).toBeLessThan(300);
  });
});
