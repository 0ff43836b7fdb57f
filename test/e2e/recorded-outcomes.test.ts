/**
 * The crash window between recording an outcome and finishing the BullMQ job: a worker records
 * each outcome, then dies before BullMQ hears of it. The job is recovered by another worker,
 * which must finish it as recorded without sending the request again.
 */
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest } from '../helpers/target-server.js';
import { jsonl } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const countByKey = (requests: RecordedRequest[]): Map<string, number> => {
  const out = new Map<string, number>();
  for (const request of requests) {
    const key = request.headers['idempotency-key'] ?? '(none)';
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
};

/**
 * A Redis user that may write every key of `queue` except BullMQ's `completed` and `failed` sets
 * (and the limiter's, metrics' and auth keys): a worker using it records outcomes, but BullMQ's
 * script that finishes a job is refused (NOPERM), so each job stays active with its outcome
 * recorded — the crash window, held open.
 */
async function userThatCannotFinishJobs(queue: string): Promise<string> {
  const user = `window-${queue}`;
  await redis().client.call(
    'ACL',
    'SETUSER',
    user,
    'on',
    '>window-pw',
    // A key a script declares must be covered for both reading and writing by one pattern.
    '%R~*',
    `~sluice:{${queue}}:[^cf]*`,
    '~sluice:{limits:*',
    '~sluice:limits:*',
    '~sluice:metrics:*',
    '&*',
    '+@all',
  );
  const url = new URL(redis().url);
  url.username = user;
  url.password = 'window-pw';
  return url.toString();
}

describe('an outcome recorded before its worker died (built binary)', () => {
  it('is not sent again when the job is recovered: succeeded jobs complete, dead-lettered ones fail, each counted once', async () => {
    const queue = uniqueQueue('e2e-window');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    target.setDefault((request) =>
      request.path.startsWith('/gone') ? { status: 404, json: { error: 'gone' } } : { status: 201, json: {} },
    );
    const ops = Array.from({ length: 20 }, (_, i) => ({
      method: 'POST',
      url: `${target.url}/${i % 5 === 0 ? 'gone' : 'orders'}`,
      json: { i },
      idempotencyKey: `window-${i}`,
    }));
    const file = await cli.file('window.jsonl', jsonl(ops));
    const enqueued = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };
    const client = redis().client;
    const status = async () => {
      const result = await cli.run(['status', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
      return JSON.parse(result.stdout) as { succeeded: number; deadLettered: number; pending: number; retries: number };
    };

    // The first worker sends every request and records every outcome, but cannot finish a job.
    const [first] = await cli.startWorkers(1, {
      concurrency: 20,
      env: {
        SLUICE_QUEUE: queue,
        REDIS_URL: await userThatCannotFinishJobs(queue),
        // Its stall check blocks the others' for an interval: short, but longer than it takes to kill it.
        SLUICE_LOCK_DURATION_MS: '5000',
        SLUICE_STALLED_INTERVAL_MS: '2000',
      },
    });
    await waitFor(async () => (await status()).pending === 0, { timeoutMs: 20_000, what: 'every outcome recorded' });
    expect(await client.llen(`sluice:{${queue}}:active`)).toBe(20);
    expect(target.requests).toHaveLength(20);
    first!.signal('SIGKILL');
    await first!.waitForExit(10_000);

    // Another worker recovers the 20 jobs once their locks lapse.
    const [second] = await cli.startWorkers(1, {
      env: { SLUICE_QUEUE: queue, SLUICE_LOCK_DURATION_MS: '2000', SLUICE_STALLED_INTERVAL_MS: '1000' },
    });
    await waitFor(
      async () =>
        (await client.zcard(`sluice:{${queue}}:completed`)) === 16 &&
        (await client.zcard(`sluice:{${queue}}:failed`)) === 4 &&
        (await client.llen(`sluice:{${queue}}:active`)) === 0,
      { timeoutMs: 40_000, what: 'the recovered jobs to finish' },
    );

    // Not one request more: each operation reached the target once.
    expect([...countByKey(target.requests).values()]).toEqual(Array(20).fill(1));
    expect(await status()).toMatchObject({ succeeded: 16, deadLettered: 4, pending: 0, retries: 0 });
    expect(await client.hlen(`sluice:{${queue}}:dlq`)).toBe(4);
    // A recovered job's result is the line its first run recorded.
    const [jobId] = await client.zrange(`sluice:{${queue}}:completed`, 0, 0);
    const returned = JSON.parse((await client.hget(`sluice:{${queue}}:${jobId}`, 'returnvalue'))!) as { outcome: string; status: number };
    expect(returned).toMatchObject({ outcome: 'succeeded', status: 201 });
    // (The first worker may have recovered some of its own jobs too, had killing it taken longer than their locks.)
    const recovered = [...first!.logs(), ...second!.logs()].filter(
      (line) => line.msg === 'outcome already recorded; job finished without sending it again',
    );
    expect(new Set(recovered.map((line) => line.jobId)).size).toBe(20);
  }, 90_000);
});
