/**
 * Schedules against a real redis-server: add (validation, nothing stored on a problem), ticks run by
 * the schedule runner (one batch per tick, `{{run}}` filled in), show with batch counters, pause,
 * resume, remove, catch-up after downtime, a tick run again (nothing counted or sent twice), and the
 * same over the HTTP API with admin and read tokens.
 */
import { Job } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { ValidationError } from '../../src/errors.js';
import { createBatches } from '../../src/outcomes/batches.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { createScheduleRunner } from '../../src/schedules/schedule-runner.js';
import type { ScheduleRun } from '../../src/schedules/schedule-store.js';
import { createSchedules, type Schedules } from '../../src/schedules/schedules.js';
import { openTickQueue, removeTicks, type TickData } from '../../src/schedules/tick-queue.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { startApiServer } from '../helpers/api-server.js';
import { testLogger, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
/** waitFor, for a check that answers its value once ready (undefined before). */
const until = async <T>(check: () => Promise<T | undefined>, options?: Parameters<typeof waitFor>[1]): Promise<T> =>
  (await waitFor(check, options)) as T;
const config = parseSluiceConfig({ targets: { api: { baseUrl: 'http://127.0.0.1:9', allowPrivateAddresses: true } } }, 'test config');
const operations = [
  { method: 'POST', url: '/sync', target: 'api', json: { run: '{{run}}' }, idempotencyKey: 'sync-{{run}}-a' },
  { method: 'POST', url: '/sync', target: 'api', json: { part: 2 }, idempotencyKey: 'sync-{{run}}-b' },
];
const RUN = /^pull-\d{8}T\d{6}Z$/;

function open(queue: string, targets: SluiceConfig = config): Schedules {
  const schedules = createSchedules({ connection: redis().client, queue, config: targets });
  onTestFinished(() => schedules.close());
  return schedules;
}

/** A worker process's schedule runner, on a client of its own (as a worker's). */
function startRunner(queue: string, targets: SluiceConfig = config) {
  const client = createRedisConnection(redis().url, { name: 'test-runner', maxRetriesPerRequest: null });
  const runner = createScheduleRunner({ redis: client, queue, config: targets, logger: testLogger() });
  runner.run();
  const stop = async () => {
    await runner.close();
    await closeRedis(client);
  };
  onTestFinished(stop);
  return { stop };
}

describe('schedules (real Redis)', () => {
  it('validates the spec and every operation at add, and stores nothing on a problem', async () => {
    const queue = uniqueQueue('sched-invalid');
    const schedules = open(queue);
    const bad = [operations[0], { method: 'POST', url: 'ftp://x/{{run}}', target: 'api' }];
    const error = await schedules.add('pull', { every: '1s' }, bad).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual(['operations[1].url']);
    const spec = await schedules.add('pull', { cron: '0 2 * * *', tz: 'Moon/Base' }, operations).catch((caught: unknown) => caught);
    expect((spec as ValidationError).issues).toEqual([{ path: 'tz', message: expect.stringContaining('"Moon/Base" is not a time zone') }]);
    expect(await schedules.list()).toEqual([]);
    expect(await redis().client.keys(`sluice:{${queue}}:schedule*`)).toEqual([]);
  });

  it('each tick enqueues the operations as batch NAME-<tick>; show lists runs with their batches; pause, resume, remove', async () => {
    const queue = uniqueQueue('sched-life');
    const schedules = open(queue);
    const added = await schedules.add('pull', { every: '1s' }, operations, { source: 'test' });
    expect(added).toMatchObject({ name: 'pull', queue, every: '1s', catchUp: 'one', paused: false, operations: 2, source: 'test' });
    expect(Date.parse(added.nextRunAt!) % 1_000).toBe(0);
    await expect(schedules.add('pull', { every: '5s' }, operations)).rejects.toThrow(/has a schedule "pull" already/);

    startRunner(queue);
    const shown = await until(async () => {
      const current = await schedules.show('pull');
      return current.runs.length >= 2 ? current : undefined;
    });
    const batches = createBatches(redis().client, queue);
    for (const run of shown.runs) {
      expect(run.batchId).toMatch(RUN);
      expect(run).toMatchObject({ status: 'enqueued', enqueued: 2, duplicates: 0, batch: { total: 2 } });
      expect(run.batchId).toBe(`pull-${run.tickAt.replace(/[-:]/g, '').replace('.000', '')}`);
      expect(await batches.status(run.batchId)).toMatchObject({ total: 2 });
    }
    // {{run}} became the run's batch id in the queued jobs.
    const newest = shown.runs[0]!.batchId;
    const jobs = await redis().client.keys(`sluice:{${queue}}:k-*`);
    const data = await Promise.all(jobs.map((key) => redis().client.hget(key, 'data')));
    expect(data.filter((json) => json?.includes(`"idempotencyKey":"sync-${newest}-a"`))).toHaveLength(1);
    expect(data.filter((json) => json?.includes(`"run":"${newest}"`))).toHaveLength(1);

    const paused = await schedules.pause('pull');
    expect(paused).toMatchObject({ paused: true });
    expect(paused.nextRunAt).toBeUndefined();
    const runsAtPause = (await schedules.show('pull', { runs: 50 })).runs.length;
    const pausedAt = Date.now();
    // Two ticks' worth of time: none runs.
    await waitFor(() => Date.now() - pausedAt > 2_200, { intervalMs: 100 });
    expect((await schedules.show('pull', { runs: 50 })).runs.length).toBe(runsAtPause);

    const resumed = await schedules.resume('pull');
    expect(resumed.paused).toBe(false);
    expect(Date.parse(resumed.nextRunAt!)).toBeGreaterThan(pausedAt);
    const after = await until(async () => {
      const current = await schedules.show('pull', { runs: 50 });
      return current.runs.length > runsAtPause ? current : undefined;
    });
    expect(Date.parse(after.runs[0]!.tickAt)).toBeGreaterThanOrEqual(Date.parse(resumed.nextRunAt!));

    await schedules.remove('pull');
    expect(await schedules.list()).toEqual([]);
    await expect(schedules.show('pull')).rejects.toThrow('no schedule "pull" in queue');
    await expect(schedules.pause('pull')).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND' });
    expect(await redis().client.keys(`sluice:{${queue}}:schedule*`)).toEqual([]);
    // Its batches stay.
    expect(await batches.status(newest)).toMatchObject({ total: 2 });
  });

  it.each([
    ['one', 'enqueued'],
    ['none', 'skipped'],
  ] as const)('a tick missed while no worker ran: catchUp %s → %s, once; later ticks run on time', async (catchUp, status) => {
    const queue = uniqueQueue(`sched-catch-${catchUp}`);
    const schedules = open(queue);
    const added = await schedules.add('pull', { every: '1s', catchUp }, operations);
    const firstTick = Date.parse(added.nextRunAt!);
    // Everything is down over about three ticks.
    await waitFor(() => Date.now() > firstTick + 2_500, { intervalMs: 100 });
    const startedAt = Date.now();
    startRunner(queue);
    const shown = await until(async () => {
      const current = await schedules.show('pull', { runs: 50 });
      return current.runs.length >= 2 ? current : undefined;
    });
    const [late, ...onTime] = [...shown.runs].reverse();
    expect(late).toMatchObject({ tickAt: new Date(firstTick).toISOString(), status });
    for (const run of onTime) {
      expect(Date.parse(run.tickAt)).toBeGreaterThan(startedAt);
      expect(run.status).toBe('enqueued');
    }
  });
});

describe('a tick run twice (real Redis, a real target)', () => {
  /** The ids of the jobs of `batchId` stored in the queue. */
  async function jobsOf(queue: string, batchId: string): Promise<string[]> {
    const client = redis().client;
    const ids: string[] = [];
    for (const key of await client.keys(`sluice:{${queue}}:*`)) {
      if ((await client.type(key)) !== 'hash') continue;
      const data = await client.hget(key, 'data');
      if (data?.includes(`"batchId":${JSON.stringify(batchId)}`)) ids.push(key.slice(key.lastIndexOf(':') + 1));
    }
    return ids;
  }

  it('the same tick job run again (as BullMQ retries or takes back a stalled tick) adds nothing: each operation counted once in the batch and sent once', async () => {
    const target = await startTestTarget();
    target.setDefault(() => ({ status: 204 }));
    const targets = parseSluiceConfig({ targets: { api: { baseUrl: target.url, allowPrivateAddresses: true } } }, 'test config');
    const queue = uniqueQueue('sched-twice');
    const schedules = open(queue, targets);
    // A key with the run in it, a key of its own (the same every run), none.
    const ops = [
      { method: 'POST', url: '/sync', target: 'api', json: { op: 'a', run: '{{run}}' }, idempotencyKey: 'sync-{{run}}-a' },
      { method: 'POST', url: '/sync', target: 'api', json: { op: 'b', run: '{{run}}' }, idempotencyKey: 'sync-b' },
      { method: 'POST', url: '/sync', target: 'api', json: { op: 'c', run: '{{run}}' } },
    ];
    await schedules.add('pull', { every: '2s' }, ops);
    const ticks = openTickQueue(redis().client, queue);
    onTestFinished(() => ticks.close());

    // The first tick, run by a schedule runner alone: the operations wait in the queue.
    startRunner(queue, targets);
    const first = await until(async () => (await schedules.show('pull')).runs[0]);
    // No more ticks: the test runs this one again itself.
    await removeTicks(ticks, 'pull');
    const { batchId } = first;
    expect(first).toMatchObject({ status: 'enqueued', enqueued: 3, duplicates: 0, alreadyEnqueued: 0 });
    const batches = createBatches(redis().client, queue);
    expect(await batches.status(batchId)).toMatchObject({ total: 3 });
    const tick = await until(async () => (await ticks.getJobs(['completed'])).find((job) => job.returnvalue?.batchId === batchId));
    expect(tick.id).toBe(`repeat:pull:${Date.parse(first.tickAt)}`);
    const queued = (await jobsOf(queue, batchId)).sort();
    expect(queued).toHaveLength(3);

    /** Runs the completed tick job again (same id, same tick time) and answers its run. */
    const runAgain = async (previous: ScheduleRun): Promise<ScheduleRun> => {
      const job = (await Job.fromId<TickData, ScheduleRun | undefined>(ticks, tick.id!))!;
      await job.retry('completed');
      return until(async () => {
        const again = await Job.fromId<TickData, ScheduleRun | undefined>(ticks, tick.id!);
        if ((await again?.getState()) !== 'completed') return undefined;
        return again?.returnvalue && again.returnvalue.startedAt !== previous.startedAt ? again.returnvalue : undefined;
      });
    };

    // Again while its jobs still wait: each is found at its place.
    const second = await runAgain(first);
    expect(second).toMatchObject({ batchId, status: 'enqueued', enqueued: 0, duplicates: 0, alreadyEnqueued: 3 });
    expect((await schedules.show('pull')).runs).toEqual([
      expect.objectContaining({ ...second, batch: expect.objectContaining({ total: 3 }) }),
    ]);
    expect(await batches.status(batchId)).toMatchObject({ total: 3, duplicates: 0 });
    expect((await jobsOf(queue, batchId)).sort()).toEqual(queued);

    // A worker sends them (and removes each job once done).
    const worker = createSluiceWorker({
      connection: redis().url,
      logger: testLogger(),
      queue,
      config: targets,
      keepCompletedSeconds: 0,
      warmUp: false,
    });
    onTestFinished(() => worker.close({ force: true }));
    await worker.ready();
    await waitFor(async () => (await batches.status(batchId))?.pending === 0, { what: `batch ${batchId} to settle` });
    await waitFor(async () => (await jobsOf(queue, batchId)).length === 0, { what: 'the completed jobs to be removed' });
    const sentOps = () =>
      target.requests
        .map((request) => JSON.parse(request.body) as { op: string; run: string })
        .filter((body) => body.run === batchId)
        .map((body) => body.op)
        .sort();
    expect(sentOps()).toEqual(['a', 'b', 'c']);

    // Again once they were sent and removed: their keys' marks and their results in the batch say so.
    const third = await runAgain(second);
    expect(third).toMatchObject({ batchId, status: 'enqueued', enqueued: 0, duplicates: 0, alreadyEnqueued: 3 });
    expect(await jobsOf(queue, batchId)).toEqual([]);
    expect(await batches.status(batchId)).toMatchObject({ total: 3, succeeded: 3, pending: 0, duplicates: 0, enqueuing: false });
    const lines: ResultLine[] = [];
    for await (const line of batches.results(batchId)) lines.push(line);
    expect(lines.map((line) => line.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(sentOps()).toEqual(['a', 'b', 'c']);
  });
});

describe('schedules over the HTTP API', () => {
  it('admin adds, pauses, resumes and removes; read lists and shows; errors are 400, 403, 404, 409', async () => {
    const queue = uniqueQueue('sched-api');
    const api = await startApiServer({ redis: redis().client, config, queue });
    const body = { name: 'nightly', cron: '0 2 * * *', tz: 'Europe/Berlin', operations };

    const refused = await api.call('/v1/schedules', { method: 'POST', role: 'read', json: body });
    expect(refused.status).toBe(403);
    const enqueuer = await api.call('/v1/schedules', { method: 'POST', role: 'enqueue', json: body });
    expect(enqueuer.status).toBe(403);

    const invalid = await api.call('/v1/schedules', {
      method: 'POST',
      json: { ...body, operations: [...operations, { method: 'GET', url: '/x', target: 'nope' }] },
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'operations[2].target' }] });

    const created = await api.call('/v1/schedules', { method: 'POST', json: body });
    expect(created.status).toBe(201);
    const schedule = (await created.json()) as { nextRunAt: string };
    expect(schedule).toMatchObject({ name: 'nightly', queue, cron: '0 2 * * *', tz: 'Europe/Berlin', paused: false, operations: 2 });
    // 02:00 in Berlin is 00:00 or 01:00 UTC.
    expect(schedule.nextRunAt).toMatch(/T0[01]:00:00\.000Z$/);
    expect((await api.call('/v1/schedules', { method: 'POST', json: body })).status).toBe(409);

    const listed = await api.call('/v1/schedules', { role: 'read' });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { name: string }[]).map((entry) => entry.name)).toEqual(['nightly']);
    const shown = await api.call('/v1/schedules/nightly', { role: 'read' });
    expect(await shown.json()).toMatchObject({ name: 'nightly', runs: [] });
    expect((await api.call('/v1/schedules/missing', { role: 'read' })).status).toBe(404);

    expect((await api.call('/v1/schedules/nightly/pause', { method: 'POST', role: 'read' })).status).toBe(403);
    const paused = await api.call('/v1/schedules/nightly/pause', { method: 'POST' });
    expect(await paused.json()).toMatchObject({ paused: true });
    const resumed = await api.call('/v1/schedules/nightly/resume', { method: 'POST' });
    expect(await resumed.json()).toMatchObject({ paused: false, nextRunAt: schedule.nextRunAt });

    expect((await api.call('/v1/schedules/nightly', { method: 'DELETE', role: 'read' })).status).toBe(403);
    const removed = await api.call('/v1/schedules/nightly', { method: 'DELETE' });
    expect(await removed.json()).toEqual({ name: 'nightly', removed: true });
    expect((await api.call('/v1/schedules/nightly', { method: 'DELETE' })).status).toBe(404);
  });
});
