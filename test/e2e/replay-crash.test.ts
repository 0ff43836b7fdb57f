/**
 * A dead-letter replay in lanes SIGKILLed part-way, then run again (built binary, real worker
 * processes): each dead letter goes back once, so each operation is sent exactly once more, and
 * the batch's counts end exact.
 */
import { describe, expect, it } from 'vitest';
import { createBatches } from '../../src/outcomes/batches.js';
import { queueKeys } from '../../src/redis/keys.js';
import { useCli } from '../helpers/cli-process.js';
import { jsonl } from '../helpers/json-lines.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

describe('dlq replay in lanes, killed part-way (built binary)', () => {
  it('SIGKILLed mid-replay and run again: each dead letter goes back once, each operation is sent once more', async () => {
    const COUNT = 600;
    const queue = uniqueQueue('e2e-replay-crash');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    let fixed = false;
    const sends = new Map<string, number>();
    target.setDefault((request) => {
      const key = request.headers['idempotency-key'] as string;
      sends.set(key, (sends.get(key) ?? 0) + 1);
      return fixed ? { status: 200, json: { ok: true } } : { status: 422, json: { error: 'invalid' } };
    });
    // Lanes of 2: a replay writes 300 lanes, one script call each, so the kill lands part-way.
    const env = { SLUICE_QUEUE: queue, SLUICE_LANES: 'on', SLUICE_LANE_SIZE: '2' };
    const ops = Array.from({ length: COUNT }, (_, i) => ({ method: 'POST', url: `${target.url}/items`, json: { i } }));
    const file = await cli.file('replay-crash.jsonl', jsonl(ops));
    const enqueued = await cli.run(['enqueue', file, '--json'], { env, timeoutMs: 30_000 });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };
    const batches = createBatches(redis().client, queue);
    const [worker] = await cli.startWorkers(1, { concurrency: 50, env });
    await waitFor(async () => (await batches.status(batchId))?.deadLettered === COUNT, {
      timeoutMs: 60_000,
      what: 'every operation dead-lettered',
    });
    worker!.signal('SIGTERM');
    expect((await worker!.waitForExit(15_000)).code).toBe(0);
    fixed = true;

    // The first replay is SIGKILLed as soon as its first lanes are written.
    const deadLetters = queueKeys(queue).deadLetters;
    const first = cli.spawn(['dlq', 'replay', '--batch', batchId], { env });
    await waitFor(async () => (await redis().client.hlen(deadLetters)) < COUNT || !first.running(), {
      timeoutMs: 30_000,
      intervalMs: 1,
      what: 'the replay to begin',
    });
    await first.kill();
    const left = await redis().client.hlen(deadLetters);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(COUNT);
    // What it wrote is on its way again: the batch waits for exactly those.
    expect(await batches.status(batchId)).toMatchObject({ deadLettered: left, pending: COUNT - left });

    // Run again twice at once (two operators, a retried script): between them each dead letter goes
    // back once; each exits 0, the one that found some taken by the other says how many, in one line.
    const again = await Promise.all([0, 1].map(() => cli.run(['dlq', 'replay', '--batch', batchId], { env, timeoutMs: 30_000 })));
    const replayedBy = again.map((run) => {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toContain('no dead letter');
      expect(run.stderr.trim().split('\n').filter(Boolean).length).toBeLessThanOrEqual(1);
      return Number(/replayed (\d+) dead letters/.exec(run.stdout)![1]);
    });
    expect(replayedBy[0]! + replayedBy[1]!).toBe(left);
    expect(await redis().client.hlen(deadLetters)).toBe(0);

    await cli.startWorkers(1, { concurrency: 50, env });
    await waitFor(async () => (await batches.status(batchId))?.pending === 0, { timeoutMs: 60_000, what: 'the batch to settle' });
    expect(await batches.status(batchId)).toMatchObject({ total: COUNT, succeeded: COUNT, deadLettered: 0 });
    expect(sends.size).toBe(COUNT);
    expect([...sends.values()].every((n) => n === 2)).toBe(true);
  }, 120_000);
});
