/**
 * sluice on a Redis Cluster: 3 masters and 3 replicas on loopback (support/redis-cluster.ts), the
 * built CLI, worker processes and the server pointed at it with `redis+cluster://` seeds, each
 * queue spread over 3 shards on the 3 masters (`sluice shards`). The core path, dead letters and
 * replay, CSV, the server with a read and an admin token, a strict limiter, limit keys spread by
 * group over the masters; then the master holding a shard is killed mid-batch (its replica is
 * promoted), a shard's slot is moved to another master mid-batch: every operation still ends once
 * in the batch, none is missing at the target; and the master of a limit key's group is killed
 * under a strict target, which refuses nothing.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startDemoApiProcess } from '../helpers/demo-api-process.js';
import { useCli, type CliProcess } from '../helpers/cli-process.js';
import { uniqueQueue, waitFor } from '../helpers/redis.js';
import { sleep } from '../../src/support/sleep.js';
import { startTestTarget, type TargetServer } from '../helpers/target-server.js';
import { jsonl, jsonLines, maxInWindow } from '../helpers/json-lines.js';
import { startRedisCluster, type RedisClusterHandle } from '../../src/support/redis-cluster.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { PREFIX, bullQueueName, limiterKeys, queueMetaKey, shardName } from '../../src/redis/keys.js';
import { Queue } from 'bullmq';
import { LANE_OP_ID } from '../../src/queue/lanes.js';
import { discoverQueues } from '../../src/queue/discover-queues.js';
import { createProducer } from '../../src/queue/producer.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';

let cluster: RedisClusterHandle | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2_000 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});
// After the cluster's hooks: processes stop before the cluster does.
const cli = useCli(() => ({ REDIS_URL: cluster!.url }));

const FAST_RETRY = { attempts: 10, baseDelayMs: 10, maxDelayMs: 100 };
const READER = 'cluster-read-token-0123456789';
const ADMIN = 'cluster-admin-token-0123456789';

interface ResultLine {
  id: string;
  outcome: string;
  meta?: { n?: number };
}

/** Shards of every queue below: one queue over the cluster's three masters. */
const SHARDS = 3;

/** The masters serving each shard of `queue`, by port. */
async function shardMasters(queue: string): Promise<number[]> {
  return Promise.all(
    Array.from({ length: SHARDS }, async (_, index) => (await cluster!.masterOf(queueMetaKey(shardName(queue, index)))).port),
  );
}

/**
 * A new queue spread over SHARDS shards (`sluice shards`), named so that its shards sit on
 * different masters: a slot's master is the cluster's choice, and an operator with S = M checks
 * the placement (`sluice shards`) as this does.
 */
async function shardedQueue(prefix: string): Promise<string> {
  for (let tries = 0; tries < 200; tries++) {
    const queue = uniqueQueue(prefix);
    if (new Set(await shardMasters(queue)).size < SHARDS) continue;
    const set = await cli.run(['shards', String(SHARDS)], { env: { SLUICE_QUEUE: queue } });
    expect(set.code, set.stderr).toBe(0);
    return queue;
  }
  throw new Error(`no name ${prefix}-… whose ${SHARDS} shards sit on ${SHARDS} masters`);
}

/** A counting target the workers may call; closed when the test ends. */
async function localTarget(): Promise<TargetServer> {
  const target = await startTestTarget();
  await cli.allowLocal(target.url);
  return target;
}

async function enqueue(queue: string, ops: unknown[], env: Record<string, string> = {}): Promise<string> {
  const file = await cli.file(`${queue}-${Math.random().toString(36).slice(2)}.jsonl`, jsonl(ops));
  const result = await cli.run(['enqueue', file, '--json'], { env: { SLUICE_QUEUE: queue, ...env }, timeoutMs: 60_000 });
  expect(result.code, result.stderr).toBe(0);
  const summary = JSON.parse(result.stdout) as { batchId: string; enqueued: number };
  expect(summary.enqueued).toBe(ops.length);
  return summary.batchId;
}

async function waitDone(queue: string, batchId: string, timeoutS = 90, env: Record<string, string> = {}) {
  const result = await cli.run(['wait', batchId, '--timeout', String(timeoutS), '--json'], {
    env: { SLUICE_QUEUE: queue, ...env },
    timeoutMs: (timeoutS + 15) * 1_000,
  });
  return { code: result.code, status: JSON.parse(result.stdout || '{}') as Record<string, unknown>, stderr: result.stderr };
}

async function results(queue: string, batchId: string): Promise<ResultLine[]> {
  const result = await cli.run(['results', batchId], { env: { SLUICE_QUEUE: queue }, timeoutMs: 60_000 });
  expect(result.code, result.stderr).toBe(0);
  return jsonLines<ResultLine>(result.stdout);
}

/** `count` POSTs to `${target.url}/items/<n>`, each with its own key, `meta.n` = n. */
function posts(target: TargetServer, count: number, prefix: string, more: Record<string, unknown> = {}) {
  return Array.from({ length: count }, (_, n) => ({
    method: 'POST',
    url: `${target.url}/items/${n}`,
    json: { n },
    idempotencyKey: `${prefix}-${n}`,
    meta: { n },
    retry: FAST_RETRY,
    ...more,
  }));
}

/** Per idempotency key, how many requests the target saw. */
function requestsPerKey(target: TargetServer, prefix: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const request of target.requests) {
    const key = String(request.headers['idempotency-key'] ?? '');
    if (key.startsWith(`${prefix}-`)) seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

describe('sluice on a Redis Cluster (3 masters, 3 replicas)', () => {
  it('enqueue → 3 worker processes → wait → results; one queue over three masters, limit keys by group', async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 201, json: { ok: true } }));
    const queue = await shardedQueue('cluster-core');
    const batchId = await enqueue(queue, posts(target, 600, 'core'));
    await cli.startWorkers(3, { concurrency: 20, env: { SLUICE_QUEUE: queue } });

    const done = await waitDone(queue, batchId);
    expect(done.code, done.stderr).toBe(0);
    expect(done.status).toMatchObject({ total: 600, succeeded: 600, deadLettered: 0, pending: 0 });
    const lines = await results(queue, batchId);
    expect(lines).toHaveLength(600);
    expect(new Set(lines.map((line) => line.meta?.n)).size).toBe(600);
    const perKey = requestsPerKey(target, 'core');
    expect(perKey.size).toBe(600);
    expect([...perKey.values()].every((count) => count === 1)).toBe(true);

    // Where things live: each shard's keys by its hash tag, the limiter's by its own; `sluice shards` says so.
    const masters = await shardMasters(queue);
    const limitsMaster = await cluster!.masterOf(limiterKeys.index);
    console.info(
      `cluster: queue ${queue}'s shards on masters ${masters.map((port) => `:${port}`).join(', ')}, the limiter's index on :${limitsMaster.port}`,
    );
    const shown = await cli.run(['shards', '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(shown.code, shown.stderr).toBe(0);
    const placement = JSON.parse(shown.stdout) as {
      count: number;
      shards: { shard: string; master: string; waiting: number; active: number }[];
    };
    expect(placement.count).toBe(SHARDS);
    expect(placement.shards.map((shard) => [shard.shard, Number(shard.master.split(':').at(-1))])).toEqual(
      masters.map((port, index) => [shardName(queue, index), port]),
    );
    expect(placement.shards.every((shard) => shard.waiting === 0 && shard.active === 0)).toBe(true);
    // Every shard ran part of the batch: its completed jobs are on its master.
    const client = createRedisConnection(cluster!.url, { name: 'test:cluster' });
    onTestFinished(() => closeRedis(client));
    for (let index = 0; index < SHARDS; index++) {
      expect(await client.zcard(`sluice:{${shardName(queue, index)}}:completed`), `shard ${index}`).toBeGreaterThan(100);
    }
    // Queues are discovered on every master (SCAN walks one node at a time), as the queue, not its shards.
    const discovered = await discoverQueues(client);
    expect(discovered).toContain(queue);
    expect(discovered.some((name) => name.includes('#'))).toBe(false);
  }, 120_000);

  it('an enqueue answered once a replica has it (SLUICE_ENQUEUE_REPLICAS=1): what the WAIT costs', async () => {
    const config = parseSluiceConfig({ allowedHosts: ['api.example.com'] });
    const ops = Array.from({ length: 5_000 }, (_, n) => ({ method: 'POST', url: `https://api.example.com/items/${n}`, json: { n } }));
    const timed = async (replicas: number) => {
      const producer = createProducer({
        connection: cluster!.url,
        queue: uniqueQueue('cluster-wait'),
        config,
        replicas: { count: replicas, timeoutMs: 5_000 },
      });
      try {
        await producer.enqueueMany(ops.slice(0, 500), { collectResults: false });
        const started = performance.now();
        const summary = await producer.enqueueMany(ops, { collectResults: false });
        expect(summary.enqueued).toBe(5_000);
        return performance.now() - started;
      } finally {
        await producer.close();
      }
    };
    const [plain, waited] = [await timed(0), await timed(1)];
    console.info(
      `cluster enqueue of 5,000: ${Math.round(plain)} ms answered by the master, ${Math.round(waited)} ms once a replica has it`,
    );
    // Two replicas wanted, one each master has: refused in time, saying so.
    const wanting = createProducer({
      connection: cluster!.url,
      queue: uniqueQueue('cluster-wait'),
      config,
      replicas: { count: 2, timeoutMs: 200 },
    });
    onTestFinished(() => wanting.close());
    await expect(wanting.enqueueMany(ops.slice(0, 10))).rejects.toMatchObject({
      cause: { message: expect.stringContaining('Redis did not confirm the operations on 2 replicas within 200 ms (1 did)') },
    });
  }, 60_000);

  it('dead letters on the cluster: 404s end dead-lettered, replay after the target recovers completes the batch', async () => {
    const target = await localTarget();
    let fixed = false;
    target.setDefault((request) => (request.path.startsWith('/items/1') && !fixed ? { status: 404 } : { status: 200, json: { ok: true } }));
    const queue = await shardedQueue('cluster-dlq');
    // /items/1, /items/10 … /items/19: 11 of 40.
    const batchId = await enqueue(queue, posts(target, 40, 'dlq'));
    await cli.startWorkers(2, { concurrency: 10, env: { SLUICE_QUEUE: queue } });

    const failed = await waitDone(queue, batchId, 60);
    expect(failed.code).toBe(1);
    expect(failed.status).toMatchObject({ total: 40, succeeded: 29, deadLettered: 11, pending: 0 });
    const listed = await cli.run(['dlq', 'list', '--batch', batchId, '--json'], { env: { SLUICE_QUEUE: queue } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(jsonLines(listed.stdout)).toHaveLength(11);

    fixed = true;
    // In lanes: each shard's dead letters of the batch go back as one lane, written in that shard's slot.
    const replayed = await cli.run(['dlq', 'replay', '--batch', batchId, '--json'], { env: { SLUICE_QUEUE: queue, SLUICE_LANES: 'on' } });
    expect(replayed.code, replayed.stderr).toBe(0);
    const { replayed: back } = JSON.parse(replayed.stdout) as { replayed: { jobId: string }[] };
    expect(back).toHaveLength(11);
    expect(back.filter((entry) => LANE_OP_ID.test(entry.jobId)).length).toBeGreaterThan(1);
    const done = await waitDone(queue, batchId, 60);
    expect(done.code, done.stderr).toBe(0);
    expect(done.status).toMatchObject({ total: 40, succeeded: 40, deadLettered: 0, pending: 0 });
  }, 120_000);

  it('CSV enqueue with a template, and the server API with a read and an admin token', async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 200, json: { ok: true } }));
    const queue = await shardedQueue('cluster-api');
    const env = { SLUICE_QUEUE: queue, SLUICE_API_TOKENS: `${READER}:read,${ADMIN}:admin` };
    const template = await cli.file(
      `${queue}.template.json`,
      JSON.stringify({ method: 'PUT', url: `${target.url}/contacts/{{id}}`, idempotencyKey: 'contact-{{id}}', json: { name: '{{name}}' } }),
    );
    const rows = ['id,name', ...Array.from({ length: 50 }, (_, i) => `${i},"Name, ${i}"`)].join('\n');
    const csvFile = await cli.file(`${queue}.csv`, `${rows}\n`);
    const enqueued = await cli.run(['enqueue', csvFile, '--template', template, '--batch', 'csv-rows', '--json'], { env });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(JSON.parse(enqueued.stdout)).toMatchObject({ batchId: 'csv-rows', enqueued: 50 });
    await cli.startWorkers(1, { concurrency: 10, env });
    const server = cli.spawn(['server', '--port', '0'], { env });
    const base = String((await server.waitForLog('server listening'))['address']);
    const call = (path: string, token: string, init: RequestInit = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

    // The admin token enqueues over HTTP; the read token may not.
    const body = JSON.stringify([{ method: 'POST', url: `${target.url}/api/1`, idempotencyKey: 'api-1' }]);
    const refused = await call('/v1/operations?batch=api-batch', READER, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(refused.status).toBe(403);
    const accepted = await call('/v1/operations?batch=api-batch', ADMIN, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(accepted.status).toBe(202);
    // Keys of two limit groups in one operation cannot be acquired together on a cluster: 400, naming the item.
    const mixed = await call('/v1/operations', ADMIN, {
      method: 'POST',
      body: JSON.stringify([{ method: 'POST', url: `${target.url}/api/2`, limitKey: ['orders', 'tenant:42'] }]),
      headers: { 'content-type': 'application/json' },
    });
    expect(mixed.status).toBe(400);
    expect(JSON.stringify(await mixed.json())).toContain('limit keys of different groups');

    // The read token follows both batches to their end, and lists the queue (found on its master).
    await waitFor(
      async () => {
        const [csv, api] = await Promise.all(['csv-rows', 'api-batch'].map(async (id) => (await call(`/v1/batches/${id}`, READER)).json()));
        return (csv as { succeeded?: number }).succeeded === 50 && (api as { succeeded?: number }).succeeded === 1;
      },
      { what: 'both batches succeeded, read through the API', timeoutMs: 60_000 },
    );
    // The fleet's gauges: one read per queue, each on its own master.
    const metrics = await (await call('/metrics', READER)).text();
    expect(metrics).toContain(`sluice_dead_letters_stored{queue="${queue}"} 0`);
    const csvResults = await cli.run(['results', 'csv-rows', '--format', 'csv'], { env });
    expect(csvResults.code, csvResults.stderr).toBe(0);
    expect(csvResults.stdout.trim().split('\n')).toHaveLength(51);
    expect(new Set(target.requests.filter((request) => request.path.startsWith('/contacts/')).map((request) => request.path)).size).toBe(
      50,
    );
  }, 120_000);

  it('a strict 40/s target behind a 40/s key: 2 workers on the cluster, no 429', async () => {
    const api = await startDemoApiProcess({ strictLimit: { requestsPerSecond: 40, burst: 4 }, failureRate: 0, rateLimitRate: 0 });
    onTestFinished(() => api.close());
    await cli.allowLocal(api.url);
    const queue = await shardedQueue('cluster-strict');
    const config = await cli.file(
      `${queue}.config.json`,
      JSON.stringify({ limits: { 'cluster-strict': { requestsPerSecond: 40, burst: 4 } }, targets: cli.localTargets() }),
    );
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };
    const ops = Array.from({ length: 400 }, (_, row) => ({
      method: 'POST',
      url: `${api.url}/records`,
      json: { row },
      limitKey: 'cluster-strict',
      retry: FAST_RETRY,
    }));
    const batchId = await enqueue(queue, ops, { SLUICE_CONFIG: config });
    await cli.startWorkers(2, { concurrency: 20, env });
    const done = await waitDone(queue, batchId, 60, { SLUICE_CONFIG: config });
    expect(done.code, done.stderr).toBe(0);
    const { stats, arrivals } = await api.read();
    expect(stats.limited).toBe(0);
    expect(stats.created).toBe(400);
    expect(maxInWindow(arrivals, 1_000)).toBeLessThanOrEqual(44);
  }, 120_000);

  it("limit keys over the masters: each group's keys in its own slot, one operation's keys in one group, a mixed one refused", async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 201, json: { ok: true } }));
    const queue = await shardedQueue('cluster-groups');
    // Three groups whose slots are on three masters, as an operator naming keys would check (`sluice limits`).
    const groups: string[] = [];
    const groupMasters = new Set<number>();
    for (let n = 0; groups.length < 3 && n < 500; n++) {
      const port = (await cluster!.masterOf(limiterKeys.state(`grp${n}`))).port;
      if (groupMasters.has(port)) continue;
      groupMasters.add(port);
      groups.push(`grp${n}`);
    }
    expect(groupMasters.size).toBe(3);
    const [a, b, c] = groups as [string, string, string];
    const tenant = `${a}:tenant-1`;
    const limits = {
      [a]: { requestsPerSecond: 200 },
      [tenant]: { requestsPerSecond: 100 },
      [b]: { requestsPerSecond: 200 },
      [c]: { concurrency: 5 },
    };
    const config = await cli.file(`${queue}.config.json`, JSON.stringify({ limits, targets: cli.localTargets() }));
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };

    // An operation naming keys of two groups is refused at enqueue, by line; the others are enqueued.
    const keysOf = (n: number) => [[a, tenant], [b], [c]][n % 3]!;
    const ops = posts(target, 300, 'groups').map((op, n) => ({ ...op, limitKey: keysOf(n) }));
    const file = await cli.file(
      `${queue}-mixed.jsonl`,
      jsonl([...ops.slice(0, 150), { ...ops[150]!, limitKey: [a, b] }, ...ops.slice(150)]),
    );
    const refused = await cli.run(['enqueue', file, '--json'], { env, timeoutMs: 60_000 });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`line 151: limitKey: limit keys of different groups: "${a}" (group "${a}") and "${b}" (group "${b}")`);
    expect(JSON.parse(refused.stdout)).toMatchObject({ batchId: null, enqueued: 0, invalid: 1 });
    const skipped = await cli.run(['enqueue', file, '--skip-invalid', '--json'], { env, timeoutMs: 60_000 });
    expect(skipped.code, skipped.stderr).toBe(2);
    const { batchId, enqueued } = JSON.parse(skipped.stdout) as { batchId: string; enqueued: number };
    expect(enqueued).toBe(300);

    await cli.startWorkers(2, { concurrency: 20, env });
    const done = await waitDone(queue, batchId, 90, { SLUICE_CONFIG: config });
    expect(done.code, done.stderr).toBe(0);
    expect(done.status).toMatchObject({ total: 300, succeeded: 300, deadLettered: 0 });
    expect([...requestsPerKey(target, 'groups').values()].every((count) => count === 1)).toBe(true);

    // Each group's state is on its master; the fleet-wide index names every key.
    const client = createRedisConnection(cluster!.url, { name: 'test:cluster' });
    onTestFinished(() => closeRedis(client));
    for (const key of [a, tenant, b, c]) expect(await client.exists(limiterKeys.state(key)), key).toBe(1);
    expect((await cluster!.masterOf(limiterKeys.state(tenant))).port).toBe((await cluster!.masterOf(limiterKeys.state(a))).port);
    // An operator's change reaches the key on its master, and `sluice limits` reads every group.
    const set = await cli.run(['limits', 'set', b, '--rps', '50'], { env });
    expect(set.code, set.stderr).toBe(0);
    const listed = await cli.run(['limits', '--json'], { env });
    expect(listed.code, listed.stderr).toBe(0);
    const byKey = new Map(
      (JSON.parse(listed.stdout) as { key: string; override: unknown; lastSeen: string | null }[]).map((e) => [e.key, e]),
    );
    expect(byKey.get(b)?.override).toMatchObject({ rate: 50 });
    for (const key of [a, tenant, b, c]) expect(byKey.get(key)?.lastSeen, key).not.toBeNull();

    // A job written past the producer's check (another client, an earlier version) is dead-lettered
    // by the worker, naming the keys, not sent and not retried.
    const bull = new Queue(bullQueueName(queue), { connection: client, prefix: PREFIX });
    onTestFinished(() => bull.close());
    await bull.add('op', { op: { ...ops[0]!, idempotencyKey: 'groups-raw', limitKey: [a, b] } }, { jobId: 'u-groups-raw' });
    let letter: { reason?: string; message?: string } | undefined;
    await waitFor(
      async () => {
        const shown = await cli.run(['dlq', 'show', 'u-groups-raw', '--json'], { env });
        letter = shown.code === 0 ? (JSON.parse(shown.stdout) as typeof letter) : undefined;
        return letter !== undefined;
      },
      { timeoutMs: 30_000, what: 'the mixed job dead-lettered' },
    );
    expect(letter).toMatchObject({ reason: 'invalid-operation' });
    expect(JSON.stringify(letter)).toContain('limit keys of different groups');
    expect(requestsPerKey(target, 'groups').get('groups-raw')).toBeUndefined();
  }, 120_000);

  it('killing the master that holds a shard of the queue mid-batch: its replica is promoted, the batch completes, none missing', async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 201, json: { ok: true }, delayMs: 2 }));
    const queue = await shardedQueue('cluster-failover');
    // Answered once a replica of each shard's master has it: the kill below cannot lose what was enqueued.
    const batchId = await enqueue(queue, posts(target, 5_000, 'failover'), { SLUICE_ENQUEUE_REPLICAS: '1' });
    // Shard 1's master (the others keep serving theirs).
    const shardKey = queueMetaKey(shardName(queue, 1));
    const master = await cluster!.masterOf(shardKey);
    const workers: CliProcess[] = await cli.startWorkers(3, { concurrency: 30, env: { SLUICE_QUEUE: queue } });
    await waitFor(() => requestsPerKey(target, 'failover').size >= 1_000, { what: '1,000 operations sent', timeoutMs: 60_000 });
    const sentAtKill = requestsPerKey(target, 'failover').size;
    await master.server.kill();
    // Mid-batch: most of it still to run on the promoted replica.
    expect(requestsPerKey(target, 'failover').size).toBeLessThan(5_000);
    const killedAt = Date.now();
    await waitFor(async () => (await cluster!.masterOf(shardKey).catch(() => master)).port !== master.port, {
      what: 'a replica promoted to serve the shard',
      timeoutMs: 30_000,
    });
    const promoted = await cluster!.masterOf(shardKey);

    const done = await waitDone(queue, batchId, 120);
    expect(done.code, `${done.stderr}\n${JSON.stringify(done.status)}`).toBe(0);
    expect(done.status).toMatchObject({ total: 5_000, succeeded: 5_000, deadLettered: 0, pending: 0 });
    const perKey = requestsPerKey(target, 'failover');
    const duplicates = [...perKey.values()].reduce((sum, count) => sum + count - 1, 0);
    console.info(
      `failover: master :${master.port} (shard 1 of ${SHARDS}) killed after ${sentAtKill} of 5,000 were sent; :${promoted.port} promoted; ` +
        `the batch done ${Math.round((Date.now() - killedAt) / 1_000)} s after the kill; ${duplicates} requests sent again`,
    );
    // None missing at the target; the batch's counters agree with its results.
    expect(perKey.size).toBe(5_000);
    const lines = await results(queue, batchId);
    expect(lines).toHaveLength(5_000);
    expect(lines.every((line) => line.outcome === 'succeeded')).toBe(true);
    for (const worker of workers) expect(worker.running(), worker.stderr()).toBe(true);
  }, 240_000);

  it("moving a shard's slot to another master mid-batch: the batch completes, nothing lost", async () => {
    const target = await localTarget();
    target.setDefault(() => ({ status: 201, json: { ok: true }, delayMs: 2 }));
    const queue = await shardedQueue('cluster-reshard');
    const shardKey = queueMetaKey(shardName(queue, 2));
    const batchId = await enqueue(queue, posts(target, 3_000, 'reshard'));
    await cli.startWorkers(2, { concurrency: 30, env: { SLUICE_QUEUE: queue } });
    await waitFor(() => requestsPerKey(target, 'reshard').size >= 500, { what: '500 operations sent', timeoutMs: 60_000 });
    const from = await cluster!.masterOf(shardKey);
    const to = (await cluster!.masters()).find((master) => master.port !== from.port)!;
    await cluster!.moveSlotOf(shardKey, to);
    expect((await cluster!.masterOf(shardKey)).port).toBe(to.port);
    // Moved mid-batch: what is left runs on the new master.
    const sentAtMove = requestsPerKey(target, 'reshard').size;
    expect(sentAtMove).toBeLessThan(3_000);

    const done = await waitDone(queue, batchId, 120);
    expect(done.code, `${done.stderr}\n${JSON.stringify(done.status)}`).toBe(0);
    expect(done.status).toMatchObject({ total: 3_000, succeeded: 3_000, deadLettered: 0, pending: 0 });
    const perKey = requestsPerKey(target, 'reshard');
    expect(perKey.size).toBe(3_000);
    const duplicates = [...perKey.values()].reduce((sum, count) => sum + count - 1, 0);
    console.info(
      `reshard: slot of shard 2 of ${queue} moved :${from.port} → :${to.port} after ${sentAtMove} of 3,000 were sent; ${duplicates} requests sent again`,
    );
    // A move sends nothing twice: no worker died.
    expect(duplicates).toBe(0);
  }, 240_000);

  it("killing the master of a limit key's group mid-run: the strict 40/s target still sees no 429", async () => {
    const api = await startDemoApiProcess({ strictLimit: { requestsPerSecond: 40, burst: 4 }, failureRate: 0, rateLimitRate: 0 });
    onTestFinished(() => api.close());
    await cli.allowLocal(api.url);
    // A key whose group's master has a replica to promote (an earlier test killed one master).
    const withReplica = new Set<number>();
    for (const master of await cluster!.masters()) {
      const node = createRedisConnection(`redis://127.0.0.1:${master.port}`, { name: 'test:cluster-info' });
      if (/connected_slaves:[1-9]/.test(await node.info('replication'))) withReplica.add(master.port);
      await closeRedis(node);
    }
    let key = '';
    for (let n = 0; !key && n < 500; n++) {
      if (withReplica.has((await cluster!.masterOf(limiterKeys.state(`strict${n}`))).port)) key = `strict${n}`;
    }
    expect(key).not.toBe('');
    const queue = await shardedQueue('cluster-limit-failover');
    const config = await cli.file(
      `${queue}.config.json`,
      JSON.stringify({ limits: { [key]: { requestsPerSecond: 40, burst: 4 } }, targets: cli.localTargets() }),
    );
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };
    const ops = Array.from({ length: 400 }, (_, row) => ({
      method: 'POST',
      url: `${api.url}/records`,
      json: { row },
      limitKey: key,
      retry: FAST_RETRY,
    }));
    const batchId = await enqueue(queue, ops, { SLUICE_CONFIG: config });
    await cli.startWorkers(2, { concurrency: 20, env });
    await waitFor(async () => (await api.read()).stats.created >= 120, { what: '120 created', timeoutMs: 30_000 });
    const master = await cluster!.masterOf(limiterKeys.state(key));
    await master.server.kill();
    await waitFor(async () => (await cluster!.masterOf(limiterKeys.state(key)).catch(() => master)).port !== master.port, {
      what: "a replica promoted to serve the key's group",
      timeoutMs: 30_000,
    });
    const done = await waitDone(queue, batchId, 90, { SLUICE_CONFIG: config });
    expect(done.code, done.stderr).toBe(0);
    const { stats, arrivals } = await api.read();
    console.info(
      `limit failover: ${key} on :${master.port} killed; ${stats.limited} refused by the target, busiest second ${maxInWindow(arrivals, 1_000)}`,
    );
    expect(stats.limited).toBe(0);
    expect(stats.created).toBe(400);
    expect(maxInWindow(arrivals, 1_000)).toBeLessThanOrEqual(44);
  }, 180_000);
});

describe('a cluster that is wrong, or goes away', () => {
  it('every node dies: an enqueue in flight gives up in about 20 s saying how to finish (exit 1); `wait` rides it out, then finds the cluster back', async () => {
    // Nodes that keep their data across a restart (AOF; a SIGKILL loses nothing written): the cluster comes back as it was.
    const quiet = await startRedisCluster({
      masters: 3,
      replicasPerMaster: 0,
      nodeTimeoutMs: 2_000,
      args: ['--appendonly', 'yes', '--appendfsync', 'everysec'],
    });
    onTestFinished(() => quiet.stop());
    const target = await localTarget();
    target.setDefault(() => ({ status: 200, json: { ok: true } }));
    const env = { REDIS_URL: quiet.url, SLUICE_QUEUE: uniqueQueue('quiet') };
    const small = await cli.file('quiet.jsonl', jsonl(posts(target, 20, 'quiet')));
    const enqueued = await cli.run(['enqueue', small, '--batch', 'quiet'], { env });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const waiting = cli.spawn(['wait', 'quiet', '--timeout', '150'], { env });

    const config = await cli.file('gone.config.json', JSON.stringify({ allowedHosts: ['api.example.com'] }));
    const ops = Array.from({ length: 100_000 }, (_, n) => ({ method: 'POST', url: `https://api.example.com/items/${n}` }));
    const big = await cli.file('gone.jsonl', jsonl(ops));
    const enqueue = cli.spawn(['enqueue', big, '--batch', 'gone'], { env: { ...env, SLUICE_CONFIG: config } });
    // Writing: its progress line counts operations written.
    await waitFor(() => /enqueue: [1-9]/.test(enqueue.stderr()), { what: 'the enqueue writing', timeoutMs: 60_000, intervalMs: 20 });
    for (const node of quiet.nodes) await node.server.kill();
    const killedAt = Date.now();
    const ended = await enqueue.waitForExit(60_000);
    const tookS = (Date.now() - killedAt) / 1_000;
    console.info(`an enqueue whose cluster died: exit ${ended.code} ${Math.round(tookS)} s after the kill`);
    expect(ended.code, ended.stderr).toBe(1);
    expect(ended.stderr).toMatch(/\d+ operations were written to batch gone before it stopped/);
    expect(ended.stderr).toContain(`sluice enqueue ${big} --batch gone`);
    expect(tookS).toBeLessThan(45);

    // The wait's client has given up too (the same attempts, from the same kill): the wait says
    // Redis is not answering, and goes on.
    await sleep(Math.max(0, 25_000 - (Date.now() - killedAt)));
    expect(waiting.stderr()).toMatch(/not answering/);
    expect(waiting.running()).toBe(true);
    for (const node of quiet.nodes) await node.server.restart();
    await quiet.waitHealthy(30_000);
    await cli.startWorkers(1, { concurrency: 5, env });
    const waited = await waiting.waitForExit(90_000);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stderr).toMatch(/answers again after/);
    expect(requestsPerKey(target, 'quiet').size).toBe(20);
  }, 240_000);

  it('names what is wrong before connecting, and a cluster that does not answer is unreachable (exit 4)', async () => {
    const bad = await cli.run(['status', 'x'], { env: { REDIS_URL: 'redis+cluster://127.0.0.1:7000,nohost' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('REDIS_URL');
    expect(bad.stderr).toContain('seed node "nohost": expected HOST:PORT');
    const down = await cli.run(['status', 'x'], { env: { REDIS_URL: 'redis+cluster://:secret@127.0.0.1:9' } });
    expect(down.code).toBe(4);
    expect(down.stderr).toContain('cannot reach Redis at redis+cluster://:***@127.0.0.1:9');
    expect(down.stderr).not.toContain('secret');
  });
});
