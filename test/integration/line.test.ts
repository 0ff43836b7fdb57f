/**
 * A limit key's line (redis/lua/includes/line.lua) through the limiter and the producer's
 * line-join, against a real redis-server: tickets in arrival order, positions that count places,
 * a late ticket that starts at once, an early one sent away again, a line made anew when its state
 * is gone, a chunk placed at enqueue.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { limiterKeys } from '../../src/redis/keys.js';
import { type Gate, type Limiter } from '../../src/limits/limiter.js';
import { createLineJoin } from '../../src/limits/line-join.js';
import { createLineCatchUp } from '../../src/limits/line-catch-up.js';
import { Queue } from 'bullmq';
import { PREFIX, bullQueueName } from '../../src/redis/keys.js';
import { configuredSpecs } from '../../src/limits/limit-keys.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startLimiterProcess } from '../helpers/limiter-process.js';
import { acquireScriptFor } from '../helpers/acquire-script.js';
import { createProducer } from '../../src/queue/producer.js';
import { queueKeys } from '../../src/redis/keys.js';

const redis = useRedisServer();

const limiterProcess = (config: SluiceConfig): Limiter => startLimiterProcess(redis().url, config);

/** One key at `rate`/s, burst 2: its window is the slots 250 ms covers. */
function keyAt(key: string, rate: number): SluiceConfig {
  return parseSluiceConfig({ limits: { [key]: { requestsPerSecond: rate, burst: 2 } } });
}

const positionOf = (gate: Gate): number | undefined => (gate.kind === 'defer' ? gate.position : undefined);

const ticketOf = async (key: string, holder: string) => redis().client.zscore(limiterKeys.line(key), holder);

/**
 * `count` jobs asking at once, as a fleet's workers do (each start waits for its slot, so jobs asked
 * one after another would never find the near slots taken): those that go, and the positions of
 * those sent away.
 */
async function crowd(limiter: Limiter, key: string, count: number): Promise<{ went: number; positions: number[] }> {
  const gates = await Promise.all(Array.from({ length: count }, (_, i) => limiter.acquire([key], `{q}crowd-${key}-${i}`, 5_000)));
  const positions = gates.flatMap((gate) => (gate.kind === 'defer' ? [gate.position!] : []));
  return { went: gates.length - positions.length, positions: positions.sort((x, y) => x - y) };
}

describe('a key’s line', () => {
  it('hands out places in arrival order: a new job stands behind those already waiting, however long they are away', async () => {
    // 4/s: slots 250 ms apart, a window of one (the head).
    const limiter = limiterProcess(keyAt('line-order', 4));
    const { went, positions } = await crowd(limiter, 'line-order', 6);
    expect(went).toBeGreaterThan(0);
    // Those sent away hold consecutive places.
    expect(positions).toEqual(positions.map((_, i) => i));
    const ahead = positions.length;
    const queued = [];
    for (const name of ['a', 'b', 'c']) queued.push(await limiter.acquire(['line-order'], `{q}${name}`, 5_000));
    expect(queued.map(positionOf)).toEqual([ahead, ahead + 1, ahead + 2]);
    // Each is away until about its turn: a place further back is a longer wait.
    expect(queued.map((gate) => (gate.kind === 'defer' ? gate.waitMs : 0))).toEqual(
      [...queued.map((gate) => (gate.kind === 'defer' ? gate.waitMs : 0))].sort((x, y) => x - y),
    );
    // Back early, c keeps its place; a newcomer stands behind it.
    expect(positionOf(await limiter.acquire(['line-order'], '{q}c', 5_000))).toBe(ahead + 2);
    expect(positionOf(await limiter.acquire(['line-order'], '{q}newcomer', 5_000))).toBe(ahead + 3);
    expect(await redis().client.zcard(limiterKeys.line('line-order'))).toBe(ahead + 4);
  });

  it('a late ticket starts at once; the place it used moves everyone up', async () => {
    const limiter = limiterProcess(keyAt('line-late', 4));
    // Three go (the slots of the next 0.5 s, waiting for them meanwhile); nobody else waits.
    const crowding = crowd(limiter, 'line-late', 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(positionOf(await limiter.acquire(['line-late'], '{q}a', 5_000))).toBe(0);
    expect(positionOf(await limiter.acquire(['line-late'], '{q}b', 5_000))).toBe(1);
    // a is away longer than its turn: when it is back, it goes, ahead of b.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const back = await limiter.acquire(['line-late'], '{q}a', 5_000);
    expect(back.kind).toBe('go');
    expect(await ticketOf('line-late', '{q}a')).toBeNull();
    // b moved up to the head: it goes, or waits at position 0.
    const next = await limiter.acquire(['line-late'], '{q}b', 5_000);
    expect(next.kind === 'go' || positionOf(next) === 0, JSON.stringify(next)).toBe(true);
    expect(await crowding).toEqual({ went: 3, positions: [] });
  });

  it('a line whose state is gone (a Redis restarted without it) is made anew: jobs take new places in the order they come back', async () => {
    const limiter = limiterProcess(keyAt('line-lost', 4));
    const crowding = crowd(limiter, 'line-lost', 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 40; i++) await limiter.acquire(['line-lost'], `{q}job-${i}`, 5_000);
    expect(positionOf(await limiter.acquire(['line-lost'], '{q}job-39', 5_000))).toBe(39);

    await redis().client.del(limiterKeys.state('line-lost'));
    // job-39 comes back first: it is not 39 places back in a line that no longer exists, but first in the new one.
    const back = await limiter.acquire(['line-lost'], '{q}job-39', 5_000);
    // (-1: it was granted the first slot, but this process's pacing put its start behind the crowd's
    // and past the slack: it asks again from the head, half a place ahead of everyone.)
    expect(back.kind === 'go' || positionOf(back)! <= 0, JSON.stringify(back)).toBe(true);
    if (back.kind === 'defer') expect(back.waitMs).toBeLessThan(1_000);
    const after = await limiter.acquire(['line-lost'], '{q}job-0', 5_000);
    expect(after.kind === 'go' || positionOf(after)! <= 1, JSON.stringify(after)).toBe(true);
    // The old tickets are gone with the old line.
    expect(await redis().client.zcard(limiterKeys.line('line-lost'))).toBeLessThanOrEqual(2);
    expect((await crowding).went).toBe(3);
  });

  it('a gap left by a job that never comes back closes: slots nobody claims go to whoever waits, and the line moves up', async () => {
    // 20/s: 50 ms apart, a window of 5.
    const limiter = limiterProcess(keyAt('line-gap', 20));
    const { positions } = await crowd(limiter, 'line-gap', 20);
    expect(positions.length).toBeGreaterThan(5);
    // Those in line never come back but the last one: once the slots are free, it goes.
    const last = `{q}crowd-line-gap-last`;
    await redis().client.zadd(limiterKeys.line('line-gap'), 'XX', 0, 'none');
    const deadline = Date.now() + 5_000;
    let gate = await limiter.acquire(['line-gap'], last, 5_000);
    const firstPosition = positionOf(gate);
    expect(firstPosition).toBeGreaterThanOrEqual(positions.length);
    while (gate.kind !== 'go' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      gate = await limiter.acquire(['line-gap'], last, 5_000);
    }
    expect(gate.kind).toBe('go');
  });
  it("a line whose head is gone for a whole window (a dead worker's lane) moves its head to the one that takes a free slot: those behind it book at once, the gone ones go at once when back, and the count holds", async () => {
    // 20/s: 50 ms apart, a window of 5.
    const limiter = limiterProcess(keyAt('line-dead', 20));
    const { positions } = await crowd(limiter, 'line-dead', 30);
    // More in line than the window holds: the last two stand beyond it.
    expect(positions.length).toBeGreaterThan(8);
    const flat = await redis().client.zrange(limiterKeys.line('line-dead'), 0, -1, 'WITHSCORES');
    const inLine = Array.from({ length: flat.length / 2 }, (_, i) => ({ holder: flat[2 * i]!, ticket: Number(flat[2 * i + 1]) }));
    const [gone, , b, d] = [inLine[0]!, inLine[1]!, inLine.at(-2)!, inLine.at(-1)!];
    // Nobody at the head asks again (their worker died): the slots go unclaimed for more than a window.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // The first from further back to ask takes the free slot, and is the head now: the one behind it
    // books a near slot at once (it waited for the next free slot before: one place a slot).
    expect((await limiter.acquire(['line-dead'], b.holder, 5_000)).kind).toBe('go');
    expect((await limiter.acquire(['line-dead'], d.holder, 5_000)).kind).toBe('go');
    // The gone ones stand half a place ahead of the head: back, they go at once, and the line's count
    // (tickets used never past tickets handed out) holds.
    expect(Number(await ticketOf('line-dead', gone.holder)) % 1).toBe(0.5);
    expect((await limiter.acquire(['line-dead'], gone.holder, 5_000)).kind).toBe('go');
    const [next, served] = await redis().client.hmget(limiterKeys.state('line-dead'), 'next', 'served');
    expect(Number(served)).toBeLessThanOrEqual(Number(next));
    expect(Number(served)).toBe(d.ticket + 1);
  });

  it('a job that missed its slot stands at the head without moving the line twice: tickets handed out and used stay equal', async () => {
    // Straight to the script, as the limiter calls it, so that each call's restore flag is ours.
    const key = 'line-restore';
    const acquire = acquireScriptFor(redis().client, key, keyAt(key, 4));
    const ask = (holder: string, restore = false) => acquire(holder, { restore });
    const state = async () => {
      const [next, served] = await redis().client.hmget(limiterKeys.state(key), 'next', 'served');
      return { next: Number(next), served: Number(served) };
    };
    // 4/s: slots 250 ms apart, a window of one. Three book the next 0.5 s; two more wait in line.
    for (const holder of ['{q}a0', '{q}a1', '{q}a2']) expect((await ask(holder)).kind).toBe('go');
    expect(await ask('{q}a3')).toMatchObject({ kind: 'queued', position: 0 });
    expect(await ask('{q}a4')).toMatchObject({ kind: 'queued', position: 1 });
    // r had its turn and missed its slot: it stands at the head, ahead of a3, with no ticket of the count.
    expect((await ask('{q}r', true)).kind).toBe('queued');
    expect(await state()).toEqual({ next: 2, served: 0 });
    const startWhenAdmitted = async (holder: string) => {
      for (let tries = 0; tries < 40; tries++) {
        const reply = await ask(holder);
        if (reply.kind === 'go') return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`${holder} never started`);
    };
    await startWhenAdmitted('{q}r');
    // Its start used no ticket of the count: a3 is still first in line, not already late.
    expect(await state()).toEqual({ next: 2, served: 0 });
    expect(await ask('{q}a3')).toMatchObject({ kind: 'queued', position: 0 });
    await startWhenAdmitted('{q}a3');
    await startWhenAdmitted('{q}a4');
    expect(await state()).toEqual({ next: 2, served: 2 });
    expect(await redis().client.zcard(limiterKeys.line(key))).toBe(0);
  });
});

describe('placing a chunk at enqueue', () => {
  it('gives the chunk consecutive places in its order, keeps the place of a job that holds one, and delays those far back', async () => {
    const config = keyAt('line-join', 100);
    const join = createLineJoin(redis().client, config);
    const jobs = Array.from({ length: 60 }, (_, i) => ({ holder: `{q}j-${i}`, keys: ['line-join'] }));
    const { delays, took } = await join(jobs);
    expect(took.every((keys) => keys.length === 1 && keys[0] === 'line-join')).toBe(true);
    // 100/s: a window of 25 places; those are due at once (a millisecond), the rest about their turn.
    expect(delays.slice(0, 25).every((delay) => delay === 1)).toBe(true);
    expect(delays[59]!).toBeGreaterThanOrEqual((59 - 12.5) * 10);
    for (let i = 26; i < 60; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(Number(await ticketOf('line-join', '{q}j-59'))).toBe(59);

    // The same input again (a resumed enqueue): the same places, nobody added, no new ticket.
    expect((await join(jobs.slice(50))).took).toEqual(Array.from({ length: 10 }, () => []));
    expect(await redis().client.zcard(limiterKeys.line('line-join'))).toBe(60);
    // A chunk that does not bring its key to the limit (it fits in the window) places nobody: plain jobs.
    const fast = createLineJoin(redis().client, keyAt('line-join-fast', 1_000));
    expect((await fast(Array.from({ length: 100 }, (_, i) => ({ holder: `{q}f-${i}`, keys: ['line-join-fast'] })))).delays).toEqual(
      Array.from({ length: 100 }, () => 0),
    );
    expect(await redis().client.zcard(limiterKeys.line('line-join-fast'))).toBe(0);
    // A job in no rated line is not delayed and joins nothing.
    expect(await join([{ holder: '{q}free', keys: ['no-limit-here'] }])).toEqual({ delays: [0], took: [[]] });

    // A worker finds them where the producer put them: the head goes, and moves the line up.
    const limiter = limiterProcess(config);
    for (let i = 0; i < 25; i++) expect((await limiter.acquire(['line-join'], `{q}j-${i}`, 5_000)).kind).toBe('go');
    expect(positionOf(await limiter.acquire(['line-join'], '{q}j-59', 5_000))).toBe(59 - 25);
  });
});

describe('a line that runs behind catches up', () => {
  it('re-times the delayed jobs in line to their turn from now, only later, once per claim, then clears the mark', async () => {
    const key = 'line-behind';
    const config = keyAt(key, 100);
    const client = redis().client;
    const queue = new Queue(bullQueueName('behind-q'), { connection: client, prefix: PREFIX });
    onTestFinished(() => queue.close());
    // 100/s: 10 ms apart, a window of 25. 200 jobs in line, delayed as if the line had run at its
    // rate since long ago: all due within the next 100 ms, far too early for most.
    const holders = Array.from({ length: 200 }, (_, i) => `{behind-q}j-${i}`);
    await createLineJoin(client, config)(holders.map((holder) => ({ holder, keys: [key] })));
    for (let i = 0; i < 200; i++) await queue.add('op', { i }, { jobId: `j-${i}`, delay: 100 });
    // One waits 60 s for something else (a backoff): it keeps that. One is waiting, not delayed: left alone.
    await queue.add('op', {}, { jobId: 'j-backoff', delay: 60_000 });
    await client.zadd(limiterKeys.line(key), 'NX', 150.5, '{behind-q}j-backoff');
    await (await queue.getJob('j-0'))!.promote();
    const dueOf = async (id: string) =>
      Math.floor(Number(await client.zscore(`${PREFIX}:${bullQueueName('behind-q')}:delayed`, id)) / 0x1000);
    const before = await dueOf('j-199');
    const headBefore = await Promise.all(Array.from({ length: 24 }, (_, i) => dueOf(`j-${i + 1}`)));

    const catchUp = createLineCatchUp(client, configuredSpecs(config), 250);
    // Not behind: nothing to do.
    expect(await catchUp(key)).toBeUndefined();
    await client.hset(limiterKeys.state(key), 'behind', 1);
    // Another process holds the claim: nothing either.
    await client.set(limiterKeys.catchUpClaim(key), 'someone', 'PX', 5_000);
    expect(await catchUp(key)).toBeUndefined();
    await client.del(limiterKeys.catchUpClaim(key));

    const startedAt = Date.now();
    const done = await catchUp(key);
    expect(done?.faster).toBe(false);
    const moved = done!.moved;
    // The 175 beyond the window (j-25 … j-199), delayed less than their turn; not j-0 (waiting), not
    // the backoff. The head (j-1 … j-24) is due now: moved too only if adding the jobs took longer than
    // their 100 ms (a busy machine), and then to now, never further.
    expect(moved).toBeGreaterThanOrEqual(175);
    expect(moved).toBeLessThanOrEqual(199);
    const after = Date.now();
    for (let i = 1; i < 25; i++) expect(await dueOf(`j-${i}`)).toBeLessThanOrEqual(Math.max(headBefore[i - 1]!, after));
    // j-199 stands 199 places back: (199 - 12.5) × 10 ms from now, on the 50 ms grid.
    expect(await dueOf('j-199')).toBeGreaterThanOrEqual(startedAt + (199 - 12.5) * 10);
    expect(await dueOf('j-199')).toBeGreaterThan(before);
    for (let i = 26; i < 200; i++) expect(await dueOf(`j-${i}`)).toBeGreaterThanOrEqual(await dueOf(`j-${i - 1}`));
    expect(await dueOf('j-backoff')).toBeGreaterThan(startedAt + 50_000);
    expect(await (await queue.getJob('j-0'))!.isWaiting()).toBe(true);
    // The mark is cleared and the claim let go; another catch-up right after is refused (at most one per 2 s).
    expect(await client.hget(limiterKeys.state(key), 'behind')).toBeNull();
    expect(await client.exists(limiterKeys.catchUpClaim(key))).toBe(0);
    await client.hset(limiterKeys.state(key), 'behind', 1);
    expect(await catchUp(key)).toBeUndefined();
  });
});

describe('a line timed at a rate since raised is brought forward', () => {
  /**
   * `count` jobs of queue `q` joined to `key`'s line at enqueue by a producer whose config says 5/s
   * (200 ms apart: the last due about count / 5 s from now), added to BullMQ delayed as the producer
   * delays them.
   */
  async function lineAtFivePerSecond(key: string, q: string, count: number) {
    const client = redis().client;
    const queue = new Queue(bullQueueName(q), { connection: client, prefix: PREFIX });
    onTestFinished(() => queue.close());
    const holders = Array.from({ length: count }, (_, i) => `{${q}}j-${i}`);
    const { delays } = await createLineJoin(client, keyAt(key, 5))(holders.map((holder) => ({ holder, keys: [key] })));
    for (let i = 0; i < count; i += 500)
      await queue.addBulk(delays.slice(i, i + 500).map((delay, j) => ({ name: 'op', data: {}, opts: { jobId: `j-${i + j}`, delay } })));
    const dueOf = async (id: string) => Math.floor(Number(await client.zscore(`${PREFIX}:${bullQueueName(q)}:delayed`, id)) / 0x1000);
    return { queue, dueOf };
  }

  const catchUpAt = (key: string, rate: number) => createLineCatchUp(redis().client, configuredSpecs(keyAt(key, rate)), 250)(key);
  const lineRateOf = (key: string) => redis().client.hget(limiterKeys.state(key), 'lineRate');

  it('a catch-up brings every delayed job in the line forward to its turn at the key’s rate now, only earlier, paging through all of it', async () => {
    const key = 'line-raised';
    const client = redis().client;
    const { queue, dueOf } = await lineAtFivePerSecond(key, 'raised-q', 600);
    expect(await lineRateOf(key)).toBe('5');
    const lastBefore = await dueOf('j-599');
    expect(lastBefore).toBeGreaterThan(Date.now() + 100_000);
    // One was sent away for something else, due sooner than its new turn: it keeps its time.
    await (await queue.getJob('j-500'))!.changeDelay(300);
    const keptDue = await dueOf('j-500');
    // 2,050 were passed over while away (a line whose head was gone moved on: half places below the
    // head, all of one score), each delayed 10 minutes at the slow rate: their turn has passed, they
    // are due now. More than a catch-up hands out (2,000): the next page starts within their score.
    const passed = Array.from({ length: 2_050 }, (_, i) => `p-${i}`);
    for (let i = 0; i < passed.length; i += 500)
      await queue.addBulk(passed.slice(i, i + 500).map((jobId) => ({ name: 'op', data: {}, opts: { jobId, delay: 600_000 } })));
    await client.zadd(limiterKeys.line(key), ...passed.flatMap((jobId) => [-1.5, `{raised-q}${jobId}`]));

    // At the rate the line was timed at, or a little above it: nothing to do.
    expect(await catchUpAt(key, 5.5)).toBeUndefined();
    const startedAt = Date.now();
    const done = await catchUpAt(key, 1_000);
    expect(done?.faster).toBe(true);
    // All but the head (due within a few ms anyway) and j-500.
    expect(done!.moved).toBeGreaterThan(2_050 + 590);
    // 1,000/s: 1 ms apart, a window of 250 places: j-599 stands (599 - 125) ms from now, on the 50 ms grid.
    const lastAfter = await dueOf('j-599');
    expect(lastAfter).toBeGreaterThanOrEqual(startedAt + 474);
    expect(lastAfter).toBeLessThanOrEqual(Date.now() + 474 + 50);
    for (let i = 301; i < 600; i += 37) expect(await dueOf(`j-${i}`)).toBeGreaterThanOrEqual(await dueOf(`j-${i - 1}`));
    expect(await dueOf('j-500')).toBe(keptDue);
    const notYet = [];
    for (const jobId of passed) if ((await dueOf(jobId)) > Date.now()) notYet.push(jobId);
    expect(notYet).toEqual([]);
    // The line's pace is the key's rate now; the claim is let go, the mark cleared.
    expect(await lineRateOf(key)).toBe('1000');
    expect(await client.exists(limiterKeys.catchUpClaim(key))).toBe(0);
    expect(await client.hget(limiterKeys.state(key), 'behind')).toBeNull();

    // A producer still on the old config times more jobs at 5/s: the line is slower again, but it
    // is brought forward at most every 30 s (the whole line is paged each time), so not now.
    await client.hset(limiterKeys.state(key), 'caughtUpAt', 0);
    await createLineJoin(client, keyAt(key, 5))(Array.from({ length: 20 }, (_, i) => ({ holder: `{raised-q}late-${i}`, keys: [key] })));
    expect(await lineRateOf(key)).toBe('5');
    expect(await catchUpAt(key, 1_000)).toBeUndefined();
    await client.hset(limiterKeys.state(key), 'fasterAt', 0);
    expect((await catchUpAt(key, 1_000))?.faster).toBe(true);
  });

  it('a backlog shorter than a window at the new rate is brought forward too (its jobs were timed a slow slot apart)', async () => {
    const { dueOf } = await lineAtFivePerSecond('line-raised-short', 'raised-short-q', 40);
    const before = await dueOf('j-39');
    expect(before).toBeGreaterThan(Date.now() + 5_000);
    // 1,000/s: a window of 250 places, all 40 within it: due now.
    expect((await catchUpAt('line-raised-short', 1_000))?.faster).toBe(true);
    expect(await dueOf('j-39')).toBeLessThanOrEqual(Date.now() + 50);
  });

  it('a start on the key marks a slower line, and a worker looks at its configured keys when it starts', async () => {
    const client = redis().client;
    // A start finds the key's rate above the line's pace: the key is marked, the reply says so.
    await lineAtFivePerSecond('line-raised-acquire', 'raised-acquire-q', 300);
    const acquire = acquireScriptFor(client, 'line-raised-acquire', keyAt('line-raised-acquire', 1_000));
    const reply = await acquire('{raised-acquire-q}j-0');
    expect(reply).toMatchObject({ kind: 'go', behindMask: 1 });
    expect(await client.hget(limiterKeys.state('line-raised-acquire'), 'behind')).toBe('1');

    // When it starts: every job is away (none due for a while), so no start would see it.
    const { dueOf } = await lineAtFivePerSecond('line-raised-start', 'raised-start-q', 300);
    const startBefore = await dueOf('j-299');
    limiterProcess(keyAt('line-raised-start', 1_000));
    await waitFor(async () => (await lineRateOf('line-raised-start')) === '1000', {
      timeoutMs: 5_000,
      what: 'the line brought forward at start',
    });
    expect(await dueOf('j-299')).toBeLessThan(startBefore - 50_000);
  });

  it('a paused key is not brought forward: its jobs stay away until it resumes', async () => {
    await lineAtFivePerSecond('line-raised-paused', 'raised-paused-q', 100);
    await redis().client.hset(limiterKeys.override('line-raised-paused'), 'paused', '1');
    expect(await catchUpAt('line-raised-paused', 1_000)).toBeUndefined();
  });

  it('a line’s pace is the slowest its jobs were timed at: a producer with a lower rate lowers it, and a line at its key’s rate is left alone', async () => {
    const client = redis().client;
    await createLineJoin(
      client,
      keyAt('line-lowered', 100),
    )(Array.from({ length: 100 }, (_, i) => ({ holder: `{q}low-${i}`, keys: ['line-lowered'] })));
    expect(await lineRateOf('line-lowered')).toBe('100');
    // A producer with a lower rate joins the same line: its pace is the slower one.
    await createLineJoin(client, keyAt('line-lowered', 10))([{ holder: '{q}low-100', keys: ['line-lowered'] }]);
    expect(await lineRateOf('line-lowered')).toBe('10');
    expect(await catchUpAt('line-lowered', 10)).toBeUndefined();
    // A later-only catch-up (the line ran behind) leaves the pace where it was: it moves no job forward.
    await client.hset(limiterKeys.state('line-lowered'), 'behind', 1);
    expect((await catchUpAt('line-lowered', 11))?.faster).toBe(false);
    expect(await lineRateOf('line-lowered')).toBe('10');
  });
});

describe('an input enqueued again gives back the tickets it took for operations it did not add', () => {
  const config = (key: string) =>
    parseSluiceConfig({ allowedHosts: ['api.example.com'], limits: { [key]: { requestsPerSecond: 100, burst: 2 } } });
  const input = (key: string) =>
    Array.from({ length: 200 }, (_, n) => ({ method: 'POST', url: `https://api.example.com/x/${n}`, limitKey: key }));
  const lineState = async (key: string) => {
    const [next, served] = await redis().client.hmget(limiterKeys.state(key), 'next', 'served');
    return { next: Number(next), served: Number(served), holders: await redis().client.zcard(limiterKeys.line(key)) };
  };

  it('its jobs still wait: each keeps its ticket, and nothing is added to the line', async () => {
    const producer = createProducer({ connection: redis().client, queue: uniqueQueue('ghosts'), config: config('ghost-wait') });
    onTestFinished(() => producer.close());
    await producer.enqueueMany(input('ghost-wait'), { batchId: 'ghosts-a', resumable: true });
    const before = await lineState('ghost-wait');
    expect(before).toEqual({ next: 200, served: 0, holders: 200 });
    expect(await producer.enqueueMany(input('ghost-wait'), { batchId: 'ghosts-a', resumable: true })).toMatchObject({
      alreadyEnqueued: 200,
    });
    expect(await lineState('ghost-wait')).toEqual(before);
  });

  it('its jobs ran: no ticket is left for them, and the next operation on the key stands at the head', async () => {
    const queue = uniqueQueue('ghosts');
    const producer = createProducer({ connection: redis().client, queue, config: config('ghost-ran') });
    onTestFinished(() => producer.close());
    const first = await producer.enqueueMany(input('ghost-ran'), { batchId: 'ghosts-b', resumable: true });
    // As if each had run: started (its ticket used, the line moved up), its result kept, its job removed.
    for (const { id } of first.results) {
      await redis().client.zrem(limiterKeys.line('ghost-ran'), `{${queue}}${id}`);
      await redis().client.hincrby(limiterKeys.state('ghost-ran'), 'served', 1);
      await redis().client.hset(queueKeys(queue).batchResults('ghosts-b'), id, '{}');
      await redis().client.del(`${PREFIX}:${bullQueueName(queue)}:${id}`);
    }
    expect(await lineState('ghost-ran')).toEqual({ next: 200, served: 200, holders: 0 });

    expect(await producer.enqueueMany(input('ghost-ran'), { batchId: 'ghosts-b', resumable: true })).toMatchObject({
      alreadyEnqueued: 200,
    });
    // Before: 200 tickets nobody would use, and everyone after them 200 places back. The tickets were
    // the last handed out: they are handed out again.
    expect(await lineState('ghost-ran')).toEqual({ next: 200, served: 200, holders: 0 });
    const gate = await limiterProcess(config('ghost-ran')).acquire(['ghost-ran'], `{${queue}}newcomer`, 5_000);
    expect(positionOf(gate) ?? 0).toBeLessThan(25);
  });

  it('duplicates of jobs still waiting give back only their own tickets: those ahead keep their places', async () => {
    const producer = createProducer({ connection: redis().client, queue: uniqueQueue('ghosts'), config: config('ghost-dup') });
    onTestFinished(() => producer.close());
    const keyed = (n: number) => ({
      method: 'POST',
      url: `https://api.example.com/k/${n}`,
      limitKey: 'ghost-dup',
      idempotencyKey: `dup-${n}`,
    });
    await producer.enqueueMany(
      Array.from({ length: 100 }, (_, n) => keyed(n)),
      { batchId: 'dup-a' },
    );
    expect(await lineState('ghost-dup')).toEqual({ next: 100, served: 0, holders: 100 });
    const ahead = await redis().client.zrange(limiterKeys.line('ghost-dup'), 0, -1, 'WITHSCORES');
    // Another batch with the same keys: every one a duplicate; the line is as it was.
    expect(
      await producer.enqueueMany(
        Array.from({ length: 50 }, (_, n) => keyed(n)),
        { batchId: 'dup-b' },
      ),
    ).toMatchObject({ duplicates: 50 });
    expect(await lineState('ghost-dup')).toEqual({ next: 100, served: 0, holders: 100 });
    expect(await redis().client.zrange(limiterKeys.line('ghost-dup'), 0, -1, 'WITHSCORES')).toEqual(ahead);
  });

  it('one key twice in a chunk: one job, one ticket, and it keeps it', async () => {
    const queue = uniqueQueue('ghosts');
    const producer = createProducer({ connection: redis().client, queue, config: config('ghost-twice') });
    onTestFinished(() => producer.close());
    const ops = input('ghost-twice');
    ops[1] = { ...ops[1]!, idempotencyKey: 'twice' } as (typeof ops)[number];
    ops[150] = { ...ops[150]!, idempotencyKey: 'twice' } as (typeof ops)[number];
    const summary = await producer.enqueueMany(ops, { batchId: 'twice' });
    expect(summary).toMatchObject({ enqueued: 199, duplicates: 1 });
    const holder = `{${queue}}${summary.results[1]!.id}`;
    expect(await ticketOf('ghost-twice', holder)).not.toBeNull();
    expect(await lineState('ghost-twice')).toEqual({ next: 199, served: 0, holders: 199 });
  });
});
