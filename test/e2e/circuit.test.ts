/**
 * A partner that goes down, with real worker processes: the key's circuit opens, the backlog waits
 * without spending its attempts or hammering the partner, one probe at a time checks it, and the
 * batch resumes once the partner answers again.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { now, useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

interface Partner {
  url: string;
  /** Arrival times (ms since the epoch) of the requests it answered, and their idempotency keys. */
  answered: { at: number; key: string }[];
  /** Refuses connections (nothing listens on its port) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
}

/** A partner API on a fixed loopback port that can go away and come back; `status(n)` answers the n-th request. */
async function startPartner(status: (n: number) => number = () => 201): Promise<Partner> {
  const answered: Partner['answered'] = [];
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        answered.push({ at: now(), key: String(req.headers['idempotency-key'] ?? '') });
        res.writeHead(status(answered.length), { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  const close = async () => {
    if (!server) return;
    const closing = server;
    server = undefined;
    closing.closeAllConnections();
    await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  await listen();
  onTestFinished(close);
  return { url: `http://127.0.0.1:${port}`, answered, down: close, up: listen };
}

interface LimitsEntry {
  key: string;
  circuit: { state: string; opened: number; closed: number } | null;
}

describe('a partner that goes down (circuit breaker, real workers)', () => {
  it('refusing connections for 60 s: 2,000 operations over 2 workers finish with no dead letter, no hammering, and resume at the first good probe', async () => {
    const queue = uniqueQueue('e2e-circuit');
    const partner = await startPartner();
    const config = await cli.file(
      'down.config.json',
      JSON.stringify({
        targets: {
          partner: {
            baseUrl: partner.url,
            allowPrivateAddresses: true,
            limits: { requestsPerSecond: 500, burst: 50 },
            circuit: { probeIntervalMs: 2_000, maxProbeIntervalMs: 8_000 },
          },
        },
      }),
    );
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };
    const ops = Array.from({ length: 2_000 }, (_, i) => ({
      method: 'POST',
      target: 'partner',
      url: '/orders',
      json: { i },
      idempotencyKey: `order-${i}`,
    }));
    const file = await cli.file('orders.jsonl', `${ops.map((op) => JSON.stringify(op)).join('\n')}\n`);
    const enqueued = await cli.run(['enqueue', file, '--json'], { env });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };

    await partner.down();
    const concurrency = 20;
    await cli.startWorkers(2, { concurrency, env });
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    const upAt = now();
    await partner.up();

    const waited = await cli.run(['wait', batchId, '--timeout', '90', '--json'], { env, timeoutMs: 95_000 });
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 2_000, succeeded: 2_000, deadLettered: 0, pending: 0 });

    // Every operation reached the partner once it was back.
    expect(new Set(partner.answered.map((request) => request.key)).size).toBe(2_000);
    // Attempts made in all: each operation's successful one, plus the failures that opened the
    // circuit (at most the 20 it needs and what was in flight then) and the failed probes.
    const results = await cli.run(['results', batchId], { env });
    const attempts = results.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { attempts: number }).attempts);
    const sent = attempts.reduce((sum, n) => sum + n, 0);
    const probes = Math.ceil(60_000 / 2_000);
    expect(sent).toBeLessThanOrEqual(2_000 + 20 + 2 * concurrency + probes);

    // The first request back is the probe, within one probe interval of the recovery; the backlog
    // follows at once (the closing circuit wakes it).
    const back = partner.answered.map((request) => request.at).sort((a, b) => a - b);
    expect(back[0]! - upAt).toBeLessThanOrEqual(8_000 * 1.2 + 1_000);
    expect(back[1]! - back[0]!).toBeLessThan(3_000);

    const limits = await cli.run(['limits', '--json'], { env });
    const entry = (JSON.parse(limits.stdout) as LimitsEntry[]).find((limit) => limit.key === 'partner')!;
    expect(entry.circuit).toMatchObject({ state: 'closed', opened: 1, closed: 1 });
  }, 200_000);

  it('answering 503 to 40 % of requests: the circuit stays closed and plain retries finish the batch', async () => {
    const queue = uniqueQueue('e2e-flaky');
    // Two of every five requests fail: below the default failure ratio of 50 %.
    const partner = await startPartner((n) => (n % 5 < 2 ? 503 : 201));
    const config = await cli.file(
      'flaky.config.json',
      JSON.stringify({ targets: { flaky: { baseUrl: partner.url, allowPrivateAddresses: true } } }),
    );
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };
    const ops = Array.from({ length: 300 }, (_, i) => ({
      method: 'POST',
      target: 'flaky',
      url: '/orders',
      json: { i },
      retry: { attempts: 30, baseDelayMs: 10, maxDelayMs: 100 },
    }));
    const file = await cli.file('flaky.jsonl', `${ops.map((op) => JSON.stringify(op)).join('\n')}\n`);
    const enqueued = await cli.run(['enqueue', file, '--json'], { env });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const { batchId } = JSON.parse(enqueued.stdout) as { batchId: string };
    await cli.startWorkers(2, { concurrency: 20, env });

    const waited = await cli.run(['wait', batchId, '--timeout', '90', '--json'], { env, timeoutMs: 95_000 });
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 300, succeeded: 300, deadLettered: 0 });
    const limits = await cli.run(['limits', '--json'], { env });
    const entry = (JSON.parse(limits.stdout) as LimitsEntry[]).find((limit) => limit.key === 'flaky')!;
    expect(entry.circuit).toMatchObject({ state: 'closed', opened: 0 });
    expect(partner.answered.length).toBeGreaterThan(300);

    // By hand, as an operator would: open it, see it, close it.
    const opened = await cli.run(['limits', 'open', 'flaky'], { env });
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toContain('limit key flaky: circuit opened');
    const table = await cli.run(['limits'], { env });
    expect(table.stdout).toMatch(/^KEY .*CIRCUIT/m);
    expect(table.stdout).toMatch(/^flaky .*OPEN since /m);
    const closed = await cli.run(['limits', 'close', 'flaky'], { env });
    expect(closed.stdout).toContain('limit key flaky: circuit closed; 0 waiting operations woken');
    expect((await cli.run(['limits', 'close', 'flaky'], { env })).stdout).toContain('circuit already closed');
  }, 120_000);
});
