/**
 * `sluice demo` as a newcomer runs it: one command that starts a demo API and two worker
 * processes, runs a batch through injected 503s/429s and a few 404s, prints a summary, and cleans up.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('sluice demo (built binary)', () => {
  it('runs 300 operations with two workers: 297 records created exactly once, 3 dead letters, nothing left behind', async () => {
    const demo = await cli.run(['demo', '--operations', '300'], { timeoutMs: 100_000 });
    expect(demo.code, `${demo.stdout}\n${demo.stderr}`).toBe(0);

    const out = demo.stdout;
    expect(out).toContain(`using Redis at ${redis().url} (REDIS_URL)`);
    expect(out).toContain('sluice demo summary');
    expect(out).toMatch(/^ {2}operations {6}300$/m);
    expect(out).toMatch(/^ {2}succeeded {7}297$/m);
    // 1% of the operations are GETs of records that do not exist: 404, dead-lettered, not retried.
    expect(out).toMatch(/^ {2}dead-lettered {3}3 \(GETs of records that do not exist/m);
    expect(out).toContain('records created 297 of 297 POSTs — each exactly once, thanks to idempotency keys');
    expect(out).not.toContain('MISMATCH');
    expect(out).not.toContain('cleanup:');

    // The demo's queue, batch, results and dead letters are gone from the Redis it was given.
    expect(await redis().client.keys('*')).toEqual([]);

    // Its worker processes are gone too.
    const logPath = /started 2 worker processes .*; logs (.+)\)$/m.exec(out)?.[1];
    expect(logPath).toBeDefined();
    try {
      const workerLog = await readFile(logPath!, 'utf8');
      const pids = workerLog
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg?: string; pid?: number })
        .filter((line) => line.msg === 'worker started')
        .map((line) => line.pid!);
      expect(pids).toHaveLength(2);
      expect(pids.filter(isAlive)).toEqual([]);
    } finally {
      await rm(dirname(logPath!), { recursive: true, force: true });
    }
  }, 120_000);
});
