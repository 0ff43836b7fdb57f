/**
 * A Redis restart the fleet rides through is one warn line and one info line per worker process,
 * not an error with a stack for every reconnect attempt of every BullMQ worker in it (18–46 a worker
 * in a red-team's run of 3–7 restarts): an alert on error-level lines must not page for it.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../src/support/redis-server.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisOutageLog } from '../../src/redis/outage-log.js';
import { createSluiceWorker, type SluiceWorker } from '../../src/worker/sluice-worker.js';
import { waitFor } from '../helpers/redis.js';

interface Line {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A debug logger whose lines are kept, parsed. */
function keptLogger() {
  const lines: Line[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text) as Line);
        done();
      },
    }),
  });
  return { logger, lines };
}

const WARN = 40;
const ERROR = 50;

describe('a Redis outage in the logs', () => {
  let server: RedisServerHandle | undefined;
  let worker: SluiceWorker | undefined;
  afterEach(async () => {
    await worker?.close({ force: true });
    worker = undefined;
    await server?.stop();
    server = undefined;
  });

  it('a worker logs one warn line when Redis goes, none at error, and one line when it is back', async () => {
    server = await startRedisServer();
    const { logger, lines } = keptLogger();
    // Its queue's BullMQ worker and its schedules' one both report every reconnect attempt.
    worker = createSluiceWorker({ connection: server.url, logger, warmUp: false, metrics: false, concurrency: 2 });
    await worker.ready();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.kill();
    // Several reconnect attempts of each client.
    await waitFor(() => lines.filter((line) => line.level < WARN && /worker error/.test(line.msg)).length >= 4, {
      timeoutMs: 15_000,
      what: 'reconnect attempts',
    });
    await server.restart();
    const back = await waitFor(() => lines.find((line) => line.msg.startsWith('Redis answers again after')), {
      timeoutMs: 15_000,
      what: 'the line saying Redis is back',
    });

    const warned = lines.filter((line) => line.msg.startsWith('Redis is unavailable'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: WARN, reason: expect.stringMatching(/ECONNREFUSED|ECONNRESET|Connection is closed/) });
    expect(lines.filter((line) => line.level >= ERROR)).toEqual([]);
    expect(back).toMatchObject({ level: 30, downMs: expect.any(Number), errors: expect.any(Number) });
    expect(back!.errors as number).toBeGreaterThanOrEqual(4);
    // The demoted errors keep what they were: which part reported them, and the error.
    const demoted = lines.find((line) => line.level < WARN && line.msg === 'worker error');
    expect(demoted).toMatchObject({ shard: expect.any(String), err: { message: expect.any(String) } });
  }, 60_000);

  it('reminds while Redis stays away, starts over after it is back, and logs other errors at error', async () => {
    server = await startRedisServer();
    const { logger, lines } = keptLogger();
    const redis = createRedisConnection(server.url, { maxRetriesPerRequest: null });
    const outages = createRedisOutageLog(redis, logger, { reminderMs: 400, probeMs: 100 });
    redis.on('error', (error: unknown) => outages.report(error, { part: 'test' }, 'client error'));
    try {
      await redis.ping();
      outages.report(new Error('ERR unknown command'), { part: 'test' }, 'client error');
      expect(lines).toEqual([expect.objectContaining({ level: ERROR, msg: 'client error', part: 'test' })]);

      const count = (prefix: string) => lines.filter((line) => line.msg.startsWith(prefix)).length;
      // The first outage lasts past the reminder's interval; the second, later than that after the
      // last warn line, is one of its own.
      await server.kill();
      await waitFor(() => count('Redis still unavailable') >= 1, { timeoutMs: 15_000, what: 'a reminder' });
      await server.restart();
      await waitFor(() => count('Redis answers again') === 1, { timeoutMs: 15_000, what: 'the end of the first outage' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server.kill();
      await waitFor(() => count('Redis is unavailable') === 2, { timeoutMs: 15_000, what: 'the second outage' });
      await server.restart();
      await waitFor(() => count('Redis answers again') === 2, { timeoutMs: 15_000, what: 'the end of the second outage' });
      const reminders = lines.filter((line) => line.msg.startsWith('Redis still unavailable'));
      expect(reminders.length).toBeGreaterThanOrEqual(1);
      expect(reminders[0]).toMatchObject({ level: WARN, downMs: expect.any(Number), errors: expect.any(Number) });
      expect(reminders[0]!.downMs as number).toBeGreaterThanOrEqual(400);
      expect(lines.filter((line) => line.level >= ERROR)).toHaveLength(1);
    } finally {
      outages.close();
      await closeRedis(redis);
    }
  }, 60_000);
  it('an error reply on a live connection (BUSY) ends when Redis answers, and a restart after it is warned of', async () => {
    server = await startRedisServer();
    const { logger, lines } = keptLogger();
    const redis = createRedisConnection(server.url, { maxRetriesPerRequest: null });
    const spinner = createRedisConnection(server.url, { maxRetriesPerRequest: null });
    const outages = createRedisOutageLog(redis, logger, { reminderMs: 400, probeMs: 100 });
    redis.on('error', (error: unknown) => outages.report(error, { part: 'test' }, 'client error'));
    const count = (prefix: string) => lines.filter((line) => line.msg.startsWith(prefix)).length;
    try {
      await redis.config('SET', 'busy-reply-threshold', '100');
      // A script that runs for 1-2 s: everyone else is answered BUSY meanwhile; the connection stays up.
      const spin = spinner.eval(
        "local s = tonumber(redis.call('TIME')[1]) while tonumber(redis.call('TIME')[1]) - s < 2 do end return 1",
        0,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const refused = await redis.get('anything').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(String(refused)).toMatch(/BUSY/);
      outages.report(refused, { part: 'test' }, 'client error');
      await spin;
      await waitFor(() => count('Redis answers again') === 1, { timeoutMs: 10_000, what: 'the end of the BUSY episode' });
      expect(lines.filter((line) => line.msg.startsWith('Redis is unavailable'))[0]).toMatchObject({
        level: WARN,
        reason: expect.stringMatching(/^BUSY/),
      });

      // Not left "down": a restart later is warned of, and its end told.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server.kill();
      await waitFor(() => count('Redis is unavailable') === 2, { timeoutMs: 15_000, what: 'the restart to be warned of' });
      await server.restart();
      await waitFor(() => count('Redis answers again') === 2, { timeoutMs: 15_000, what: 'the end of the restart' });
      expect(lines.filter((line) => line.level >= ERROR)).toEqual([]);
    } finally {
      outages.close();
      await closeRedis(spinner);
      await closeRedis(redis);
    }
  }, 60_000);
});
