/**
 * One-shot commands of the built `sluice` against a Redis they cannot use: each names the cause —
 * refused, unknown host, connected but silent, a password refused or missing — and the URL with
 * its password masked, within about 2 s of starting to connect; exit 4 when Redis may answer
 * later, 2 when it refuses the credentials (waiting does not fix a password).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../src/support/redis-server.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { useCli } from '../helpers/cli-process.js';

const cli = useCli();

const PASSWORD = 'hunter2-s3cret';
const WRONG = 'wrong-s3cret';

let guarded: RedisServerHandle;
let silent: { server: Server; port: number; sockets: Set<Socket> };
let closedPort: number;

/** A port nothing listens on: one the kernel just gave us, closed again. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  guarded = await startRedisServer({ args: ['--requirepass', PASSWORD] });
  // Accepts connections, reads what comes, and never answers: a stopped or swamped server.
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  silent = { server, port: (server.address() as { port: number }).port, sockets };
  closedPort = await freePort();
});

afterAll(async () => {
  for (const socket of silent?.sockets ?? []) socket.destroy();
  await new Promise((resolve) => (silent ? silent.server.close(resolve) : resolve(undefined)));
  await guarded?.stop();
});

interface Case {
  what: string;
  url: () => string;
  shown: () => string;
  code: number;
  stderr: string;
}

const HINT = 'Set REDIS_URL to point elsewhere.';
const cases: Case[] = [
  {
    what: 'refused',
    url: () => `redis://:${PASSWORD}@127.0.0.1:${closedPort}`,
    shown: () => `redis://:***@127.0.0.1:${closedPort}`,
    code: 4,
    stderr: `connection refused (ECONNREFUSED). Is Redis running there? ${HINT}`,
  },
  {
    what: 'an unknown host',
    url: () => `redis://:${PASSWORD}@nonexistent.invalid:6390`,
    shown: () => 'redis://:***@nonexistent.invalid:6390',
    code: 4,
    stderr: 'unknown host "nonexistent.invalid" (ENOTFOUND). Check the host name in REDIS_URL.',
  },
  {
    what: 'connected, but silent',
    url: () => `redis://:${PASSWORD}@127.0.0.1:${silent.port}/3`,
    shown: () => `redis://:***@127.0.0.1:${silent.port}/3`,
    code: 4,
    stderr: `connected, but no answer within 2000 ms. Is it a Redis server, and not stopped or overloaded? ${HINT}`,
  },
  {
    what: 'a wrong password',
    url: () => `redis://:${WRONG}@127.0.0.1:${guarded.port}`,
    shown: () => `redis://:***@127.0.0.1:${guarded.port}`,
    code: 2,
    stderr:
      'refused the user or password (WRONGPASS: a wrong password, or an ACL user that does not exist or is disabled). ' +
      'Check the user and password in REDIS_URL: redis://USER:PASSWORD@host:port.',
  },
  {
    what: 'an ACL user that does not exist',
    url: () => `redis://bob:${PASSWORD}@127.0.0.1:${guarded.port}/2`,
    shown: () => `redis://bob:***@127.0.0.1:${guarded.port}/2`,
    code: 2,
    stderr:
      'refused the user or password (WRONGPASS: a wrong password, or an ACL user that does not exist or is disabled). ' +
      'Check the user and password in REDIS_URL: redis://USER:PASSWORD@host:port.',
  },
  {
    what: 'no password',
    url: () => `redis://127.0.0.1:${guarded.port}`,
    shown: () => `redis://127.0.0.1:${guarded.port}`,
    code: 2,
    stderr:
      'wants a password, and REDIS_URL gives none (NOAUTH). ' +
      'Put it in REDIS_URL: redis://:PASSWORD@host:port, or redis://USER:PASSWORD@host:port for an ACL user.',
  },
];

/** The whole line: `cannot reach Redis at URL: …` (exit 4), `Redis at URL …` (exit 2). */
function expectedLine(c: Case): string {
  return c.code === 4 ? `sluice: cannot reach Redis at ${c.shown()}: ${c.stderr}\n` : `sluice: Redis at ${c.shown()} ${c.stderr}\n`;
}

describe('a Redis the CLI cannot use', () => {
  it.each(cases)('$what: the cause and the masked URL, exit $code (the built binary)', async (c) => {
    const started = Date.now();
    const result = await cli.run(['status', 'some-batch'], { env: { REDIS_URL: c.url() }, timeoutMs: 15_000 });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(c.code);
    expect(result.stderr).toBe(expectedLine(c));
    expect(result.stdout).toBe('');
    for (const secret of [PASSWORD, WRONG]) expect(result.stderr).not.toContain(secret);
    // Node's start-up and the CLI's imports included: 0.5 s on a quiet machine, 2 s and more on a
    // loaded one; the next test times the decision itself.
    expect(elapsed).toBeLessThan(8_000);
  });

  it.each(cases)('$what: decided within about 2 s of the first connection attempt', async (c) => {
    const started = Date.now();
    const result = await runCliInProcess(['dlq', 'list'], { REDIS_URL: c.url() });
    const elapsed = Date.now() - started;
    expect(result.code, result.stderr).toBe(c.code);
    expect(result.stderr).toBe(expectedLine(c));
    expect(elapsed).toBeLessThan(2_600);
  });

  it('sluice wait stops at once on a refused password (exit 2) instead of riding it out like an outage', async () => {
    const c = cases.find((entry) => entry.what === 'a wrong password')!;
    const started = Date.now();
    const result = await cli.run(['wait', 'some-batch', '--timeout', '60'], { env: { REDIS_URL: c.url() }, timeoutMs: 15_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(expectedLine(c));
    expect(Date.now() - started).toBeLessThan(8_000);
  });
});
