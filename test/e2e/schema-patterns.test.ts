/**
 * A worker process must never hang on an `expect.schema` pattern that backtracks catastrophically
 * on what the target sends: the job ends (here as a schema mismatch) and the worker goes on.
 */
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

describe('hostile expect.schema patterns in a worker process (built binary)', () => {
  it('ends the job with a schema mismatch in linear time, and the worker keeps serving', async () => {
    const queue = uniqueQueue('e2e-redos');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    // Each pattern takes V8's backtracking engine exponential time on its text: ~2^50000 steps.
    const hostile = 'a'.repeat(50_000);
    target.script('GET /hostile', [{ status: 200, json: { name: `${hostile}!`, tags: { [`${hostile}!`]: 1 } } }]);
    target.script('GET /normal', [{ status: 200, json: { name: 'aaa', tags: { aa: 1 } } }]);
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', pattern: '^(a+)+$' },
        tags: { type: 'object', propertyNames: { pattern: '^(a|aa)*$' }, patternProperties: { '^(\\w+\\s?)*$': { type: 'integer' } } },
      },
    };
    const ops = ['hostile', 'normal'].map((path) => ({
      method: 'GET',
      url: `${target.url}/${path}`,
      expect: { schema },
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    }));
    const file = await cli.file('redos.jsonl', ops.map((op) => JSON.stringify(op)).join('\n'));
    const enqueued = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };
    await cli.startWorkers(1, { concurrency: 2, env: { SLUICE_QUEUE: queue } });

    const waited = await cli.run(['wait', batchId, '--timeout', '30', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 35_000 });
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 2, succeeded: 1, deadLettered: 1, pending: 0, timedOut: false });

    const listed = await cli.run(['dlq', 'list', '--batch', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
    const [letter, ...others] = listed.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { url: string; reason: string; message: string; attempts: unknown[] });
    expect(others).toEqual([]);
    expect(letter).toMatchObject({ url: `${target.url}/hostile`, reason: 'schema-mismatch' });
    // Permanent: the same body would fail the same way.
    expect(letter!.attempts).toHaveLength(1);
    expect(letter!.message).toContain('/name: must match pattern "^(a+)+$"');
    expect(letter!.message).toContain('/tags: property name must be valid');
  }, 60_000);
});
