/**
 * A limit key's circuit through the HTTP API, as operators use it: GET /v1/limits shows it,
 * POST …/circuit/open and …/close steer it (admin only), and a close wakes the jobs that waited.
 */
import { Queue } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createLimiter } from '../../src/limits/limiter.js';
import { PREFIX, bullQueueName, limiterKeys } from '../../src/redis/keys.js';
import { startApiServer } from '../helpers/api-server.js';
import { testLogger, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

interface LimitBody {
  key: string;
  circuit: { state: string; waiting: number; opened: number; closed: number; openSince: string | null } | null;
}

describe('HTTP API: circuits', () => {
  it('shows every target’s circuit, opens and closes one by hand (admin only), and wakes the jobs that waited on close', async () => {
    const queue = uniqueQueue('circuit-api');
    const config = parseSluiceConfig({
      targets: {
        partner: { baseUrl: 'http://127.0.0.1:1', circuit: { probeIntervalMs: 60_000 } },
        nobreaker: { baseUrl: 'http://127.0.0.1:2', circuit: false },
      },
    });
    const api = await startApiServer({ redis: redis().client, config, queue });

    const listed = (await (await api.call('/v1/limits', { role: 'read' })).json()) as LimitBody[];
    expect(listed.find((entry) => entry.key === 'partner')?.circuit).toMatchObject({ state: 'closed', opened: 0 });
    expect(listed.find((entry) => entry.key === 'nobreaker')).toBeUndefined();

    expect((await api.call('/v1/limits/partner/circuit/open', { method: 'POST', role: 'read' })).status).toBe(403);
    const opened = await api.call('/v1/limits/partner/circuit/open', { method: 'POST' });
    expect(opened.status).toBe(200);
    expect(((await opened.json()) as { limit: LimitBody }).limit.circuit).toMatchObject({ state: 'open', opened: 1 });

    // A job waits on the open circuit: delayed in BullMQ, recorded among the circuit's waiters.
    const bull = new Queue(bullQueueName(queue), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => bull.close());
    await bull.add('op', { op: {} }, { jobId: 'waiting-1', delay: 3_600_000 });
    const limiter = createLimiter({ redis: redis().client, config, logger: testLogger(), refreshIntervalMs: 100 });
    onTestFinished(() => limiter.close());
    const gate = await waitFor(async () => {
      const next = await limiter.acquire(['partner'], 'waiting-1', 5_000);
      return next.kind === 'circuit-open' ? next : undefined;
    });
    expect(gate).toMatchObject({ kind: 'circuit-open', maxOpenMs: 86_400_000 });
    const during = (await (await api.call('/v1/limits')).json()) as LimitBody[];
    expect(during.find((entry) => entry.key === 'partner')?.circuit).toMatchObject({ state: 'open', waiting: 1 });

    const closed = await api.call('/v1/limits/partner/circuit/close', { method: 'POST' });
    expect(closed.status).toBe(200);
    const body = (await closed.json()) as { limit: LimitBody; woken: number };
    expect(body.woken).toBe(1);
    expect(body.limit.circuit).toMatchObject({ state: 'closed', opened: 1, closed: 1 });
    expect(await (await bull.getJob('waiting-1'))!.isDelayed()).toBe(false);
    expect(await redis().client.zcard(limiterKeys.circuitWaiting('partner'))).toBe(0);

    const off = await api.call('/v1/limits/nobreaker/circuit/open', { method: 'POST' });
    expect(off.status).toBe(409);
    expect(await off.json()).toMatchObject({ code: 'CIRCUIT_OFF' });
    expect(api.log()).toContain('circuit opened by hand');
  });
});
