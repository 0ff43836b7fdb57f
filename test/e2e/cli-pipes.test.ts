/**
 * The built `sluice` writing into a pipe whose reader goes away, as `sluice results B | head -1`
 * does: the command stops producing (a streaming `results` stops reading Redis), closes its
 * connection and exits 0 without a word on stderr, like git and ripgrep.
 */
import { describe, expect, it } from 'vitest';
import { queueKeys } from '../../src/redis/keys.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const RESULTS = 5_000;

/** A finished batch of RESULTS result lines, written where sluice's outcome store writes them. */
async function finishedBatch(queue: string, batchId: string): Promise<void> {
  const keys = queueKeys(queue);
  const fields: string[] = [];
  for (let n = 0; n < RESULTS; n++) {
    const line: ResultLine = {
      id: `op-${n}`,
      jobId: `u-${n}`,
      idempotencyKey: `key-${n}`,
      outcome: 'succeeded',
      status: 200,
      attempts: 1,
      durationMs: 12,
      result: { headers: { contentType: 'application/json' }, body: { n, note: 'x'.repeat(120) }, bodyBytes: 140, bodyTruncated: false },
    };
    fields.push(line.id, JSON.stringify(line));
  }
  await redis().client.hset(keys.batch(batchId), { total: RESULTS, succeeded: RESULTS, createdAt: new Date().toISOString() });
  await redis().client.hset(keys.batchResults(batchId), ...fields);
}

/** HSCAN calls Redis served since the last call (CONFIG RESETSTAT). */
async function hscanCalls(): Promise<number> {
  const info = await redis().client.info('commandstats');
  await redis().client.config('RESETSTAT');
  return Number(/cmdstat_hscan:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('sluice writing into a pipe that closes', () => {
  it('results | head -1: one line, exit 0, nothing on stderr, and the HSCAN of the batch stops', async () => {
    const queue = uniqueQueue('e2e-pipe');
    await finishedBatch(queue, 'big');
    const env = { SLUICE_QUEUE: queue };

    await hscanCalls();
    const full = await cli.run(['results', 'big'], { env });
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout.trim().split('\n')).toHaveLength(RESULTS);
    const fullScans = await hscanCalls();

    const started = Date.now();
    const piped = await cli.run(['results', 'big'], { env, closeStdoutAfterLines: 1, timeoutMs: 10_000 });
    const elapsed = Date.now() - started;
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.signal).toBeNull();
    expect(piped.stderr).toBe('');
    expect((JSON.parse(piped.stdout.split('\n')[0]!) as ResultLine).outcome).toBe('succeeded');
    const pipedScans = await hscanCalls();
    expect(fullScans).toBeGreaterThanOrEqual(8);
    expect(pipedScans, `HSCANs: ${pipedScans} piped, ${fullScans} for the whole batch`).toBeLessThanOrEqual(2);
    expect(elapsed).toBeLessThan(5_000);
    // Its connection is closed: no client of the CLI left on the server.
    const clients = await redis().client.client('LIST');
    expect(String(clients)).not.toContain('name=sluice:cli');
  }, 60_000);

  it('results --format csv | head -2: exit 0, nothing on stderr', async () => {
    const queue = uniqueQueue('e2e-pipe-csv');
    await finishedBatch(queue, 'csv');
    const piped = await cli.run(['results', 'csv', '--format', 'csv'], { env: { SLUICE_QUEUE: queue }, closeStdoutAfterLines: 2 });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout.split('\n')[0]).toBe('id,outcome,status,attempts,durationMs,reason,error,finishedAt');
  }, 60_000);

  it.each([
    { args: ['status', 'closed', '--json'] },
    { args: ['dlq', 'list', '--json'] },
    { args: ['dlq', 'list'] },
    { args: ['limits', '--json'] },
    { args: ['--help'] },
    { args: ['--version'] },
  ])('sluice $args | true: exit 0, nothing on stderr', async ({ args }) => {
    const queue = uniqueQueue('e2e-pipe-closed');
    await redis().client.hset(queueKeys(queue).batch('closed'), { total: 0, createdAt: new Date().toISOString() });
    const result = await cli.run(args, { env: { SLUICE_QUEUE: queue }, closeStdoutAfterLines: 0 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
  });
});
