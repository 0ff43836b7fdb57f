import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { redisAnswers, startRedisServer } from '../../src/support/redis-server.js';

describe('startRedisServer', () => {
  it('starts, survives a kill and restart on the same port, and stops', async () => {
    const redis = await startRedisServer();
    onTestFinished(() => redis.stop());
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.pid).toBeGreaterThan(0);
    expect(existsSync(redis.dir)).toBe(true);
    expect(await redisAnswers(redis.url)).toBe(true);

    const firstPid = redis.pid;
    await redis.kill();
    expect(await redisAnswers(redis.url)).toBe(false);

    await redis.restart();
    expect(await redisAnswers(redis.url)).toBe(true);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.pid).not.toBe(firstPid);

    const stopping = redis.stop();
    expect(redis.stop()).toBe(stopping);
    await stopping;
    expect(await redisAnswers(redis.url)).toBe(false);
    expect(existsSync(redis.dir)).toBe(false);
    await expect(redis.restart()).rejects.toThrow(/stopped/);
  });

  it('restarts a running server on the same port', async () => {
    const redis = await startRedisServer({ args: ['--loglevel', 'warning'] });
    onTestFinished(() => redis.stop());
    const { port, pid } = redis;
    await redis.restart();
    expect(redis.port).toBe(port);
    expect(redis.pid).not.toBe(pid);
    expect(await redisAnswers(redis.url)).toBe(true);
  });

  it('gives each server its own port', async () => {
    const [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
    onTestFinished(() => Promise.all([a.stop(), b.stop()]).then(() => undefined));
    expect(a.port).not.toBe(b.port);
  });

  it('explains how to install redis-server when the binary is missing', async () => {
    const expected =
      'redis-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server; ' +
      'macOS: brew install redis) or set REDIS_URL to a running Redis.';
    await expect(startRedisServer({ bin: 'sluice-no-such-redis-server' })).rejects.toThrow(expected);
  });
});

describe('redisAnswers', () => {
  it('is false when nothing listens or something else answers', async () => {
    const http = createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      return closing;
    };
    onTestFinished(close);
    const { port } = http.address() as AddressInfo;
    expect(await redisAnswers(`redis://127.0.0.1:${port}`)).toBe(false);
    await close();
    expect(await redisAnswers(`redis://127.0.0.1:${port}`)).toBe(false);
  });
});
