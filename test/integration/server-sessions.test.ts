/**
 * Dashboard sessions kept in Redis (the cookie holds a random id, never a token) and the per-address
 * limit on failed sign-ins and bearer tokens, over real sockets, with two server replicas sharing
 * one Redis.
 */
import { describe, expect, it } from 'vitest';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { parseApiTokens } from '../../src/server/api-tokens.js';
import type { ServerOptions } from '../../src/server/build-server.js';

const redis = useRedisServer();
const queue = uniqueQueue('sessions');

function start(extra: Partial<ServerOptions> = {}): Promise<ApiServer> {
  return startApiServer({ redis: redis().client, config: EMPTY_CONFIG, queue, ...extra });
}

const COOKIE = /^sluice_session=([A-Za-z0-9_-]{43}); Path=\/; HttpOnly; SameSite=Strict; Max-Age=(\d+)$/;

/** Signs in with a token; returns the `name=value` pair to send back as the Cookie header. */
async function signIn(api: ApiServer, token: string): Promise<string> {
  const response = await api.call('/login', { method: 'POST', role: null, json: { token } });
  expect(response.status).toBe(200);
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith('sluice_session='));
  expect(cookie).toMatch(COOKIE);
  return cookie!.split(';')[0]!;
}

const withCookie = (api: ApiServer, cookie: string, path = '/v1/overview') => api.call(path, { role: null, headers: { cookie } });

async function sessionKeys(): Promise<string[]> {
  return redis().client.keys('sluice:session:*');
}

/** Every key and value in Redis, as text. */
async function everythingInRedis(): Promise<string> {
  const client = redis().client;
  const out: string[] = [];
  for (const key of await client.keys('*')) {
    const type = await client.type(key);
    out.push(key);
    if (type === 'string') out.push((await client.get(key)) ?? '');
    if (type === 'hash') out.push(JSON.stringify(await client.hgetall(key)));
  }
  return out.join('\n');
}

describe('dashboard sessions', () => {
  it('keeps the session in Redis: the cookie holds a random id, never the token; every replica accepts it; sign-out revokes it', async () => {
    const api = await start();
    const replica = await start();
    const before = await sessionKeys();
    const response = await api.call('/login', { method: 'POST', role: null, json: { token: TOKENS.read } });
    expect(await response.json()).toEqual({ role: 'read' });
    const cookies = response.headers.getSetCookie();
    const session = cookies.find((line) => line.startsWith('sluice_session='))!;
    expect(session).toMatch(COOKIE);
    expect(COOKIE.exec(session)![2]).toBe('43200');
    // The cookie of earlier versions held the token itself: it is cleared.
    expect(cookies).toContain('sluice_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    expect(cookies.join('\n')).not.toContain(TOKENS.read);
    const cookie = session.split(';')[0]!;
    const id = cookie.slice('sluice_session='.length);

    const added = (await sessionKeys()).filter((key) => !before.includes(key));
    expect(added).toHaveLength(1);
    expect(await redis().client.hget(added[0]!, 'role')).toBe('read');
    const stored = await everythingInRedis();
    expect(stored).not.toContain(TOKENS.read);
    expect(stored).not.toContain(id);

    for (const server of [api, replica]) {
      const overview = await withCookie(server, cookie);
      expect(overview.status).toBe(200);
      expect(((await overview.json()) as { viewer: unknown }).viewer).toEqual({ role: 'read' });
    }
    // A token in a cookie is no session.
    expect((await withCookie(api, `sluice_token=${TOKENS.admin}`)).status).toBe(401);
    expect((await withCookie(api, `sluice_session=${TOKENS.admin}`)).status).toBe(401);

    // Signing out needs the CSRF header; then the session is gone for every replica.
    expect((await api.call('/logout', { method: 'POST', role: null, headers: { cookie } })).status).toBe(403);
    expect((await withCookie(replica, cookie)).status).toBe(200);
    const out = await replica.call('/logout', { method: 'POST', role: null, headers: { cookie, 'x-sluice-request': '1' } });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie()).toContain('sluice_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    for (const server of [api, replica]) expect((await withCookie(server, cookie)).status).toBe(401);
    expect(await redis().client.exists(added[0]!)).toBe(0);
    expect(api.log()).not.toContain(id);
  });

  it('ends a session after the idle limit without use, and at the absolute limit however busy; each use renews the idle time', async () => {
    const api = await start({ sessionIdleSeconds: 60, sessionMaxSeconds: 3_600 });
    const before = await sessionKeys();
    const cookie = await signIn(api, TOKENS.admin);
    const key = (await sessionKeys()).find((found) => !before.includes(found))!;
    const ttl = await redis().client.pttl(key);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await redis().client.pexpire(key, 5_000);
    expect((await withCookie(api, cookie)).status).toBe(200);
    expect(await redis().client.pttl(key)).toBeGreaterThan(50_000);

    // Past its absolute limit a session ends, however recently it was used.
    const [seconds] = await redis().client.time();
    await redis().client.hset(key, 'expiresAt', String(Number(seconds) * 1_000 - 1));
    expect((await withCookie(api, cookie)).status).toBe(401);
    expect(await redis().client.exists(key)).toBe(0);

    // Left alone past the idle limit, it ends (watched in Redis: a request would renew it).
    const brief = await start({ sessionIdleSeconds: 1 });
    const others = await sessionKeys();
    const idle = await signIn(brief, TOKENS.read);
    const idleKey = (await sessionKeys()).find((found) => !others.includes(found))!;
    await waitFor(async () => (await redis().client.exists(idleKey)) === 0, { timeoutMs: 10_000, what: 'the idle session to end' });
    expect((await withCookie(brief, idle)).status).toBe(401);
  });

  it('ends a session whose token was removed from SLUICE_API_TOKENS or given another role', async () => {
    const api = await start();
    const cookie = await signIn(api, TOKENS.enqueue);
    const without = await start({ tokens: parseApiTokens(`${TOKENS.admin}:admin,${TOKENS.read}:read`) });
    expect((await withCookie(without, cookie)).status).toBe(401);
    const cookie2 = await signIn(api, TOKENS.enqueue);
    const demoted = await start({ tokens: parseApiTokens(`${TOKENS.admin}:admin,${TOKENS.enqueue}:read`) });
    expect((await withCookie(demoted, cookie2)).status).toBe(401);
    // Sessions of tokens still configured as they were are untouched.
    const cookie3 = await signIn(api, TOKENS.admin);
    expect((await withCookie(demoted, cookie3)).status).toBe(200);
  });

  it('keeps the CSRF rule: a change made with the session cookie needs the x-sluice-request header', async () => {
    const api = await start();
    const cookie = await signIn(api, TOKENS.admin);
    const put = (headers: Record<string, string>) =>
      api.call('/v1/limits/session-key', { method: 'PUT', role: null, headers: { cookie, ...headers }, json: { rps: 5 } });
    const forged = await put({});
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { message: string }).message).toContain('x-sluice-request');
    expect((await put({ 'x-sluice-request': '1' })).status).toBe(200);
  });
});

describe('failed sign-ins and bearer tokens, per address', () => {
  it('after 10 failures in the window every credential from that address gets 429 with Retry-After, on every replica, until the window ends', async () => {
    const api = await start({ authFailureWindowSeconds: 2 });
    const replica = await start({ authFailureWindowSeconds: 2 });
    const earlier = await signIn(api, TOKENS.read);
    for (let i = 0; i < 6; i++) {
      const bad = await api.call('/login', { method: 'POST', role: null, json: { token: `wrong-token-number-${i}` } });
      expect(bad.status).toBe(401);
    }
    for (let i = 0; i < 4; i++) {
      const bad = await replica.call('/v1/limits', { role: null, headers: { authorization: `Bearer wrong-bearer-${i}-0123456789` } });
      expect(bad.status).toBe(401);
    }
    const refused = [
      await api.call('/login', { method: 'POST', role: null, json: { token: TOKENS.admin } }),
      await api.call('/v1/limits', { role: 'read' }),
      await replica.call('/v1/limits', { role: 'admin' }),
      await replica.call('/login', { method: 'POST', role: null, json: { token: 'wrong-again-0123456789' } }),
    ];
    for (const response of refused) {
      expect(response.status).toBe(429);
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(2);
      const body = (await response.json()) as { code: string; message: string };
      expect(body.code).toBe('TOO_MANY_AUTH_FAILURES');
      expect(body.message).toContain('10 failed');
    }
    expect(refused[0]!.headers.getSetCookie()).toEqual([]);
    // What needs no token, and a session opened before, still work.
    expect((await api.call('/healthz', { role: null })).status).toBe(200);
    expect((await withCookie(api, earlier)).status).toBe(200);
    expect(await redis().client.exists('sluice:auth-failures:127.0.0.1')).toBe(1);

    await waitFor(async () => (await api.call('/v1/limits', { role: 'read' })).status === 200, {
      timeoutMs: 10_000,
      what: 'the window to end',
    });
    expect((await replica.call('/login', { method: 'POST', role: null, json: { token: TOKENS.admin } })).status).toBe(200);
  });

  it('counts by client address behind a trusted proxy (IPv6 by /64), and ignores X-Forwarded-For otherwise', async () => {
    const proxied = await start({ trustProxy: '127.0.0.1', authFailureLimit: 2 });
    const from = (address: string, token = 'a-token-nobody-issued-0123') =>
      proxied.call('/v1/limits', { role: null, headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': address } });
    for (const address of ['203.0.113.7', '203.0.113.7', '2001:db8:1:2::1', '2001:db8:1:2:ffff::9']) {
      expect((await from(address)).status).toBe(401);
    }
    expect((await from('203.0.113.7', TOKENS.read)).status).toBe(429);
    expect((await from('2001:db8:1:2::77', TOKENS.read)).status).toBe(429);
    expect((await from('203.0.113.8', TOKENS.read)).status).toBe(200);
    expect((await from('2001:db8:1:3::1', TOKENS.read)).status).toBe(200);

    const direct = await start({ authFailureLimit: 2 });
    const spoofed = (address: string) =>
      direct.call('/v1/limits', {
        role: null,
        headers: { authorization: 'Bearer a-token-nobody-issued-0123', 'x-forwarded-for': address },
      });
    expect((await spoofed('198.51.100.1')).status).toBe(401);
    expect((await spoofed('198.51.100.2')).status).toBe(401);
    expect((await spoofed('198.51.100.3')).status).toBe(429);
    await redis().client.del('sluice:auth-failures:127.0.0.1');
  });
});
