/**
 * The producer's one-call chunk add (src/queue/add-jobs.ts) against BullMQ's own `queue.add` with
 * the same options, on a real redis-server: the same job hash, events, counters and marker, and a
 * real BullMQ worker takes both kinds of job in the order they were added.
 */
import { Queue, Worker } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createJobAdder } from '../../src/queue/add-jobs.js';
import { NEW_JOB_PRIORITY } from '../../src/queue/job-data.js';
import { PREFIX, bullQueueName, sha256 } from '../../src/redis/keys.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

function openQueue() {
  const client = createRedisConnection(redis().url, { name: 'test:add-jobs', maxRetriesPerRequest: null });
  const queue = new Queue(bullQueueName(uniqueQueue('add')), { connection: client, prefix: PREFIX });
  onTestFinished(async () => {
    await queue.close();
    await closeRedis(client);
  });
  return { client, queue, add: createJobAdder(client, queue, 'op', NEW_JOB_PRIORITY) };
}

/** A job hash without the field that differs by the clock. */
async function storedJob(queue: Queue, id: string): Promise<Record<string, string>> {
  const { timestamp, ...rest } = await redis().client.hgetall(queue.toKey(id));
  expect(Number(timestamp)).toBeGreaterThan(Date.now() - 60_000);
  return rest;
}

async function eventsOf(queue: Queue, id: string): Promise<string[][]> {
  const entries = await redis().client.xrange(queue.keys.events!, '-', '+');
  return entries
    .map(([, fields]) => fields)
    .filter((fields) => fields.includes(id))
    .map((fields) => fields.filter((field) => field !== id));
}

describe('adding a chunk of jobs in one call', () => {
  it('writes each job as BullMQ queue.add does: hash, prioritized score, events, marker', async () => {
    const { queue, add } = openQueue();
    const data = { op: { method: 'GET', url: 'https://example.com/x' }, opId: 'u-1' };
    await queue.add('op', data, { jobId: 'by-bullmq', priority: NEW_JOB_PRIORITY });
    expect(await add([{ id: 'by-sluice', data }])).toEqual([true]);

    const ours = await storedJob(queue, 'by-sluice');
    const theirs = await storedJob(queue, 'by-bullmq');
    expect({ ...ours, opts: JSON.parse(ours.opts!) }).toEqual({ ...theirs, opts: { ...JSON.parse(theirs.opts!), jobId: 'by-sluice' } });
    expect(await eventsOf(queue, 'by-sluice')).toEqual(await eventsOf(queue, 'by-bullmq'));

    // Scores from the same counter: FIFO within the priority, one after the other.
    const scores = await redis().client.zrange(queue.keys.prioritized!, 0, -1, 'WITHSCORES');
    expect(scores).toEqual(['by-bullmq', String(NEW_JOB_PRIORITY * 2 ** 32 + 1), 'by-sluice', String(NEW_JOB_PRIORITY * 2 ** 32 + 2)]);
    expect(await redis().client.zscore(queue.keys.marker!, '0')).toBe('0');

    // Read back by BullMQ itself.
    const job = await queue.getJob('by-sluice');
    expect(job?.data).toEqual(data);
    expect(job?.priority).toBe(NEW_JOB_PRIORITY);
    expect(job?.opts.jobId).toBe('by-sluice');
    expect(await queue.getJobCounts('prioritized')).toEqual({ prioritized: 2 });
  });

  it('writes a job given a delay (far back in its line) as queue.add does a delayed job: priority 0, the delayed set, the marker', async () => {
    const { queue, add } = openQueue();
    const data = { op: { method: 'GET', url: 'https://example.com/x' }, opId: 'u-2' };
    await queue.add('op', data, { jobId: 'late-bullmq', delay: 60_000 });
    expect(await add([{ id: 'late-sluice', data, delayMs: 60_000 }])).toEqual([true]);

    const ours = await storedJob(queue, 'late-sluice');
    const theirs = await storedJob(queue, 'late-bullmq');
    expect({ ...ours, opts: JSON.parse(ours.opts!) }).toEqual({ ...theirs, opts: { ...JSON.parse(theirs.opts!), jobId: 'late-sluice' } });
    const strip = (events: string[][]) => events.map((fields) => fields.filter((field) => !/^\d{13}$/.test(field)));
    expect(strip(await eventsOf(queue, 'late-sluice'))).toEqual(strip(await eventsOf(queue, 'late-bullmq')));
    // Due a minute from now, in BullMQ's delayed score (due time × 4096 + a counter); the marker names the first due.
    const scores = await redis().client.zrange(queue.keys.delayed!, 0, -1, 'WITHSCORES');
    expect(scores.filter((_, i) => i % 2 === 0).sort()).toEqual(['late-bullmq', 'late-sluice']);
    for (let i = 1; i < scores.length; i += 2) expect(Math.floor(Number(scores[i]) / 0x1000)).toBeGreaterThan(Date.now() + 55_000);
    expect(Number(await redis().client.zscore(queue.keys.marker!, '1'))).toBeGreaterThan(Date.now() + 55_000);
    expect(await queue.getJobCounts('delayed', 'prioritized', 'wait')).toEqual({ delayed: 2, prioritized: 0, wait: 0 });
    const job = await queue.getJob('late-sluice');
    expect(job?.delay).toBe(60_000);
    expect(await job?.getState()).toBe('delayed');
  });

  it('leaves a job whose id exists as it is, and says so', async () => {
    const { queue, add } = openQueue();
    await add([{ id: 'same', data: { v: 1 } }]);
    expect(
      await add([
        { id: 'same', data: { v: 2 } },
        { id: 'other', data: { v: 3 } },
      ]),
    ).toEqual([false, true]);
    expect((await queue.getJob('same'))?.data).toEqual({ v: 1 });
    expect(await queue.getJobCounts('prioritized')).toEqual({ prioritized: 2 });
  });

  it("claims a chunk's mark with its jobs: the chunk written again, packed otherwise, adds nothing and answers with the ids it gave", async () => {
    const { queue, add } = openQueue();
    const mark = queue.toKey('chunk-mark');
    // A lane member's job id is its lane's and its index (add-jobs.lua makes it so).
    const lane = (id: string, size: number) => ({
      id,
      before: '{"ops":[',
      after: ']}',
      members: Array.from({ length: size }, (_, i) => ({ id: `${id}-${i}`, json: `{"id":"${id}-${i}"}`, place: `p${id}-${i}` })),
    });
    // Chunk positions 0 … 3: a lane holding 2 and 0, a single job at 1, a lane holding 3.
    const first = await add([lane('l-a', 2), { id: 'single', data: { v: 1 } }, lane('l-b', 1)], {
      dedupWindowMs: 60_000,
      chunkMark: { key: mark, places: [2, 0, 1, 3] },
    });
    expect(first).toEqual([true, true, true, true]);
    expect(await redis().client.get(mark)).toBe('l-a-1 single l-a-0 l-b-0');
    expect(await redis().client.pttl(mark)).toBeGreaterThan(59_000);
    // Again, as other lanes: nothing is written; each member gets the id of its chunk position.
    const again = await add([lane('l-c', 3), { id: 'single-2', data: { v: 2 } }], {
      dedupWindowMs: 60_000,
      chunkMark: { key: mark, places: [0, 1, 2, 3] },
    });
    expect(again).toEqual([{ already: 'l-a-1' }, { already: 'single' }, { already: 'l-a-0' }, { already: 'l-b-0' }]);
    expect(await queue.getJob('l-c')).toBeUndefined();
    expect(await queue.getJob('single-2')).toBeUndefined();
    expect(await queue.getJobCounts('prioritized')).toEqual({ prioritized: 3 });
  });

  it("keeps a duplicate in the chunk's mark as its key's holder and the holder's batch, also one whose holder outlived its key's mark", async () => {
    const { client, queue, add } = openQueue();
    const mark = queue.toKey('chunk-mark-dups');
    const batch = {
      id: 'b-dups',
      key: queue.toKey('batch:b-dups'),
      resultsKey: queue.toKey('batch:b-dups:results'),
      indexKey: queue.toKey('batches'),
      retentionSeconds: 3_600,
    };
    // One key held by a job of another batch; one whose job outlived its key's mark (the mark gone).
    await client.set(queue.toKey('idem:held'), 'k-held other-batch 00ff');
    await add([{ id: 'k-outlived', data: { v: 0 }, dedupKey: queue.toKey('idem:outlived') }], { dedupWindowMs: 60_000 });
    await client.del(queue.toKey('idem:outlived'));
    const chunk = [
      { id: 'k-held', data: { v: 1 }, dedupKey: queue.toKey('idem:held'), place: 'aa01' },
      { id: 'k-outlived', data: { v: 2 }, dedupKey: queue.toKey('idem:outlived'), place: 'aa02' },
      { id: 'p-aa03', data: { v: 3 }, place: 'aa03' },
    ];
    const first = await add(chunk, { batch, dedupWindowMs: 60_000, chunkMark: { key: mark, places: [0, 1, 2] } });
    expect(first).toEqual([
      { jobId: 'k-held', batchId: 'other-batch', place: '00ff' },
      { jobId: 'k-outlived', batchId: '', place: '' },
      true,
    ]);
    expect(await client.get(mark)).toBe('k-held,other-batch k-outlived, p-aa03');
    // Answered by the mark, each duplicate comes with its holder (the producer lists it again).
    const again = await add(chunk, { batch, dedupWindowMs: 60_000, chunkMark: { key: mark, places: [0, 1, 2] } });
    expect(again).toEqual([
      { already: 'k-held', holder: { jobId: 'k-held', batchId: 'other-batch', place: '' } },
      { already: 'k-outlived', holder: { jobId: 'k-outlived', batchId: '', place: '' } },
      { already: 'p-aa03' },
    ]);
  });

  it('writes a lane whose member is not added with null in its place, its other members whole, whatever their characters', async () => {
    const { client, queue, add } = openQueue();
    await client.set(queue.toKey('idem:held'), 'k-other other-batch ');
    const json = ['{"s":"café"}', '{"s":"held €"}', '{"s":"😀 ✓ \\u0000"}'];
    const answers = await add([
      {
        id: 'l-u',
        before: '{"v":1,"lane":"l-u","ops":[',
        after: ']}',
        members: json.map((text, i) => ({ id: `l-u-${i}`, json: text, ...(i === 1 ? { dedupKey: queue.toKey('idem:held') } : {}) })),
      },
    ]);
    expect(answers).toEqual([true, { jobId: 'k-other', batchId: 'other-batch', place: '' }, true]);
    const data = (await client.hget(queue.toKey('l-u'), 'data'))!;
    // Of the version with empty places (a worker that knows only version 1 leaves it).
    expect(JSON.parse(data)).toEqual({ v: 2, lane: 'l-u', ops: [{ s: 'café' }, null, { s: '😀 ✓ \u0000' }] });
  });

  it('a lane member of a resumable input that ran (its result under its operation id, or under a lane id as before) or waits as a job of its own is not added, and is answered with its operation id', async () => {
    const { client, queue, add } = openQueue();
    const batch = {
      id: 'b-placed',
      key: queue.toKey('batch:b-placed'),
      resultsKey: queue.toKey('batch:b-placed:results'),
      indexKey: queue.toKey('batches'),
      retentionSeconds: 3_600,
    };
    await client.hset(batch.resultsKey, 'p-ran', '{}', 'l-old-1', '{}');
    await add([{ id: 'p-waits', data: { v: 1 } }]);
    const member = (index: number, place: string) => ({ id: `l-old-${index}`, json: `{"i":${index}}`, place });
    const answers = await add(
      // The same input's lane again (its id made from the same places); its first run's lane is removed.
      [
        {
          id: 'l-old',
          before: '{"ops":[',
          after: ']}',
          members: [member(0, 'ran'), member(1, 'old'), member(2, 'waits'), member(3, 'new')],
        },
      ],
      { batch },
    );
    expect(answers).toEqual([
      { jobId: 'p-ran', batchId: 'b-placed', place: 'ran' },
      // Found under the id a version before kept its result at: its lane place.
      { jobId: 'p-old', batchId: 'b-placed', place: 'old' },
      { jobId: 'p-waits', batchId: 'b-placed', place: 'waits' },
      true,
    ]);
    // Only the new one is written, in its place; the others' places are empty.
    const data = JSON.parse((await client.hget(queue.toKey('l-old'), 'data'))!) as { ops: unknown[] };
    expect(data.ops).toEqual([null, null, null, { i: 3 }]);
    expect(await client.hget(batch.key, 'total')).toBe('1');
  });

  it("keeps every enqueued place in the batch's index of places: a place there is not added again, however it is packed, and is answered with its operation id or the id kept", async () => {
    const { client, queue, add } = openQueue();
    // A place is a SHA-256 (prepare-job.ts), so its first 16 hex digits tell it from the others.
    const place = (n: number) => sha256(`line ${n}`).slice(0, 40);
    const field = (n: number) => place(n).slice(0, 16);
    const batch = {
      id: 'b-index',
      key: queue.toKey('batch:b-index'),
      resultsKey: queue.toKey('batch:b-index:results'),
      indexKey: queue.toKey('batches'),
      retentionSeconds: 3_600,
      placesKey: queue.toKey('batch:b-index:places'),
    };
    // A part written before (a place in it, one whose 16 hex digits are inside another's id).
    await client.hset(batch.placesKey, '1', `;${field(100)}=l-${field(101)}-0`);
    // Another key's holder: line 5 repeats it.
    await client.set(queue.toKey('idem:held'), 'k-elsewhere other-batch ');
    const member = (lane: string, index: number, n: number, part: string, key?: string) => ({
      id: `${lane}-${index}`,
      json: `{"n":${n}}`,
      place: place(n),
      placeBucket: part,
      ...(key ? { dedupKey: queue.toKey(`idem:${key}`) } : {}),
    });
    const first = await add(
      [
        {
          id: 'l-one',
          before: '{"ops":[',
          after: ']}',
          members: [member('l-one', 0, 1, '0'), member('l-one', 1, 2, '0', 'two'), member('l-one', 2, 5, '0', 'held')],
        },
        { id: `p-${place(3)}`, data: { n: 3 }, place: place(3), placeBucket: '0' },
        { id: 'l-big', before: '{"ops":[', after: ']}', members: [member('l-big', 0, 100, '1'), member('l-big', 1, 101, '1')] },
      ],
      { batch, dedupWindowMs: 60_000 },
    );
    expect(first).toEqual([
      true,
      true,
      { jobId: 'k-elsewhere', batchId: 'other-batch', place: '' },
      true,
      { jobId: `l-${field(101)}-0`, batchId: 'b-index', place: place(100) },
      true,
    ]);
    // Each part one field; an entry per place: `;` and 16 hex digits, then `=` and the id kept (for
    // a duplicate, its key's holder and the holder's batch).
    const entries = async (part: string) => new Set((await client.hget(batch.placesKey, part))!.split(';').slice(1));
    expect(await entries('0')).toEqual(new Set([field(1), `${field(2)}=l-one-1`, `${field(5)}=k-elsewhere,other-batch`, field(3)]));
    expect(await entries('1')).toEqual(new Set([`${field(100)}=l-${field(101)}-0`, field(101)]));
    expect(await client.ttl(batch.placesKey)).toBeGreaterThan(3_500);

    // Packed otherwise, the keys' marks gone: each is found in the index, none written again.
    await client.del(queue.toKey('idem:two'), queue.toKey('idem:held'));
    const again = await add(
      [
        {
          id: 'l-two',
          before: '{"ops":[',
          after: ']}',
          members: [
            member('l-two', 0, 3, '0'),
            member('l-two', 1, 2, '0', 'two'),
            member('l-two', 2, 101, '1'),
            member('l-two', 3, 4, '0'),
            member('l-two', 4, 5, '0', 'held'),
          ],
        },
        { id: `p-${place(1)}`, data: { n: 1 }, place: place(1), placeBucket: '0' },
      ],
      { batch, dedupWindowMs: 60_000 },
    );
    expect(again).toEqual([
      { jobId: `p-${place(3)}`, batchId: 'b-index', place: place(3) },
      // A keyed lane member: the id it was given (its operation id is its place in its lane).
      { jobId: 'l-one-1', batchId: 'b-index', place: place(2) },
      { jobId: `p-${place(101)}`, batchId: 'b-index', place: place(101) },
      true,
      // Counted as a duplicate the first time: not added now that its key is free, and answered with
      // its key's holder as then (so that a producer killed before it listed the duplicate lists it now).
      { jobId: 'k-elsewhere', batchId: 'other-batch', place: '' },
      { jobId: `p-${place(1)}`, batchId: 'b-index', place: place(1) },
    ]);
    const data = JSON.parse((await client.hget(queue.toKey('l-two'), 'data'))!) as { ops: unknown[] };
    expect(data.ops).toEqual([null, null, null, { n: 4 }, null]);
    expect(await queue.getJob(`p-${place(1)}`)).toBeUndefined();
    expect(await client.hget(batch.key, 'total')).toBe('5');
  });

  it('a BullMQ worker takes jobs added either way in the order they were added; a paused queue keeps them', async () => {
    const { client, queue, add } = openQueue();
    await queue.pause();
    const order: string[] = [];
    await add([
      { id: 'a1', data: {} },
      { id: 'a2', data: {} },
    ]);
    await queue.add('op', {}, { jobId: 'b1', priority: NEW_JOB_PRIORITY });
    await add([{ id: 'a3', data: {} }]);
    // Paused: no marker wakes a worker, as BullMQ's own add leaves none.
    expect(await redis().client.zcard(queue.keys.marker!)).toBe(0);

    const connection = client.duplicate();
    const worker = new Worker(
      queue.name,
      async (job) => {
        order.push(job.id!);
      },
      { connection, prefix: PREFIX, concurrency: 1 },
    );
    onTestFinished(async () => {
      await worker.close();
      await closeRedis(connection);
    });
    await worker.waitUntilReady();
    await queue.resume();
    await waitFor(() => order.length === 4, { what: 'the four jobs processed' });
    expect(order).toEqual(['a1', 'a2', 'b1', 'a3']);
  });
});
