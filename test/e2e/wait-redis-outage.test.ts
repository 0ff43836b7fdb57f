/**
 * `sluice wait` (the built binary) while its Redis goes away: a real redis-server killed and
 * started again on the same port (AOF on, so it comes back with its data), and one that never
 * comes back. The wait rides an outage out until its --timeout, says so on stderr, and exits 4
 * (not 1, which means dead letters) when Redis does not answer.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../src/support/redis-server.js';
import { useCli, type CliProcess } from '../helpers/cli-process.js';
import { uniqueQueue, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const cli = useCli();

async function privateRedis(args: string[] = []): Promise<RedisServerHandle> {
  const server = await startRedisServer({ args });
  onTestFinished(() => server.stop());
  return server;
}

/** Enqueues `count` GETs of the target as batch `batchId` with the CLI. */
async function enqueue(env: Record<string, string>, batchId: string, targetUrl: string, count: number): Promise<void> {
  const ops = Array.from({ length: count }, (_, n) => JSON.stringify({ method: 'GET', url: `${targetUrl}/items/${n}` }));
  const file = await cli.file(`${batchId}.jsonl`, `${ops.join('\n')}\n`);
  const result = await cli.run(['enqueue', file, '--batch', batchId], { env });
  expect(result.code, result.stderr).toBe(0);
}

/** Resolves once the process wrote `text` on stderr; fails with its output if it exits first. */
function stderrShows(proc: CliProcess, text: string, timeoutMs = 20_000): Promise<unknown> {
  return waitFor(
    () => {
      if (proc.stderr().includes(text)) return true;
      if (!proc.running()) throw new Error(`exited before writing ${JSON.stringify(text)}:\n${proc.stdout()}\n${proc.stderr()}`);
      return false;
    },
    { timeoutMs, what: `stderr to show ${JSON.stringify(text)}` },
  );
}

describe('sluice wait while Redis goes away', () => {
  it('rides out a Redis restart, says so on stderr, and ends with the batch (exit 0)', async () => {
    // Every write on disk before it is acknowledged: the restarted Redis has the batch.
    const server = await privateRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    const env = { REDIS_URL: server.url, SLUICE_QUEUE: uniqueQueue('e2e-outage') };
    await enqueue(env, 'outage', target.url, 3);

    const waiting = cli.spawn(['wait', 'outage', '--timeout', '90'], { env });
    await stderrShows(waiting, 'outage: 0/3');
    await server.kill();
    await stderrShows(waiting, 'is not answering');
    expect(waiting.stderr()).toContain('still waiting for batch outage, until --timeout');
    await server.restart();
    await stderrShows(waiting, 'answers again');
    await cli.startWorkers(1, { env });

    const result = await waiting.waitForExit(60_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('batch outage: 3 total, 3 succeeded, 0 dead-lettered, 0 pending');
    expect(result.stderr).not.toContain('unexpected error');
    expect(target.requests).toHaveLength(3);
  }, 90_000);

  it('exits 4 with the last counters when Redis is still gone at --timeout', async () => {
    const server = await privateRedis();
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    const env = { REDIS_URL: server.url, SLUICE_QUEUE: uniqueQueue('e2e-gone') };
    await enqueue(env, 'gone', target.url, 2);

    const started = Date.now();
    const waiting = cli.spawn(['wait', 'gone', '--timeout', '4'], { env });
    await stderrShows(waiting, 'gone: 0/2');
    await server.kill();
    const result = await waiting.waitForExit(30_000);
    expect(result.code, result.stderr).toBe(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
    expect(result.stderr).toContain('is not answering');
    expect(result.stderr).toMatch(/gave up: Redis at redis:\/\/127\.0\.0\.1:\d+ did not answer for \d+ s \(exit 4\)/);
    expect(result.stdout).toContain(
      'batch gone: 2 total, 0 succeeded, 0 dead-lettered, 2 pending (0 retried attempts) — Redis not answering',
    );
  }, 60_000);

  it('exits 4 when Redis never answered: wait (after its --timeout, JSON on stdout) and status', async () => {
    const server = await privateRedis();
    await server.stop();
    const env = { REDIS_URL: server.url, SLUICE_QUEUE: uniqueQueue('e2e-never') };

    const waited = await cli.run(['wait', 'never', '--timeout', '2', '--json'], { env, timeoutMs: 30_000 });
    expect(waited.code, waited.stderr).toBe(4);
    expect(JSON.parse(waited.stdout)).toEqual({ batchId: 'never', timedOut: true, redisUnreachable: true });
    expect(waited.stderr).toContain(`Redis at ${server.url} is not answering`);

    const status = await cli.run(['status', 'never'], { env, timeoutMs: 30_000 });
    expect(status.code, status.stderr).toBe(4);
    expect(status.stderr).toContain(`sluice: cannot reach Redis at ${server.url}`);
  }, 60_000);
});
