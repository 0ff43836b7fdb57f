/**
 * The whole job with real processes: `sluice enqueue`, several `sluice worker`s, `sluice wait`,
 * `status`, `results` and `dlq`, against a private redis-server and real HTTP servers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { startDemoApi } from '../../src/demo/demo-api.js';
import { useCli, type CliProcess } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';
import { jsonl, jsonLines } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));
// Operations aimed at a closed loopback port (discard, 9) that no test expects to be reached.
beforeAll(() => cli.allowLocal('http://127.0.0.1:9'));

interface ResultLine {
  id: string;
  idempotencyKey: string;
  outcome: string;
  status?: number;
  attempts: number;
  meta?: { row?: number };
}

interface DeadLetterLine {
  id: string;
  batchId: string;
  reason: string;
  status: number;
  url: string;
  attempts: unknown[];
}

/** Enqueues a JSONL file with the CLI and returns the batch id it reports. */
async function enqueue(queue: string, name: string, ops: unknown[]): Promise<string> {
  const file = await cli.file(name, jsonl(ops));
  const result = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
  expect(result.code, result.stderr).toBe(0);
  const summary = JSON.parse(result.stdout) as { batchId: string; enqueued: number; duplicates: number; invalid: number };
  expect(summary).toMatchObject({ enqueued: ops.length, duplicates: 0, invalid: 0 });
  return summary.batchId;
}

describe('sluice worker processes (built binary)', () => {
  it('two workers drain 300 POSTs through 30% injected 503s; each record is created exactly once', async () => {
    const queue = uniqueQueue('e2e-workers');
    const api = await startDemoApi({ failureRate: 0.3, rateLimitRate: 0, latencyMs: { min: 1, max: 5 } });
    await cli.allowLocal(api.url);
    try {
      const ops = Array.from({ length: 300 }, (_, row) => ({
        method: 'POST',
        url: `${api.url}/records`,
        json: { sku: `SKU-${row}`, row },
        idempotencyKey: `e2e-row-${row}`,
        retry: { attempts: 20, baseDelayMs: 20, maxDelayMs: 200 },
        meta: { row },
      }));
      const batchId = await enqueue(queue, 'three-hundred.jsonl', ops);
      const workers = await cli.startWorkers(2, { concurrency: 20, env: { SLUICE_QUEUE: queue } });

      const waited = await cli.run(['wait', batchId, '--timeout', '120'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 125_000 });
      expect(waited.code, waited.stderr).toBe(0);
      expect(waited.stdout).toContain(`batch ${batchId}: 300 total, 300 succeeded, 0 dead-lettered, 0 pending`);

      // Idempotency: retried creates never made a second record.
      const records = api.records();
      expect(records).toHaveLength(300);
      expect(new Set(records.map((record) => record['sku'])).size).toBe(300);
      const stats = api.stats();
      expect(stats.created).toBe(300);
      expect(stats.status['503'] ?? 0).toBeGreaterThan(0);

      const status = await cli.run(['status', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
      expect(status.code).toBe(0);
      const counters = JSON.parse(status.stdout) as { retries: number };
      expect(counters).toMatchObject({ batchId, total: 300, succeeded: 300, deadLettered: 0, pending: 0 });
      // Every injected 503 was one retried attempt.
      expect(counters.retries).toBe(stats.status['503']);

      const results = await cli.run(['results', batchId], { env: { SLUICE_QUEUE: queue } });
      expect(results.code).toBe(0);
      const lines = jsonLines<ResultLine>(results.stdout);
      expect(lines).toHaveLength(300);
      expect(lines.every((line) => line.outcome === 'succeeded' && line.status === 201)).toBe(true);
      expect(new Set(lines.map((line) => line.idempotencyKey))).toEqual(new Set(ops.map((op) => op.idempotencyKey)));
      expect(lines.reduce((sum, line) => sum + line.attempts - 1, 0)).toBe(counters.retries);

      // Both processes took a share, and between them each operation succeeded once.
      const successes = (worker: CliProcess): number => worker.logs().filter((line) => line.msg === 'attempt succeeded').length;
      await waitFor(() => workers.reduce((sum, worker) => sum + successes(worker), 0) === 300, { what: 'every success logged' });
      for (const worker of workers) expect(successes(worker)).toBeGreaterThan(0);
    } finally {
      await api.close();
    }
  }, 150_000);

  it('404s end as dead letters (wait exits 1); purge wants --yes; replay after the target recovers completes the batch', async () => {
    const queue = uniqueQueue('e2e-dlq');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    // Three lookups fail once with a permanent 404 and answer 200 when asked again.
    for (const n of [1, 2, 3])
      target.script(`GET /things/missing-${n}`, [
        { status: 404, json: { error: 'not found' } },
        { status: 200, json: { id: `missing-${n}` } },
      ]);
    const ops = Array.from({ length: 20 }, (_, i) => {
      const path = i % 7 === 3 ? `/things/missing-${(i - 3) / 7 + 1}` : `/things/ok-${i}`;
      return { method: 'GET', url: `${target.url}${path}`, retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 } };
    });
    const batchId = await enqueue(queue, 'with-404s.jsonl', ops);
    await cli.startWorkers(1, { concurrency: 10, env: { SLUICE_QUEUE: queue } });

    const failed = await cli.run(['wait', batchId, '--timeout', '60', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 65_000 });
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ total: 20, succeeded: 17, deadLettered: 3, pending: 0, timedOut: false });

    const listed = await cli.run(['dlq', 'list', '--batch', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(listed.code).toBe(0);
    const deadLetters = jsonLines<DeadLetterLine>(listed.stdout);
    expect(deadLetters.map((entry) => entry.url).sort()).toEqual([1, 2, 3].map((n) => `${target.url}/things/missing-${n}`));
    for (const entry of deadLetters) {
      // A 404 is permanent: one attempt, never retried.
      expect(entry).toMatchObject({ batchId, reason: 'permanent-status', status: 404 });
      expect(entry.attempts).toHaveLength(1);
    }

    const unconfirmed = await cli.run(['dlq', 'purge', '--all'], { env: { SLUICE_QUEUE: queue } });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('add --yes to confirm');
    expect(await redis().client.hlen(`sluice:{${queue}}:dlq`)).toBe(3);

    const replayed = await cli.run(['dlq', 'replay', '--batch', batchId], { env: { SLUICE_QUEUE: queue } });
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toContain('replayed 3 dead letters');

    const done = await cli.run(['wait', batchId, '--timeout', '60', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 65_000 });
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ total: 20, succeeded: 20, deadLettered: 0, pending: 0 });

    const after = await cli.run(['dlq', 'list', '--batch', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(after.stdout).toBe('');
    for (const n of [1, 2, 3]) {
      expect(target.requests.filter((request) => request.path === `/things/missing-${n}`)).toHaveLength(2);
    }
    expect(target.requests).toHaveLength(23);
  }, 90_000);

  it('wait --timeout on a batch nobody works on exits 3 with the counters so far', async () => {
    const queue = uniqueQueue('e2e-idle');
    const batchId = await enqueue(queue, 'idle.jsonl', [
      { method: 'GET', url: 'http://127.0.0.1:9/never-1' },
      { method: 'GET', url: 'http://127.0.0.1:9/never-2' },
    ]);

    const started = Date.now();
    const waited = await cli.run(['wait', batchId, '--timeout', '1', '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(waited.code).toBe(3);
    expect(JSON.parse(waited.stdout)).toMatchObject({ batchId, total: 2, succeeded: 0, pending: 2, timedOut: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);

    const human = await cli.run(['wait', batchId, '--timeout', '0.2'], { env: { SLUICE_QUEUE: queue } });
    expect(human.code).toBe(3);
    expect(human.stdout).toContain('2 pending');
    expect(human.stdout).toContain('timed out');
  });
});
