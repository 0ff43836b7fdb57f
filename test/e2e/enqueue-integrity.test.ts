/**
 * `sluice enqueue` (the built binary) when things go wrong: Redis killed in the middle of a large
 * file and restarted, batch ids that would name another batch's keys.
 */
import { writeFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { queueKeys } from '../../src/redis/keys.js';
import { startRedisServer } from '../../src/support/redis-server.js';
import { useCli } from '../helpers/cli-process.js';
import { startCrashProxy } from '../helpers/crash-proxy.js';
import { queuedOperations, uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { jsonl } from '../helpers/json-lines.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));
// Operations aimed at a closed loopback port (discard, 9) that no test expects to be reached.
beforeAll(() => cli.allowLocal('http://127.0.0.1:9'));

/** `count` operations to a closed loopback port; every third has an idempotency key; `meta.n` numbers them. */
function operations(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, n) => ({
    method: 'POST',
    url: 'http://127.0.0.1:9/items',
    json: { n },
    meta: { n },
    ...(n % 3 === 0 ? { idempotencyKey: `e2e-item-${n}` } : {}),
  }));
}

describe('sluice enqueue when Redis dies part-way', () => {
  it('says how much was written and the command that finishes the batch; that command adds only what is missing', async () => {
    const server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    onTestFinished(() => server.stop());
    // Chunks of 500: calls 1–4 write 2,000 operations, Redis is killed just before call 5.
    const proxy = await startCrashProxy(server, { script: 'add-jobs', call: 5 });
    const queue = uniqueQueue('e2e-crash');
    const file = await cli.file('five-thousand.jsonl', jsonl(operations(5_000)));

    const failed = await cli.run(['enqueue', file, '--batch', 'crash-e2e', '--json'], {
      env: { SLUICE_QUEUE: queue, REDIS_URL: proxy.url },
    });
    await proxy.crashed;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('2000 of 5000 operations were written to batch crash-e2e before it stopped');
    const command = /finish the batch with\n {2}(sluice .+)\n/.exec(failed.stderr)?.[1];
    expect(command).toBe(`sluice enqueue ${file} --batch crash-e2e --json`);
    expect(JSON.parse(failed.stdout)).toEqual({
      batchId: 'crash-e2e',
      enqueued: 2000,
      duplicates: 0,
      alreadyEnqueued: 0,
      invalid: 0,
      complete: false,
      error: expect.stringMatching(/max retries per request/),
      resume: command,
    });

    await server.restart();
    const client = createRedisConnection(server.url, { name: 'test' });
    onTestFinished(() => closeRedis(client));
    expect(await queuedOperations(client, queue)).toBe(2_000);
    expect(await client.hget(queueKeys(queue).batch('crash-e2e'), 'total')).toBe('2000');

    const finished = await cli.run(command!.split(' ').slice(1), { env: { SLUICE_QUEUE: queue, REDIS_URL: server.url } });
    expect(finished.stderr).not.toContain('sluice:');
    expect(finished.code).toBe(0);
    expect(JSON.parse(finished.stdout)).toEqual({ batchId: 'crash-e2e', enqueued: 3000, duplicates: 0, alreadyEnqueued: 2000, invalid: 0 });
    const again = await cli.run(['enqueue', file, '--batch', 'crash-e2e'], { env: { SLUICE_QUEUE: queue, REDIS_URL: server.url } });
    expect(again.stdout).toContain(
      `enqueued 0 operations into batch crash-e2e (queue ${queue}; 0 duplicates, 0 invalid skipped; 5000 already in the batch)`,
    );

    // Every operation once: nothing missing, nothing twice, and the total says so.
    expect(await client.hget(queueKeys(queue).batch('crash-e2e'), 'total')).toBe('5000');
    const ids = await client.zrange(`sluice:{${queue}}:prioritized`, 0, -1);
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.hget(`sluice:{${queue}}:${id}`, 'data');
    const seen = ((await pipeline.exec()) ?? []).map(
      ([, data]) => (JSON.parse(data as string) as { op: { meta: { n: number } } }).op.meta.n,
    );
    expect(seen).toHaveLength(5_000);
    expect(new Set(seen).size).toBe(5_000);
  });
});

describe('sluice enqueue: its progress when Redis dies part-way', () => {
  it('counts what was written, so it never reaches 100 % before it says it stopped', async () => {
    const server = await startRedisServer();
    onTestFinished(() => server.stop());
    // Chunks of 500: calls 1 and 2 write 1,000 operations, Redis is killed just before call 3.
    const proxy = await startCrashProxy(server, { script: 'add-jobs', call: 3 });
    const file = await cli.file('fifteen-hundred.jsonl', jsonl(operations(1_500)));

    const failed = await cli.run(['enqueue', file, '--batch', 'progress-e2e'], {
      env: { SLUICE_QUEUE: uniqueQueue('e2e-progress'), REDIS_URL: proxy.url },
    });
    await proxy.crashed;
    expect(failed.code).toBe(1);
    // Not a terminal: plain lines, the first at the first chunk written (reading had reached every line by then).
    expect(failed.stderr).toMatch(/^enqueue: 500\/1500 \(33%\)/m);
    expect(failed.stderr).not.toContain('1500/1500');
    expect(failed.stderr).toContain('1000 of 1500 operations were written to batch progress-e2e before it stopped');
  });
});

describe('sluice enqueue: its progress while it checks a long input', () => {
  it('shows how much of the file the check pass has read, and how many lines, once it takes a while', async () => {
    // 500,000 lines: ~3 s of checking on a 2-core machine (the progress shows after 1 s).
    const lines = 500_000;
    const line = (n: number) => `${JSON.stringify({ method: 'POST', url: 'http://127.0.0.1:9/items', json: { n } })}\n`;
    const chunks: string[] = [];
    for (let n = 0; n < lines; n++) chunks.push(line(n));
    const file = await cli.file('half-a-million.jsonl', chunks.join(''));
    const checked = await cli.run(['enqueue', file, '--dry-run'], {
      env: { SLUICE_QUEUE: uniqueQueue('e2e-check-progress') },
      timeoutMs: 60_000,
    });
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toBe(`dry run: ${lines} valid operations, 0 invalid; nothing enqueued\n`);
    // Plain lines without a terminal: bytes read of the file's size, then all of it, with the lines so far.
    const shown = checked.stderr.split('\n').filter((text) => text.startsWith('checking: '));
    expect(shown.length, checked.stderr).toBeGreaterThanOrEqual(1);
    expect(shown.at(-1)).toMatch(new RegExp(`^checking: (\\S+ [KMG]?B)/\\1 \\(100%\\) \\S+ [KMG]?B/s ${lines} lines$`));
    // A small input checks within the second: nothing shown.
    const small = await cli.file('small.jsonl', line(1));
    const quick = await cli.run(['enqueue', small, '--dry-run'], { env: { SLUICE_QUEUE: uniqueQueue('e2e-check-progress') } });
    expect(quick.stderr).not.toContain('checking');
  }, 90_000);
});

describe('sluice enqueue: batch ids', () => {
  it('refuses a batch id with `:`, naming it, before reading the input', async () => {
    const queue = uniqueQueue('e2e-ids');
    const file = await cli.file('one.jsonl', jsonl(operations(1)));
    for (const batch of ['srv1:results', 'srv1:enqueuing']) {
      const result = await cli.run(['enqueue', file, '--batch', batch], { env: { SLUICE_QUEUE: queue } });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`sluice: --batch "${batch}": a batch id has letters, digits and _ . - only, at most 128\n`);
    }
    const status = await cli.run(['status', 'srv1:results'], { env: { SLUICE_QUEUE: queue } });
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('batch "srv1:results": a batch id has letters, digits and _ . - only');
    expect(await redis().client.keys(`sluice:{${queue}}:*`)).toEqual([]);
  });
});

describe('sluice enqueue: operations nested too deep', () => {
  it('refuses a line 5,000 levels deep alike in --dry-run and in the real enqueue, naming line and path', async () => {
    const queue = uniqueQueue('e2e-deep');
    const [first, second, third] = operations(3).map((op) => JSON.stringify(op));
    const deep = second!.replace('"json":{"n":1}', `"json":${'['.repeat(5_000)}${']'.repeat(5_000)}`);
    const file = await cli.file('deep.jsonl', `${first}\n${deep}\n${third}\n`);
    const problem = 'line 2: json[0][0][0][0][0][0][0]…: objects and arrays nested more than 64 levels deep (the operation is the first)\n';

    const dry = await cli.run(['enqueue', file, '--dry-run'], { env: { SLUICE_QUEUE: queue } });
    expect(dry.code).toBe(2);
    expect(dry.stderr).toBe(`${problem}nothing enqueued: 1 of 3 lines are invalid (fix them, or pass --skip-invalid)\n`);

    const real = await cli.run(['enqueue', file, '--batch', 'deep'], { env: { SLUICE_QUEUE: queue } });
    expect(real.code).toBe(2);
    expect(real.stderr).toBe(dry.stderr);
    expect(await redis().client.keys(`sluice:{${queue}}:*`)).toEqual([]);

    const skipped = await cli.run(['enqueue', file, '--batch', 'deep', '--skip-invalid', '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(skipped.code).toBe(2);
    expect(JSON.parse(skipped.stdout)).toEqual({ batchId: 'deep', enqueued: 2, duplicates: 0, alreadyEnqueued: 0, invalid: 1 });
  });
});

describe('sluice enqueue: input that is not UTF-8', () => {
  it('refuses the line, naming it and the byte, and enqueues nothing', async () => {
    const queue = uniqueQueue('e2e-utf8');
    const [first, second] = operations(2).map((op) => JSON.stringify(op));
    // Line 2 spells "café" in Latin-1: the é is the byte 0xE9.
    const latin1 = Buffer.concat([
      Buffer.from(`${first}\n{"method":"GET","url":"http://127.0.0.1:9/caf`),
      Buffer.from([0xe9]),
      Buffer.from(`"}\n${second}\n`),
    ]);
    const file = await cli.file('latin1.jsonl', latin1.toString('latin1'));
    await writeFile(file, latin1);

    const result = await cli.run(['enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^line 2: not valid UTF-8 at byte 46 of the line; sluice reads UTF-8 only/m);
    expect(result.stderr).toContain('nothing enqueued: 1 of 3 lines are invalid');
    expect(await redis().client.keys(`sluice:{${queue}}:*`)).toEqual([]);
  });
});
