/**
 * `sluice enqueue` as a user runs it: the built binary in a child process, against a private
 * redis-server. What lands in Redis is checked with a Redis client of the test.
 */
import { execFileSync } from 'node:child_process';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { queuedOperations, uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));
// Operations aimed at a closed loopback port (discard, 9) that no test expects to be reached.
beforeAll(() => cli.allowLocal('http://127.0.0.1:9'));

const jsonl = (ops: unknown[]): string => `${ops.map((op) => (typeof op === 'string' ? op : JSON.stringify(op))).join('\n')}\n`;

/** Every key sluice and BullMQ keep for a queue. */
const queueKeys = (queue: string): Promise<string[]> => redis().client.keys(`sluice:{${queue}}:*`);
const waitingJobs = (queue: string): Promise<number> => queuedOperations(redis().client, queue);

const ENQUEUE_SUMMARY = { batchId: expect.stringMatching(/^b-/), enqueued: 0, duplicates: 0, alreadyEnqueued: 0, invalid: 0 };

/** Five lines: line 3 misspells `json`, line 5 is not JSON. */
const withTwoBadLines = jsonl([
  { method: 'POST', url: 'http://127.0.0.1:9/orders', json: { n: 1 } },
  { method: 'GET', url: 'http://127.0.0.1:9/orders/1', idempotencyKey: 'get-1' },
  { method: 'POST', url: 'http://127.0.0.1:9/orders', jsn: { n: 3 } },
  { method: 'DELETE', url: 'http://127.0.0.1:9/orders/4' },
  '{"method": "GET", "url": ',
]);

describe('sluice enqueue (built binary)', () => {
  it('refuses a file with invalid lines: exit 2, each problem named with its line, nothing enqueued', async () => {
    const queue = uniqueQueue('e2e-enq');
    const file = await cli.file('two-bad-lines.jsonl', withTwoBadLines);

    const result = await cli.run(['enqueue', file], { env: { SLUICE_QUEUE: queue } });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line 3: jsn: unknown field');
    expect(result.stderr).toMatch(/^line 5: not valid JSON/m);
    expect(result.stderr).toContain('nothing enqueued: 2 of 5 lines are invalid');
    // Only the bad lines are reported.
    expect(result.stderr).not.toMatch(/^line [124]:/m);
    expect(result.stdout).toBe('');
    expect(await waitingJobs(queue)).toBe(0);
    expect(await queueKeys(queue)).toEqual([]);
  });

  it('--skip-invalid enqueues the valid lines; --json prints the counts; the exit code still reports the invalid ones', async () => {
    const queue = uniqueQueue('e2e-enq');
    const file = await cli.file('skip-invalid.jsonl', withTwoBadLines);

    const result = await cli.run(['enqueue', file, '--skip-invalid', '--json'], { env: { SLUICE_QUEUE: queue } });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line 3: jsn: unknown field');
    expect(result.stderr).toMatch(/^line 5: not valid JSON/m);
    const summary = JSON.parse(result.stdout) as { batchId: string };
    expect(summary).toEqual({ ...ENQUEUE_SUMMARY, enqueued: 3, invalid: 2 });
    expect(await waitingJobs(queue)).toBe(3);
    const batch = await redis().client.hgetall(`sluice:{${queue}}:batch:${summary.batchId}`);
    expect(batch['total']).toBe('3');
  });

  it('--dry-run validates and enqueues nothing', async () => {
    const queue = uniqueQueue('e2e-enq');
    const valid = await cli.file(
      'valid.jsonl',
      jsonl([
        { method: 'GET', url: 'http://127.0.0.1:9/a' },
        { method: 'GET', url: 'http://127.0.0.1:9/b' },
        '',
        { method: 'PUT', url: 'http://127.0.0.1:9/c', json: { ok: true } },
      ]),
    );
    const mixed = await cli.file('dry-run-mixed.jsonl', withTwoBadLines);

    const clean = await cli.run(['enqueue', valid, '--dry-run'], { env: { SLUICE_QUEUE: queue } });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toBe('dry run: 3 valid operations, 0 invalid; nothing enqueued\n');

    const dirty = await cli.run(['enqueue', mixed, '--dry-run', '--skip-invalid', '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(dirty.code).toBe(2);
    expect(JSON.parse(dirty.stdout)).toEqual({
      batchId: null,
      enqueued: 0,
      duplicates: 0,
      alreadyEnqueued: 0,
      invalid: 2,
      valid: 3,
      dryRun: true,
    });
    expect(dirty.stderr).toContain('line 3: jsn: unknown field');

    expect(await queueKeys(queue)).toEqual([]);
  });

  it('reads operations from stdin with -, validating them like a file', async () => {
    const queue = uniqueQueue('e2e-enq');
    const ops = [1, 2, 3, 4].map((n) => ({ method: 'POST', url: 'http://127.0.0.1:9/items', json: { n } }));

    const result = await cli.run(['enqueue', '-', '--json', '--batch', 'from-stdin'], { env: { SLUICE_QUEUE: queue }, input: jsonl(ops) });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ ...ENQUEUE_SUMMARY, batchId: 'from-stdin', enqueued: 4 });
    expect(await waitingJobs(queue)).toBe(4);

    const bad = await cli.run(['enqueue', '-'], { env: { SLUICE_QUEUE: queue }, input: jsonl([...ops, { method: 'GET' }]) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('line 5: url:');
    expect(await waitingJobs(queue)).toBe(4);
  });

  it('reads a pipe given by name (`<(jq …)`, a FIFO) once, keeping it for both passes, so every line is enqueued', async () => {
    const queue = uniqueQueue('e2e-enq');
    const ops = [1, 2, 3, 4, 5].map((n) => ({ method: 'POST', url: 'http://127.0.0.1:9/items', json: { n } }));
    const fifo = await cli.file('ops.fifo', '');
    await rm(fifo);
    execFileSync('mkfifo', [fifo]);
    const enqueue = cli.spawn(['enqueue', fifo, '--json', '--batch', 'from-fifo'], { env: { SLUICE_QUEUE: queue } });
    // The writer: blocks until the CLI opens the FIFO, once (a second read would find it empty).
    await writeFile(fifo, jsonl(ops));
    const result = await enqueue.waitForExit();
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ ...ENQUEUE_SUMMARY, batchId: 'from-fifo', enqueued: 5 });
    expect(await waitingJobs(queue)).toBe(5);
  });

  it('refuses an input file that changed while it was read: nothing enqueued that was not checked', async () => {
    const queue = uniqueQueue('e2e-enq');
    const line = (n: number) => `${JSON.stringify({ method: 'POST', url: 'http://127.0.0.1:9/items', json: { n } })}\n`;
    const file = await cli.file('growing.jsonl', Array.from({ length: 50_000 }, (_, n) => line(n)).join(''));
    const enqueue = cli.spawn(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
    // A writer still appending (valid lines) while the file is checked: its first pass sees it change.
    for (let n = 50_000; enqueue.running(); n += 1) {
      await appendFile(file, line(n));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const result = await enqueue.waitForExit();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file} changed while it was read (it is read twice: checked whole, then enqueued)`);
    expect(await waitingJobs(queue)).toBe(0);
  });

  it('names the batch it fills before it writes, with the command that finishes it; that command adds only what is missing', async () => {
    const queue = uniqueQueue('e2e-enq');
    const ops = Array.from({ length: 5 }, (_, i) => ({ method: 'POST', url: 'http://127.0.0.1:9/orders', json: { i } }));
    const file = await cli.file('named.jsonl', jsonl(ops));

    const first = await cli.run(['enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(first.code, first.stderr).toBe(0);
    const batchId = /^enqueued 5 operations into batch (b-\S+) /m.exec(first.stdout)?.[1];
    expect(batchId).toBeDefined();
    // Printed once the batch is open, ahead of the progress: what an interrupted enqueue leaves on
    // screen (the queue comes from SLUICE_QUEUE, so the same command finds it again).
    const named = `batch ${batchId}: should this enqueue stop, finish it with sluice enqueue ${file} --batch ${batchId}`;
    expect(first.stderr.split('\n')[0]).toBe(named);

    const again = await cli.run(['enqueue', file, '--batch', batchId!, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ ...ENQUEUE_SUMMARY, batchId, alreadyEnqueued: 5 });
    // --json writes nothing to stderr.
    expect(again.stderr).toBe('');
    expect(await waitingJobs(queue)).toBe(5);
  });

  it('enqueuing the same file twice reports every operation as a duplicate the second time', async () => {
    const queue = uniqueQueue('e2e-enq');
    const ops = Array.from({ length: 6 }, (_, i) => ({
      method: 'POST',
      url: 'http://127.0.0.1:9/orders',
      json: { i },
      idempotencyKey: `order-${i}`,
    }));
    const file = await cli.file('keyed.jsonl', jsonl(ops));

    const first = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ ...ENQUEUE_SUMMARY, enqueued: 6 });

    const second = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ ...ENQUEUE_SUMMARY, duplicates: 6 });
    expect(await waitingJobs(queue)).toBe(6);

    // Without --json the duplicates are in the human summary too.
    const third = await cli.run(['enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/^enqueued 0 operations into batch b-\S+ \(queue e2e-enq-\w+; 6 duplicates, 0 invalid skipped\)$/m);
  });

  it('--config: operations with relative URLs name a target; a worker with the same config sends them to its baseUrl', async () => {
    const queue = uniqueQueue('e2e-enq');
    const target = await startTestTarget();
    await cli.allowLocal(target.url);
    const config = await cli.file(
      'sluice.e2e.json',
      JSON.stringify({
        targets: { shop: { baseUrl: `${target.url}/api/v2`, headers: { 'x-api-key': 'secret-1' }, allowPrivateAddresses: true } },
      }),
    );
    const file = await cli.file(
      'relative.jsonl',
      jsonl([
        { target: 'shop', method: 'GET', url: '/products/7', query: { expand: 'price' } },
        { target: 'shop', method: 'POST', url: '/products', json: { name: 'lamp' }, idempotencyKey: 'lamp-1' },
      ]),
    );

    // Without the config, the target is unknown.
    const noConfig = await cli.run(['enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/line 1: target: unknown target "shop"; configured targets: local-/);

    // A relative --config path is read from the working directory.
    const enqueued = await cli.run(['--config', 'sluice.e2e.json', 'enqueue', file, '--json', '--batch', 'relative'], {
      env: { SLUICE_QUEUE: queue },
    });
    expect(enqueued.code).toBe(0);
    expect(JSON.parse(enqueued.stdout)).toEqual({ ...ENQUEUE_SUMMARY, batchId: 'relative', enqueued: 2 });

    await cli.startWorkers(1, { concurrency: 2, env: { SLUICE_QUEUE: queue, SLUICE_CONFIG: config } });
    const waited = await cli.run(['wait', 'relative', '--timeout', '20', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 25_000 });
    expect(waited.code).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 2, succeeded: 2, deadLettered: 0, timedOut: false });

    const byMethod = Object.fromEntries(target.requests.map((request) => [request.method, request]));
    expect(target.requests).toHaveLength(2);
    expect(byMethod['GET']).toMatchObject({
      path: '/api/v2/products/7?expand=price',
      headers: expect.objectContaining({ 'x-api-key': 'secret-1' }),
    });
    expect(byMethod['POST']).toMatchObject({ path: '/api/v2/products', body: '{"name":"lamp"}' });
    expect(byMethod['POST']?.headers).toMatchObject({
      'x-api-key': 'secret-1',
      'idempotency-key': 'lamp-1',
      'content-type': 'application/json',
    });
  });

  it('a bad config file: exit 2, every problem listed with its path, nothing enqueued', async () => {
    const queue = uniqueQueue('e2e-enq');
    const config = await cli.file(
      'bad-config.json',
      JSON.stringify({
        targets: {
          shop: { baseUrl: 'ftp://files.example.com', limits: { burst: 5 } },
          'bad name!': { baseUrl: 'http://127.0.0.1:9' },
        },
        limits: { 'api.example.com': { requestsPerSecond: -1 } },
        retries: 3,
      }),
    );
    const file = await cli.file('one-op.jsonl', jsonl([{ method: 'GET', url: 'http://127.0.0.1:9/x' }]));

    const result = await cli.run(['--config', config, 'enqueue', file], { env: { SLUICE_QUEUE: queue } });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`invalid configuration in ${config}:`);
    const problems = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('  '))
      .map((line) => line.trim());
    expect(problems).toEqual(
      expect.arrayContaining([
        'targets.shop.baseUrl: expected an absolute http(s) URL',
        'targets.shop.limits.burst: burst needs requestsPerSecond or requestsPerMinute',
        expect.stringMatching(/^targets\.bad name!: target names may hold letters, digits and _ \. : -/),
        // A key with dots is quoted, so the path reads one way.
        expect.stringMatching(/^limits\["api\.example\.com"\]\.requestsPerSecond: /),
        'retries: unknown field',
      ]),
    );
    expect(problems).toHaveLength(5);

    const unparsable = await cli.file('not-json-config.json', '{"targets": {');
    const notJson = await cli.run(['--config', unparsable, 'enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain(`invalid configuration in ${unparsable}:`);
    expect(notJson.stderr).toContain('not valid JSON');

    expect(await queueKeys(queue)).toEqual([]);
  });

  it('a missing input or config file is a clear error, not a stack trace', async () => {
    const queue = uniqueQueue('e2e-enq');
    const missing = await cli.run(['enqueue', 'no-such-file.jsonl'], { env: { SLUICE_QUEUE: queue } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^sluice: cannot read no-such-file\.jsonl: ENOENT/);
    expect(missing.stderr).not.toContain('    at ');

    // A JSON array on one line (not JSON Lines) past the longest line: named, without being kept whole.
    const array = await cli.file(
      'array.json',
      JSON.stringify(
        Array.from({ length: 300_000 }, (_, i) => ({ method: 'GET', url: `http://127.0.0.1:9/items/${i}/${'x'.repeat(80)}` })),
      ),
    );
    const tooLong = await cli.run(['enqueue', array, '--dry-run'], { env: { SLUICE_QUEUE: queue } });
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(
      /^line 1: longer than 32 MiB; sluice reads one operation per line \(JSON Lines\): a JSON array or an indented document is not, convert it with jq -c '\.\[\]' FILE$/m,
    );

    // A directory is readable, but holds no lines.
    const directory = await cli.run(['enqueue', cli.dir()], { env: { SLUICE_QUEUE: queue } });
    expect(directory.code).toBe(2);
    expect(directory.stderr).toBe(`sluice: cannot read ${cli.dir()}: it is a directory; name a JSONL or CSV file (or - for stdin)\n`);

    const file = await cli.file('for-missing-config.jsonl', jsonl([{ method: 'GET', url: 'http://127.0.0.1:9/x' }]));
    const noConfig = await cli.run(['--config', 'missing.json', 'enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/^sluice: cannot read config file missing\.json: ENOENT/);

    expect(await queueKeys(queue)).toEqual([]);
  });
});
