/**
 * Lanes (queue/lanes.ts) with real worker processes: a batch packed into lanes survives workers
 * SIGKILLed mid-lane (each operation ends once in the batch; only requests in flight at a kill are
 * sent again), and lanes running beside single jobs on the same limit key keep a strict target's rate.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { LANE_OP_ID } from '../../src/queue/lanes.js';
import { createProducer } from '../../src/queue/producer.js';
import { createBatches } from '../../src/outcomes/batches.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { now, useCli, type CliProcess } from '../helpers/cli-process.js';
import { startDemoApiProcess } from '../helpers/demo-api-process.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest } from '../helpers/target-server.js';
import { jsonl, jsonLines, maxInWindow } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lanes with worker processes (built binary)', () => {
  it('5,000 operations in lanes, 3 workers, one SIGKILLed every 3 s: each succeeds once in the batch, none dead-lettered, resent only if in flight at a kill', async () => {
    const COUNT = 5_000;
    const CONCURRENCY = 20;
    const KILL_EVERY_MS = 3_000;
    // A request answered this shortly before a kill may not have had its outcome written yet (it still
    // holds its permit): it may be sent again too. Generous: outcomes are written within milliseconds.
    const OUTCOME_WINDOW_MS = 1_000;
    // A request the victim wrote just before it died may reach the target a little after it exited.
    const ARRIVAL_MARGIN_MS = 500;
    const queue = uniqueQueue('e2e-lanes-crash');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    // ~17 s of work for 3 × 20 requests at once without kills: long enough for several kills mid-lane.
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 200 }));
    const ops = Array.from({ length: COUNT }, (_, i) => ({
      method: 'POST',
      url: `${target.url}/refs`,
      json: { ref: `ref-${i}` },
      meta: { ref: `ref-${i}` },
      retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 },
    }));
    const env = { SLUICE_QUEUE: queue, SLUICE_LOCK_DURATION_MS: '2000', SLUICE_STALLED_INTERVAL_MS: '1000' };
    const workers = await cli.startWorkers(3, { concurrency: CONCURRENCY, env });
    const everyWorker = [...workers];

    const file = await cli.file('lanes-crash.jsonl', jsonl(ops));
    const enqueued = await cli.run(['enqueue', file, '--json'], { env: { ...env, SLUICE_LANES: 'on' }, timeoutMs: 30_000 });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId, enqueued: count } = JSON.parse(enqueued.stdout) as { batchId: string; enqueued: number };
    expect(count).toBe(COUNT);

    // Kill the longest-running worker every few seconds and start another, until the batch is done.
    const batches = createBatches(redis().client, queue);
    const done = async () => {
      const status = await batches.status(batchId);
      return status !== undefined && status.pending === 0 && !status.enqueuing;
    };
    const kills: { at: number; exitedAt: number; inFlight: number }[] = [];
    const startedAt = now();
    while (!(await done())) {
      expect(now() - startedAt, `batch not done after ${kills.length} kills`).toBeLessThan(50_000);
      await pause(Math.max(0, startedAt + (kills.length + 1) * KILL_EVERY_MS - now()));
      if (await done()) break;
      const victim: CliProcess = workers.shift()!;
      const at = now();
      const inFlight = target.inFlight();
      victim.signal('SIGKILL');
      expect((await victim.waitForExit(10_000)).signal).toBe('SIGKILL');
      kills.push({ at, exitedAt: victim.exitedAt()!, inFlight });
      const [replacement] = await cli.startWorkers(1, { concurrency: CONCURRENCY, env });
      workers.push(replacement!);
      everyWorker.push(replacement!);
    }
    const tookMs = now() - startedAt;
    const logged = (msg: string) => everyWorker.flatMap((worker) => worker.logs()).filter((line) => line.msg === msg).length;

    const status = await batches.status(batchId);
    expect(status).toMatchObject({ total: COUNT, succeeded: COUNT, deadLettered: 0, pending: 0 });
    expect(await redis().client.hlen(`sluice:{${queue}}:dlq`)).toBe(0);

    // The batch's results: one line per operation, each succeeded, each with its own id and ref.
    const results = await cli.run(['results', batchId], { env, timeoutMs: 30_000 });
    expect(results.code, results.stderr).toBe(0);
    const lines = jsonLines<ResultLine>(results.stdout);
    expect(lines).toHaveLength(COUNT);
    expect(new Set(lines.map((line) => line.id)).size).toBe(COUNT);
    // A line of the file is the operation its single job would be (`p-<place>`), run at its place in a lane.
    expect(lines.every((line) => /^p-[0-9a-f]{40}$/.test(line.id) && LANE_OP_ID.test(line.jobId))).toBe(true);
    expect(new Set(lines.map((line) => line.jobId)).size).toBe(COUNT);
    expect(lines.filter((line) => line.outcome !== 'succeeded' || line.status !== 200)).toEqual([]);
    expect(new Set(lines.map((line) => (line.meta as { ref: string }).ref)).size).toBe(COUNT);

    // The target saw every ref, a resend always with the ref's one idempotency key.
    const byRef = new Map<string, RecordedRequest[]>();
    for (const request of target.requests) {
      const { ref } = JSON.parse(request.body) as { ref: string };
      byRef.set(ref, [...(byRef.get(ref) ?? []), request]);
    }
    expect(byRef.size).toBe(COUNT);
    const keyOf = new Map(lines.map((line) => [(line.meta as { ref: string }).ref, line.idempotencyKey]));
    expect(new Set(keyOf.values()).size).toBe(COUNT);
    // The key its single job would have had (`sluice-p-<place>`): a rerun sends the same one however it is packed.
    expect(lines.filter((line) => line.idempotencyKey !== `sluice-${line.id}`)).toEqual([]);
    for (const [r, requests] of byRef) {
      for (const request of requests) expect(request.headers['idempotency-key'], r).toBe(keyOf.get(r));
    }

    // Duplicates: a request is sent again only when the worker that sent it died before its outcome
    // was written. Each kill orphans at most the victim's permits (every operation, in a lane or a
    // single job, holds one from before its request until its outcome is written): at most
    // kills × concurrency extra requests, and every request but a ref's last was in flight (or just
    // answered) at a kill. (In flight at the target counts every worker's: a superset of the victim's.)
    const resent = [...byRef].filter(([, requests]) => requests.length > 1);
    const atAKill = (request: RecordedRequest) =>
      kills.some(
        (kill) => request.startedAt <= kill.exitedAt + ARRIVAL_MARGIN_MS && (request.endedAt ?? Infinity) > kill.at - OUTCOME_WINDOW_MS,
      );
    const unexplained = resent.filter(([, requests]) => !requests.slice(0, -1).every(atAKill)).map(([ref]) => ref);
    const duplicates = target.requests.length - COUNT;
    console.log(
      `lanes crash: ${duplicates} duplicate requests (${resent.length} refs) after ${kills.length} kills in ${(tookMs / 1_000).toFixed(1)} s; ` +
        `${logged('lane stalled again: its operations go on as jobs of their own')} lanes split, ` +
        `${logged('outcome already recorded; job finished without sending it again')} jobs found their outcome recorded; ` +
        `kills at ${kills.map((kill) => `${((kill.at - startedAt) / 1_000).toFixed(1)} s (${kill.inFlight} in flight)`).join(', ')}`,
    );
    expect(kills.length).toBeGreaterThanOrEqual(3);
    expect(logged('job failed unexpectedly')).toBe(0);
    expect(duplicates).toBeLessThanOrEqual(kills.length * CONCURRENCY);
    expect(unexplained).toEqual([]);
  }, 90_000);

  it('a lane batch and single enqueues interleaved on one 50/s key keep a strict 50/s target: no 429, every operation succeeds', async () => {
    const RATE = 50;
    // In a process of its own: the runner's event loop, busy with the workers' output, would stamp arrivals late.
    const api = await startDemoApiProcess({ strictLimit: { requestsPerSecond: RATE, burst: 5 }, failureRate: 0, rateLimitRate: 0 });
    onTestFinished(() => api.close());
    await cli.allowLocal(api.url);
    const queue = uniqueQueue('e2e-lanes-mixed');
    const limits = { 'lanes-mixed-key': { requestsPerSecond: RATE, burst: 5 } };
    const config = { limits, targets: cli.localTargets() };
    const path = await cli.file(`${queue}.config.json`, JSON.stringify(config));
    await cli.startWorkers(3, { concurrency: 20, env: { SLUICE_QUEUE: queue, SLUICE_CONFIG: path } });

    const producer = createProducer({ connection: redis().url, queue, config: parseSluiceConfig(config), lanes: true });
    onTestFinished(() => producer.close());
    const post = (row: string) => ({
      method: 'POST',
      url: `${api.url}/records`,
      json: { row },
      limitKey: 'lanes-mixed-key',
      retry: { attempts: 10, baseDelayMs: 10, maxDelayMs: 50 },
    });
    const singlesBatch = 'lanes-mixed-singles';
    const SINGLES = 150;
    const LANE_BATCHES = 3;
    const LANED = 150;
    // Single jobs all along, in bursts of ten, and a lane batch every 600 ms among them: the key's
    // line holds single jobs, then lanes, then single jobs again, three times over.
    const singles = (async () => {
      const ids: string[] = [];
      for (let i = 0; i < SINGLES; i++) {
        ids.push((await producer.enqueue(post(`single-${i}`), { batchId: singlesBatch })).id);
        if (i % 10 === 9) await pause(200);
      }
      return ids;
    })();
    const laned = [];
    for (let b = 0; b < LANE_BATCHES; b++) {
      await pause(600);
      laned.push(await producer.enqueueMany(Array.from({ length: LANED }, (_, i) => post(`lane-${b}-${i}`))));
    }
    const singleIds = await singles;
    for (const summary of laned) {
      expect(summary).toMatchObject({ enqueued: LANED, duplicates: 0 });
      // Lanes of at most a second of the key's rate …
      const places = summary.results.map((result) => LANE_OP_ID.exec(result.id));
      expect(places.every((place) => place !== null && Number(place[2]) < RATE)).toBe(true);
      expect(new Set(places.map((place) => place![1])).size).toBeGreaterThanOrEqual(LANED / RATE);
    }
    // … and single jobs.
    expect(singleIds.some((id) => LANE_OP_ID.test(id))).toBe(false);

    const batches = createBatches(redis().client, queue);
    const expected: [string, number][] = [...laned.map((summary): [string, number] => [summary.batchId, LANED]), [singlesBatch, SINGLES]];
    for (const [batchId, total] of expected) {
      const status = await waitFor(
        async () => {
          const current = await batches.status(batchId);
          return current && current.pending === 0 && !current.enqueuing ? current : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 200, what: `batch ${batchId} to finish` },
      );
      expect(status).toMatchObject({ total, succeeded: total, deadLettered: 0 });
    }

    const { stats, arrivals } = await api.read();
    const span = (Math.max(...arrivals) - Math.min(...arrivals)) / 1_000;
    const seen = `${stats.limited} refused; ${((arrivals.length - 1) / span).toFixed(1)}/s over ${span.toFixed(1)} s; busiest second ${maxInWindow(arrivals, 1_000)}`;
    console.log(`lanes mixed: ${seen}`);
    expect(stats.limited, seen).toBe(0);
    expect(stats.created).toBe(LANE_BATCHES * LANED + SINGLES);
    expect(arrivals).toHaveLength(LANE_BATCHES * LANED + SINGLES);
  }, 60_000);
});
