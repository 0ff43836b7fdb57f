/**
 * `sluice server` as a real process, with real worker processes: a client that only speaks HTTP
 * enqueues NDJSON, follows the batch to its end, reads the failures, and sees every worker's request
 * counts at /metrics. Bad tokens are refused; SIGTERM stops the server cleanly.
 */
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { parseExposition } from '../helpers/prom-text.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const ADMIN = 'e2e-admin-token-0123456789';
const FEEDER = 'e2e-feeder-token-0123456789';
const TOKENS = `${ADMIN}:admin,${FEEDER}:enqueue`;

describe('sluice server (built binary)', () => {
  it('refuses to start without tokens, naming the variable', async () => {
    const result = await cli.run(['server', '--port', '0'], { env: { SLUICE_API_TOKENS: undefined } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('SLUICE_API_TOKENS: no API tokens');
    const weak = await cli.run(['server', '--port', '0'], { env: { SLUICE_API_TOKENS: 'abc:admin' } });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toContain('SLUICE_API_TOKENS entry 1: token too short');
    expect(weak.stderr).not.toContain('abc');
  });

  it('enqueues NDJSON over HTTP, follows the batch to its end; /metrics shows each worker process', async () => {
    const queue = uniqueQueue('e2e-server');
    const target = await startTestTarget();
    target.setDefault((request) => (request.path.startsWith('/gone/') ? { status: 404 } : { status: 200, json: { ok: true } }));
    await cli.allowLocal(target.url);
    const env = { SLUICE_QUEUE: queue, SLUICE_API_TOKENS: TOKENS, SLUICE_METRICS_INTERVAL_MS: '200' };
    await cli.startWorkers(2, { concurrency: 20, env });
    const server = cli.spawn(['server', '--port', '0'], { env });
    const listening = await server.waitForLog('server listening');
    const base = String(listening['address']);
    const call = (path: string, token: string | undefined, init: RequestInit = {}) =>
      fetch(`${base}${path}`, {
        ...init,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) },
      });

    const count = 2_000;
    const lines = Array.from({ length: count }, (_, i) =>
      JSON.stringify({
        method: 'POST',
        url: `${target.url}/${i % 500 === 0 ? 'gone' : 'items'}/${i}`,
        json: { i },
        idempotencyKey: `row-${i}`,
        meta: { row: i },
      }),
    );
    const enqueued = await call('/v1/operations?batch=e2e-http', FEEDER, {
      method: 'POST',
      body: lines.join('\n'),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(enqueued.status).toBe(202);
    expect(await enqueued.json()).toMatchObject({ batchId: 'e2e-http', enqueued: count, duplicates: 0 });

    expect((await call('/v1/batches/e2e-http', undefined)).status).toBe(401);
    expect((await call('/v1/batches/e2e-http', 'wrong-token-0123456789')).status).toBe(401);
    expect(
      (
        await call('/v1/dead-letters/replay', FEEDER, {
          method: 'POST',
          body: '{"filter":{}}',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(403);

    const done = (await waitFor(
      async () => {
        const status = (await (await call('/v1/batches/e2e-http', FEEDER)).json()) as { done: boolean };
        return status.done ? status : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'the batch to finish' },
    ))!;
    expect(done).toMatchObject({ total: count, succeeded: count - 4, deadLettered: 4, pending: 0 });
    const failed = (await (await call('/v1/batches/e2e-http/results?failed=true', FEEDER)).text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { meta: { row: number }; status: number });
    expect(failed.map((line) => line.meta.row).sort((a, b) => a - b)).toEqual([0, 500, 1000, 1500]);
    expect(failed.every((line) => line.status === 404)).toBe(true);

    // /metrics: both worker processes' counts, adding up to what the target saw.
    expect((await call('/metrics', undefined)).status).toBe(401);
    const metrics = (await waitFor(
      async () => {
        const response = await call('/metrics', FEEDER);
        const parsed = parseExposition(await response.text());
        return parsed.sum('sluice_requests_total', { queue }) === target.requests.length ? parsed : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'every request to be published' },
    ))!;
    const workers = new Set(metrics.samples('sluice_requests_total', { queue }).map((sample) => sample.labels['worker']));
    expect(workers.size).toBe(2);
    expect(metrics.sum('sluice_requests_total', { queue, status_class: '4xx' })).toBe(4);

    server.signal('SIGTERM');
    const exit = await server.waitForExit(10_000);
    expect(exit.code).toBe(0);
    expect(server.stdout()).not.toContain(FEEDER);
    expect(server.stdout()).not.toContain(ADMIN);
  }, 120_000);
});
