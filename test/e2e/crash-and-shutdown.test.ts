/**
 * Worker processes dying and stopping: a SIGKILLed worker's in-flight operations are taken over by
 * another worker (nothing lost), and SIGTERM lets in-flight requests finish but starts nothing new.
 */
import { describe, expect, it } from 'vitest';
import { now, useCli } from '../helpers/cli-process.js';
import { queuedOperations, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest } from '../helpers/target-server.js';
import { jsonl, jsonLines } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

interface ResultLine {
  idempotencyKey: string;
  outcome: string;
  status?: number;
  attempts: number;
}

function posts(
  count: number,
  url: string,
  keyPrefix: string,
): { method: string; url: string; json: unknown; idempotencyKey: string; retry: unknown }[] {
  return Array.from({ length: count }, (_, i) => ({
    method: 'POST',
    url,
    json: { i },
    idempotencyKey: `${keyPrefix}-${i}`,
    retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 },
  }));
}

async function enqueue(queue: string, name: string, ops: unknown[]): Promise<string> {
  const file = await cli.file(name, jsonl(ops));
  const result = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { batchId: string }).batchId;
}

const requestsByKey = (requests: RecordedRequest[]): Map<string, RecordedRequest[]> => {
  const out = new Map<string, RecordedRequest[]>();
  for (const request of requests) {
    const key = request.headers['idempotency-key'] ?? '(none)';
    out.set(key, [...(out.get(key) ?? []), request]);
  }
  return out;
};

describe('worker crash and shutdown (built binary)', () => {
  it("SIGKILL: the other worker takes over the dead worker's jobs once their locks expire; every operation succeeds", async () => {
    const queue = uniqueQueue('e2e-crash');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 1_500 }));
    const ops = posts(40, `${target.url}/orders`, 'crash');
    const env = { SLUICE_QUEUE: queue, SLUICE_LOCK_DURATION_MS: '2000', SLUICE_STALLED_INTERVAL_MS: '1000' };
    const [victim, survivor] = await cli.startWorkers(2, { concurrency: 10, env });
    const batchId = await enqueue(queue, 'crash.jsonl', ops);

    // Each worker runs at most 10 at once: more than 10 in flight means both hold requests.
    await waitFor(() => target.inFlight() > 10, { timeoutMs: 20_000, what: 'both workers to have requests in flight' });
    const killedAt = now();
    victim!.signal('SIGKILL');
    const killed = await victim!.waitForExit(10_000);
    expect(killed.signal).toBe('SIGKILL');

    const waited = await cli.run(['wait', batchId, '--timeout', '60', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 65_000 });
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 40, succeeded: 40, deadLettered: 0, pending: 0 });
    expect(survivor!.running()).toBe(true);

    // Nothing lost: every key reached the target, and the dead worker's requests were sent again.
    const byKey = requestsByKey(target.requests);
    expect([...byKey.keys()].sort()).toEqual(ops.map((op) => op.idempotencyKey).sort());
    const resent = [...byKey.values()].filter((requests) => requests.length > 1);
    // (A survivor's own job may be resent too if its lock renewal lagged on a busy machine.)
    expect(resent.some((requests) => requests[0]!.startedAt < killedAt)).toBe(true);

    const results = await cli.run(['results', batchId], { env: { SLUICE_QUEUE: queue } });
    const lines = jsonLines<ResultLine>(results.stdout);
    expect(lines).toHaveLength(40);
    expect(lines.every((line) => line.outcome === 'succeeded' && line.status === 200)).toBe(true);
    expect(await redis().client.hlen(`sluice:{${queue}}:dlq`)).toBe(0);
  }, 90_000);

  it('SIGTERM: in-flight requests finish and succeed, then the worker exits 0; jobs not yet started stay queued', async () => {
    const queue = uniqueQueue('e2e-term');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 1_000 }));
    const ops = posts(8, `${target.url}/orders`, 'term');
    const batchId = await enqueue(queue, 'term.jsonl', ops);
    const [worker] = await cli.startWorkers(1, { concurrency: 3, env: { SLUICE_QUEUE: queue, SLUICE_SHUTDOWN_TIMEOUT_MS: '20000' } });

    await waitFor(() => target.inFlight() === 3, { timeoutMs: 20_000, what: 'three requests in flight' });
    const signalledAt = now();
    worker!.signal('SIGTERM');
    const exit = await worker!.waitForExit(20_000);

    expect(exit.code).toBe(0);
    expect(worker!.logs().map((line) => line.msg)).toEqual(expect.arrayContaining(['shutdown requested', 'worker stopped']));
    // Only the three that were in flight were ever sent, each once, and each was answered
    // before the worker exited.
    expect(target.requests).toHaveLength(3);
    const exitedAt = worker!.exitedAt()!;
    for (const request of target.requests) {
      expect(request.startedAt).toBeLessThan(signalledAt);
      expect(request.endedAt).toBeDefined();
      expect(request.endedAt!).toBeLessThanOrEqual(exitedAt);
    }
    const sentKeys = target.requests.map((request) => request.headers['idempotency-key']);
    expect(new Set(sentKeys).size).toBe(3);

    const status = await cli.run(['status', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(JSON.parse(status.stdout)).toMatchObject({ total: 8, succeeded: 3, deadLettered: 0, pending: 5, retries: 0 });
    const results = await cli.run(['results', batchId], { env: { SLUICE_QUEUE: queue } });
    const lines = jsonLines<ResultLine>(results.stdout);
    expect(lines.map((line) => line.idempotencyKey).sort()).toEqual([...sentKeys].sort());
    expect(lines.every((line) => line.outcome === 'succeeded' && line.status === 200 && line.attempts === 1)).toBe(true);

    // The other five wait in the queue for the next worker: not active, not lost.
    const client = redis().client;
    expect(await client.llen(`sluice:{${queue}}:active`)).toBe(0);
    expect(await queuedOperations(client, queue)).toBe(5);
  }, 60_000);
});
