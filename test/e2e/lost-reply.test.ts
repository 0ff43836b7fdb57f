/**
 * A reply Redis never sent (it ran the call, then shut down or lost the connection before
 * answering), with real worker processes (the built binary): BullMQ's completion of a job, which
 * also fetches the next one, runs in Redis but its reply is lost. The next job is then in `active`
 * under the worker's lock with no process running it; the worker finds it after reconnecting and
 * puts it back, instead of leaving it to BullMQ's stalled-job check 30–60 s later.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startRedisServer } from '../../src/support/redis-server.js';
import { useCli } from '../helpers/cli-process.js';
import { jsonl } from '../helpers/json-lines.js';
import { startLostReplyProxy } from '../helpers/lost-reply-proxy.js';
import { uniqueQueue, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

/** The worker's Redis, behind the proxy (set by the test before any command). */
let workerRedis = '';
const cli = useCli(() => ({ REDIS_URL: workerRedis }));

describe('a job fetched by a call whose reply was lost', () => {
  it('is put back in the queue when the worker reconnects: the batch ends within seconds, each operation sent once', async () => {
    const server = await startRedisServer();
    onTestFinished(() => server.stop());
    const proxy = await startLostReplyProxy(server.port);
    workerRedis = proxy.url;
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    // Slow answers, no limit: jobs always wait, so each completion fetches the next job.
    target.setDefault(() => ({ status: 200, json: { ok: true }, delayMs: 100 }));
    const queue = uniqueQueue('e2e-lost-reply');
    const file = await cli.file(
      'lost-reply.jsonl',
      jsonl(Array.from({ length: 60 }, (_, n) => ({ method: 'POST', url: `${target.url}/items/${n}` }))),
    );
    const env = { SLUICE_QUEUE: queue };
    const [worker] = await cli.startWorkers(1, { concurrency: 5, env });
    // Enqueued past the proxy: only the worker's calls go through it.
    const enqueued = await cli.run(['enqueue', file, '--json'], { env: { ...env, REDIS_URL: server.url } });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };
    await waitFor(() => target.requests.length >= 10, { timeoutMs: 20_000, what: 'the first requests' });

    // The next completion (BullMQ's moveToFinished names the queue's active list and completed set).
    await proxy.loseNext([`{${queue}}:active`, `{${queue}}:completed`]);
    const cutAt = Date.now();
    // Without the worker putting it back, the orphan waits out its lock and a stalled check (30–60 s).
    const waited = await cli.run(['wait', batchId, '--timeout', '20', '--json'], {
      env: { ...env, REDIS_URL: server.url },
      timeoutMs: 30_000,
    });
    expect(waited.code, waited.stdout).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 60, succeeded: 60, deadLettered: 0 });
    expect(Date.now() - cutAt).toBeLessThan(15_000);
    const reclaimed = worker!.logs().filter((line) => String(line.msg).includes('whose reply Redis never sent'));
    // At least the job the lost completion fetched (a fetch of another slot may have been lost with it).
    expect(reclaimed).toHaveLength(1);
    expect(Number(reclaimed[0]!.jobs)).toBeGreaterThanOrEqual(1);
    // Each operation reached the target once: the job put back had not started.
    const paths = target.requests.map((request) => request.path);
    expect(paths).toHaveLength(60);
    expect(new Set(paths).size).toBe(60);
  }, 60_000);
});
