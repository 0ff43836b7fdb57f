/**
 * `sluice limits set` on a key that jobs of several queues wait for: the jobs deferred for slots
 * under the old schedule are woken in every queue, not only in the queue the command names.
 */
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { bookingHolder, parseBookingHolder } from '../../src/queue/wake-jobs.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

/** One start every 4 s: six jobs of each queue would take the shared key ~48 s. */
const config = parseSluiceConfig({ limits: { shared: { requestsPerSecond: 0.25, burst: 1 } } });

const cli = runCliInProcess;

const delayed = (p: Pipeline) => redis().client.zcard(`sluice:{${p.queue}}:delayed`);

describe('limits set wakes deferred jobs', () => {
  it('in every queue holding jobs booked on the key', async () => {
    const pipelines = [await startPipeline(redis(), { config }), await startPipeline(redis(), { config })];
    for (const [n, p] of pipelines.entries()) {
      const ops = Array.from({ length: 6 }, (_, i) => p.op('/slow', { limitKey: 'shared', idempotencyKey: `wake-${n}-${i}` }));
      await p.producer.enqueueMany(ops, { batchId: `wake-${n}` });
    }
    await waitFor(async () => (await delayed(pipelines[0]!)) >= 3 && (await delayed(pipelines[1]!)) >= 3, {
      timeoutMs: 15_000,
      what: 'jobs of both queues deferred for slots',
    });

    // The command names the first queue only.
    const set = await cli(['limits', 'set', 'shared', '--rps', '100'], { REDIS_URL: redis().url, SLUICE_QUEUE: pipelines[0]!.queue });
    expect(set.code, set.stderr).toBe(0);
    const [a, b] = pipelines.map((p) => p.queue).sort();
    expect(set.stdout).toMatch(new RegExp(`deferred operations in queues ${a} \\(\\d+\\), ${b} \\(\\d+\\) woken to book again`));

    // Under the new schedule both batches finish at once (the old one had ~40 s to go).
    for (const [n, p] of pipelines.entries()) {
      expect(await p.settled(`wake-${n}`, 8_000)).toMatchObject({ succeeded: 6, deadLettered: 0 });
    }
  }, 60_000);
});

describe('limits set wakes deferred lanes', () => {
  it("brings each lane forward to its first operation's turn at the new pace", async () => {
    // 2 starts a second: lanes of 2 operations, each delayed to its turn; 40 would take ~20 s.
    // A key of its own: the test above leaves `shared` overridden at 100/s.
    const slow = parseSluiceConfig({ limits: { 'lanes-key': { requestsPerSecond: 2, burst: 1 } } });
    const p = await startPipeline(redis(), { config: slow }, { lanes: true });
    const ops = Array.from({ length: 40 }, (_, i) => p.op('/slow', { limitKey: 'lanes-key', meta: { i } }));
    const { results } = await p.producer.enqueueMany(ops, { batchId: 'wake-lanes' });
    expect(results.every((result) => result.id.startsWith('l-'))).toBe(true);
    await waitFor(async () => (await delayed(p)) >= 10, { timeoutMs: 10_000, what: 'lanes delayed to their turns' });

    const set = await cli(['limits', 'set', 'lanes-key', '--rps', '100'], { REDIS_URL: redis().url, SLUICE_QUEUE: p.queue });
    expect(set.code, set.stderr).toBe(0);
    const woken = Number(/deferred operations in queue \S+ \((\d+)\)|(\d+) deferred operations/.exec(set.stdout)?.slice(1).find(Boolean));
    expect(woken, set.stdout).toBeGreaterThanOrEqual(10);
    expect(await p.settled('wake-lanes', 8_000)).toMatchObject({ succeeded: 40, deadLettered: 0 });
  }, 60_000);
});

describe('limits resume wakes the jobs a target paused', () => {
  it("brings a line delayed to the end of a day's Retry-After to its turns now", async () => {
    const paused = parseSluiceConfig({ limits: { 'paused-by-target': { requestsPerSecond: 20, burst: 2 } } });
    const p = await startPipeline(redis(), { config: paused });
    // The first request is told to come back in an hour; every later one would succeed.
    p.target.script('POST /hold', [
      { status: 429, headers: { 'retry-after': '3600' } },
      { status: 200, json: { ok: true } },
    ]);
    const ops = Array.from({ length: 10 }, (_, i) => p.op('/hold', { limitKey: 'paused-by-target', idempotencyKey: `hold-${i}` }));
    await p.producer.enqueueMany(ops, { batchId: 'held' });
    // Each one done (sent before the 429 came back) or delayed (the line, until the pause's end; the
    // one told 429, until its retry).
    await waitFor(async () => (await delayed(p)) + ((await p.batches.status('held'))?.succeeded ?? 0) === 10, {
      timeoutMs: 10_000,
      what: 'the line delayed to the end of the pause',
    });
    expect(await delayed(p)).toBeGreaterThanOrEqual(5);

    const resume = await cli(['limits', 'resume', 'paused-by-target'], { REDIS_URL: redis().url, SLUICE_QUEUE: p.queue });
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stdout).toMatch(/^limit key paused-by-target resumed; \d+ deferred operations in queue \S+ woken to book again\n$/);
    // The nine that waited in the line go now; the one told 429 keeps its own retry time (its Retry-After).
    await waitFor(async () => (await p.batches.status('held'))?.succeeded === 9, { timeoutMs: 8_000, what: 'the line to run' });
    expect(p.requestsTo('/hold')).toHaveLength(10);
  }, 60_000);
});

describe('booking holders', () => {
  it('name the job and its queue, and read back; a bare job id (an older worker) has no queue', () => {
    const queue = uniqueQueue('holder');
    expect(parseBookingHolder(bookingHolder(queue, 'k-abc'))).toEqual({ queue, jobId: 'k-abc' });
    expect(parseBookingHolder(bookingHolder(queue, '{odd}id'))).toEqual({ queue, jobId: '{odd}id' });
    expect(parseBookingHolder('k-abc')).toEqual({ queue: undefined, jobId: 'k-abc' });
    expect(parseBookingHolder('{not a queue}7')).toEqual({ queue: undefined, jobId: '{not a queue}7' });
    expect(parseBookingHolder('{q}')).toEqual({ queue: undefined, jobId: '{q}' });
  });
});
