import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { Queue } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PREFIX, bullQueueName } from '../../src/redis/keys.js';
import { closeRedis, createRedisConnection } from '../../src/redis/connection.js';
import { BOARD_PATH } from '../../src/server/dashboard/bull-board.js';
import { PAGE_CSP } from '../../src/server/dashboard/page.js';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

interface QueueOverview {
  name: string;
  isDefault: boolean;
  paused: boolean;
  jobs: Record<'waiting' | 'active' | 'delayed' | 'completed' | 'failed' | 'paused', number>;
  throughput: { since: string; completed: number[]; failed: number[] };
  batches: { batchId: string; total: number; succeeded: number; deadLettered: number; pending: number; done: boolean }[];
  deadLetters: { total: number; groups: { limitKey: string | null; status: number | null; reason: string; count: number }[] };
}
interface Overview {
  generatedAt: string;
  viewer: { role: string };
  queues: QueueOverview[];
  limits: { key: string; inFlight: number; recent429s: number; effectiveRate: number | null }[];
}

const ASSETS = new URL('../../src/server/dashboard/assets/', import.meta.url);
const asset = (name: string) => readFileSync(new URL(name, ASSETS), 'utf8');
/** The page's script: app.js and the modules it imports, every `.js` file in assets/. */
const SCRIPT_MODULES = readdirSync(ASSETS)
  .filter((name) => name.endsWith('.js'))
  .sort();

/** What a module imports: the specifiers of its static and dynamic imports. */
function importsOf(code: string): string[] {
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((match) => match[1]!);
}

const LIMITS = { 'dash-limit': { requestsPerSecond: 100, concurrency: 4 } };

async function setup(): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis(), { config: { targets: {}, limits: LIMITS, allowedHosts: [] } });
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, queueDiscoveryMs: 0, overviewReuseMs: 0 });
  return { p, api };
}

async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function overview(api: ApiServer, role: keyof typeof TOKENS = 'read'): Promise<Overview> {
  const response = await api.call('/v1/overview', { role });
  expect(response.status).toBe(200);
  return json<Overview>(response);
}

/** Enqueues 3 that succeed, 1 that gets 404 once (then 200) and 2 that get 422; waits until all are finished. */
async function mixedBatch(p: Pipeline, api: ApiServer): Promise<string> {
  p.target.script('POST /gone', [{ status: 404 }, { status: 200, json: { back: true } }]);
  p.target.script('POST /bad', [{ status: 422 }]);
  const operations = ['/ok/1', '/ok/2', '/ok/3', '/gone', '/bad', '/bad'].map((path) => p.op(path, { limitKey: 'dash-limit' }));
  const response = await api.call('/v1/operations?batch=dash-1', { method: 'POST', role: 'enqueue', json: operations });
  expect(response.status).toBe(202);
  await p.settled('dash-1');
  return 'dash-1';
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe('GET /v1/overview', () => {
  it('reports what the queues really hold: jobs by state, per-minute throughput, batches, dead-letter groups and limit keys', async () => {
    const { p, api } = await setup();
    const batchId = await mixedBatch(p, api);

    // A second queue that no worker serves, found by discovery: one waiting job, one delayed.
    const otherName = uniqueQueue('other');
    const other = new Queue(bullQueueName(otherName), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => other.close());
    await other.add('op', { op: { method: 'GET', url: 'https://example.com/' } });
    await other.add('op', { op: { method: 'GET', url: 'https://example.com/' } }, { delay: 60_000 });

    const seen = await overview(api);
    expect(seen.viewer).toEqual({ role: 'read' });
    // The server's queue first, then the others found in Redis.
    expect(seen.queues[0]!.name).toBe(p.queue);
    const mine = seen.queues[0]!;
    const theirs = seen.queues.find((queue) => queue.name === otherName)!;

    const counts = await p.bullQueue().getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
    expect(counts).toMatchObject({ completed: 3, failed: 3 });
    expect(mine).toMatchObject({
      isDefault: true,
      paused: false,
      jobs: { waiting: 0, active: 0, delayed: 0, completed: 3, failed: 3, paused: 0 },
    });
    // Dead letters are failed jobs in BullMQ; all six finished within the last minute or two.
    expect(mine.throughput.completed).toHaveLength(15);
    expect(sum(mine.throughput.completed)).toBe(3);
    expect(sum(mine.throughput.failed)).toBe(3);
    expect(Date.parse(mine.throughput.since)).toBeLessThanOrEqual(Date.now() - 14 * 60_000);

    const batch = await json(await api.call(`/v1/batches/${batchId}`, { role: 'read' }));
    expect(mine.batches).toEqual([batch]);
    expect(batch).toMatchObject({ total: 6, succeeded: 3, deadLettered: 3, pending: 0, done: true });

    const listing = await json<{ total: number; groups: unknown[] }>(await api.call('/v1/dead-letters?limit=0', { role: 'read' }));
    expect(mine.deadLetters).toEqual({ total: 3, groups: listing.groups });
    expect(mine.deadLetters.groups.map((group) => [group.limitKey, group.status, group.reason, group.count])).toEqual([
      ['dash-limit', 422, 'permanent-status', 2],
      ['dash-limit', 404, 'permanent-status', 1],
    ]);

    expect(theirs).toMatchObject({
      isDefault: false,
      paused: false,
      jobs: { waiting: 1, delayed: 1, completed: 0, failed: 0 },
      batches: [],
      deadLetters: { total: 0 },
    });
    await other.pause();
    const paused = (await overview(api)).queues.find((queue) => queue.name === otherName)!;
    expect(paused).toMatchObject({ paused: true, jobs: { waiting: 0, paused: 1, delayed: 1 } });

    const limits = await json<{ key: string }[]>(await api.call('/v1/limits', { role: 'read' }));
    expect(seen.limits.map((limit) => limit.key)).toEqual(limits.map((limit) => limit.key));
    expect(seen.limits.find((limit) => limit.key === 'dash-limit')).toMatchObject({ inFlight: 0, recent429s: 0 });

    // Replaying the 404 group: it succeeds, and the overview follows.
    const replay = await api.call('/v1/dead-letters/replay', {
      method: 'POST',
      json: { filter: { limitKey: 'dash-limit', status: 404, reason: 'permanent-status' } },
    });
    expect(await json(replay)).toMatchObject({ replayed: 1 });
    const after = await waitFor(
      async () => {
        const queue = (await overview(api)).queues[0]!;
        return queue.jobs.completed === 4 ? queue : undefined;
      },
      { what: 'the replayed operation to complete' },
    );
    expect(after!.deadLetters.total).toBe(2);
    expect(after!.deadLetters.groups).toHaveLength(1);
    expect(after!.batches[0]).toMatchObject({ succeeded: 4, deadLettered: 2, done: true });
    expect(sum(after!.throughput.completed)).toBe(4);
  });

  it("needs a token, takes the dashboard cookie, and answers 503 with the API's message when Redis is gone", async () => {
    const { api } = await setup();
    expect((await api.call('/v1/overview', { role: null })).status).toBe(401);
    const byCookie = await api.call('/v1/overview', { role: null, headers: { cookie: await api.signIn('admin') } });
    expect((await json<Overview>(byCookie)).viewer.role).toBe('admin');
    expect((await api.call('/v1/overview?queue=x', { role: 'read' })).status).toBe(400);

    const dead = createRedisConnection('redis://127.0.0.1:9', { name: 'test-dead' });
    onTestFinished(() => closeRedis(dead));
    const cut = await startApiServer({ redis: dead, config: { targets: {}, limits: {}, allowedHosts: [] }, queue: uniqueQueue('gone') });
    const down = await cut.call('/v1/overview', { role: 'read' });
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(await json(down)).toEqual({
      type: '/problems/redis-unavailable',
      title: 'Redis is not answering',
      status: 503,
      detail: 'Redis is not answering; try again shortly',
      instance: '/v1/overview',
      code: 'REDIS_UNAVAILABLE',
      message: 'Redis is not answering; try again shortly',
    });
    await cut.app.close();
  });
});

describe('signing in: /login and /logout', () => {
  it('sets an HttpOnly, SameSite=Strict cookie for a good token (Secure over https), refuses a bad one with 401, and clears it', async () => {
    const { api } = await setup();
    const login = (token: string, headers: Record<string, string> = {}) =>
      api.call('/login', { method: 'POST', role: null, json: { token }, headers });

    const good = await login(TOKENS.read);
    expect(good.status).toBe(200);
    expect(await json(good)).toEqual({ role: 'read' });
    // The cookie holds a session id, not the token (see server-sessions.test.ts).
    const cookie = good.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/^sluice_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    const session = cookie.split(';')[0]!;
    expect((await api.call('/v1/overview', { role: null, headers: { cookie: session } })).status).toBe(200);

    // Behind a TLS-terminating proxy that says so, the cookie is Secure.
    expect((await login(TOKENS.admin, { 'x-forwarded-proto': 'https' })).headers.getSetCookie()[0]).toMatch(/; Secure$/);
    expect((await login(TOKENS.admin, { forwarded: 'for=1.2.3.4;proto=https' })).headers.getSetCookie()[0]).toMatch(/; Secure$/);

    const bad = await login('not-a-token-anyone-issued');
    expect(bad.status).toBe(401);
    expect(await json(bad)).toEqual({
      type: '/problems/unauthorized',
      title: 'Missing or unknown token',
      status: 401,
      detail: 'unknown token',
      instance: '/login',
      code: 'UNAUTHORIZED',
      message: 'unknown token',
    });
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect((await api.call('/login', { method: 'POST', role: null, json: {} })).status).toBe(400);

    expect((await api.call('/logout', { method: 'POST', role: null, headers: { cookie: session } })).status).toBe(403);
    const out = await api.call('/logout', { method: 'POST', role: null, headers: { cookie: session, 'x-sluice-request': '1' } });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie()[0]).toBe('sluice_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    expect((await api.call('/v1/overview', { role: null, headers: { cookie: session } })).status).toBe(401);
    expect(api.log()).not.toContain(TOKENS.read);
  });
});

describe('the page at /', () => {
  it('serves the HTML with a strict Content-Security-Policy, and its script and style from /assets', async () => {
    const { api } = await setup();
    const page = await api.call('/', { role: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(PAGE_CSP).toContain("default-src 'self'; script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const html = await page.text();
    expect(html).toBe(asset('index.html'));
    expect(html).toContain('<script type="module" src="/assets/app.js"></script>');
    expect(html).toContain('href="/dashboard"');
    // The board's path is written out in the HTML; it must be the one bull-board is mounted at.
    expect(html).toContain(`href="${BOARD_PATH}"`);
    expect(html).toContain('href="/openapi.json"');
    // Nothing inline that the policy would block, nothing from elsewhere.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/);
    expect(html).not.toMatch(/https?:\/\//);

    // The script: every module in assets/ is served as it is there, with the page's headers, and parses as a module.
    expect(SCRIPT_MODULES).toContain('app.js');
    const imports = new Map<string, string[]>();
    for (const name of SCRIPT_MODULES) {
      const script = await api.call(`/assets/${name}`, { role: null });
      expect(script.status, name).toBe(200);
      expect(script.headers.get('content-type'), name).toBe('text/javascript; charset=utf-8');
      expect(script.headers.get('cache-control'), name).toBe('no-cache');
      expect(script.headers.get('content-security-policy'), name).toBe(PAGE_CSP);
      expect(script.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(script.headers.get('referrer-policy'), name).toBe('no-referrer');
      const code = await script.text();
      expect(code, name).toBe(asset(name));
      expect(() => execFileSync(process.execPath, ['--input-type=module', '--check'], { input: code, stdio: 'pipe' }), name).not.toThrow();
      expect(code, name).not.toContain('innerHTML');
      imports.set(name, importsOf(code));
    }
    // Modules import only each other, by relative specifiers the page can load; from app.js every one is reached, with no cycle.
    const reached = new Set<string>();
    const visit = (name: string, path: string[]) => {
      expect(path, `import cycle: ${[...path, name].join(' -> ')}`).not.toContain(name);
      if (reached.has(name)) return;
      for (const specifier of imports.get(name)!) {
        expect(specifier, `${name} imports ${specifier}`).toMatch(/^\.\/[^/]+\.js$/);
        expect(SCRIPT_MODULES, `${name} imports ${specifier}`).toContain(specifier.slice(2));
        visit(specifier.slice(2), [...path, name]);
      }
      reached.add(name);
    };
    visit('app.js', []);
    expect([...reached].sort()).toEqual(SCRIPT_MODULES);
    // Only those names: nothing else under /assets/, nothing outside it.
    for (const path of [
      '/assets/missing.js',
      '/assets/index.html',
      '/assets/app.mjs',
      '/assets/..%2Fpage.ts',
      '/assets/..%2Fpage.js',
      '/page.ts',
    ])
      expect((await api.call(path, { role: null })).status, path).toBe(404);
    const style = await api.call('/assets/app.css', { role: null });
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(style.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(await style.text()).toBe(asset('app.css'));
  });
});

describe('bull-board at /dashboard', () => {
  it("is read-only for a read or enqueue token: the board and its API answer GET, every action is refused with 403 and changes nothing; an admin's works", async () => {
    const { p, api } = await setup();
    await mixedBatch(p, api);
    const bull = p.bullQueue();
    const q = encodeURIComponent(bullQueueName(p.queue));
    const [failedJob] = await bull.getFailed(0, 0);
    const failedCount = () => bull.getFailedCount();
    expect(await failedCount()).toBe(3);

    // Signed out: pages go to the sign-in form (and back after it), the API says 401.
    const signedOut = await fetch(`${api.url}/dashboard/queue/${q}`, { redirect: 'manual' });
    expect(signedOut.status).toBe(302);
    expect(signedOut.headers.get('location')).toBe(`/?next=${encodeURIComponent(`/dashboard/queue/${q}`)}`);
    expect((await fetch(`${api.url}/dashboard/api/queues`)).status).toBe(401);
    expect(
      (await fetch(`${api.url}/dashboard/read-only/api/queues`, { headers: { authorization: 'Bearer not-a-token-anyone-issued' } })).status,
    ).toBe(401);

    for (const role of ['read', 'enqueue'] as const) {
      const headers = { authorization: `Bearer ${TOKENS[role]}` };
      const cookie = { cookie: await api.signIn(role) };
      const page = await fetch(`${api.url}/dashboard/queue/${q}`, { headers: cookie, redirect: 'manual' });
      expect(page.status).toBe(302);
      expect(page.headers.get('location')).toBe(`/dashboard/read-only/queue/${q}`);
      const board = await fetch(`${api.url}/dashboard/read-only`, { headers: cookie });
      expect(board.status).toBe(200);
      expect(await board.text()).toContain('<base href="/dashboard/read-only/" />');
      const listed = await json<{ queues: { name: string; displayName: string; readOnlyMode: boolean; counts: Record<string, number> }[] }>(
        await fetch(`${api.url}/dashboard/read-only/api/queues`, { headers }),
      );
      expect(listed.queues.find((queue) => queue.displayName === p.queue)).toMatchObject({
        readOnlyMode: true,
        counts: { failed: 3, completed: 3 },
      });
      expect((await fetch(`${api.url}/dashboard/read-only/api/queues/${q}/${failedJob!.id}`, { headers })).status).toBe(200);
      // Bounded pages, and no Redis host details, for anyone below admin.
      expect(
        (await fetch(`${api.url}/dashboard/read-only/api/queues?activeQueue=${q}&status=completed&jobsPerPage=100000`, { headers })).status,
      ).toBe(400);
      expect((await fetch(`${api.url}/dashboard/read-only/api/redis/stats`, { headers })).status).toBe(403);

      const actions: [string, string][] = [
        ['PUT', `/api/queues/${q}/retry/failed`],
        ['PUT', `/api/queues/${q}/clean/failed`],
        ['PUT', `/api/queues/${q}/${failedJob!.id}/retry`],
        ['PUT', `/api/queues/${q}/${failedJob!.id}/clean`],
        ['PUT', `/api/queues/${q}/promote`],
        ['PUT', `/api/queues/${q}/pause`],
        ['PUT', `/api/queues/${q}/empty`],
        ['PUT', `/api/queues/${q}/obliterate`],
        ['PUT', '/api/queues/pause'],
        ['POST', `/api/queues/${q}/add`],
        ['PATCH', `/api/queues/${q}/${failedJob!.id}/update-data`],
      ];
      for (const [method, path] of actions) {
        for (const base of ['/dashboard/read-only', '/dashboard']) {
          for (const auth of [headers, { ...cookie, 'x-sluice-request': '1', 'sec-fetch-site': 'same-origin' }]) {
            const refused = await fetch(`${api.url}${base}${path}`, {
              method,
              headers: { ...auth, 'content-type': 'application/json' },
              body: '{}',
            });
            expect(refused.status, `${role} ${method} ${base}${path}`).toBe(403);
            expect((await json(refused))['code']).toBe('FORBIDDEN');
          }
        }
      }
      expect(await failedCount()).toBe(3);
      expect(await bull.isPaused()).toBe(false);
    }

    // An admin's board offers the actions; failed jobs are dead letters, so they are replayed from / instead of retried.
    const admin = { authorization: `Bearer ${TOKENS.admin}` };
    const adminList = await json<{ queues: { displayName: string; readOnlyMode: boolean; allowRetries: boolean }[] }>(
      await fetch(`${api.url}/dashboard/api/queues`, { headers: admin }),
    );
    expect(adminList.queues.find((queue) => queue.displayName === p.queue)).toMatchObject({ readOnlyMode: false, allowRetries: false });
    const retry = await fetch(`${api.url}/dashboard/api/queues/${q}/${failedJob!.id}/retry`, { method: 'PUT', headers: admin });
    expect(retry.status).toBe(409);
    expect(await failedCount()).toBe(3);
    // A cookie-signed change must come from the board's own page (CSRF).
    const adminCookie = { cookie: await api.signIn('admin') };
    const forged = await fetch(`${api.url}/dashboard/api/queues/${q}/${failedJob!.id}/clean`, {
      method: 'PUT',
      headers: { ...adminCookie, 'sec-fetch-site': 'cross-site' },
    });
    expect(forged.status).toBe(403);
    expect(await failedCount()).toBe(3);
    const cleanOne = await fetch(`${api.url}/dashboard/api/queues/${q}/${failedJob!.id}/clean`, {
      method: 'PUT',
      headers: { ...adminCookie, 'sec-fetch-site': 'same-origin' },
    });
    expect(cleanOne.status).toBe(204);
    expect(await failedCount()).toBe(2);
    const pause = await fetch(`${api.url}/dashboard/api/queues/${q}/pause`, { method: 'PUT', headers: admin });
    expect(pause.ok).toBe(true);
    expect(await bull.isPaused()).toBe(true);
    expect((await fetch(`${api.url}/dashboard/api/queues/${q}/resume`, { method: 'PUT', headers: admin })).ok).toBe(true);
    expect(await bull.isPaused()).toBe(false);
    // Dead letters are sluice's own records: cleaning BullMQ's failed set leaves them.
    expect((await json(await api.call('/v1/dead-letters?limit=0', { role: 'read' })))['total']).toBe(3);
  });

  it('shows job data and results with credential-looking headers and query parameters redacted, and lists queues that appear later', async () => {
    const { p, api } = await setup();
    p.target.setDefault(() => ({ status: 200, json: { ok: true }, headers: { 'set-cookie': 'session=target-session-secret' } }));
    const operation = p.op('/secret', {
      url: `${p.target.url}/secret?token=url-token-secret&page=2`,
      headers: { authorization: 'Bearer header-bearer-secret', 'X-Api-Key': 'header-api-key-secret', accept: 'application/json' },
      query: { api_key: 'query-api-key-secret', client_secret: 'query-client-secret', limit: '10' },
      json: { password: 'body-password-secret', name: 'visible-name' },
    });
    const { batchId, ids } = await json<{ batchId: string; ids: string[] }>(
      await api.call('/v1/operations', { method: 'POST', role: 'enqueue', json: [operation] }),
    );
    await p.settled(batchId);
    const q = encodeURIComponent(bullQueueName(p.queue));
    const admin = { authorization: `Bearer ${TOKENS.admin}` };
    const secrets = [
      'url-token-secret',
      'header-bearer-secret',
      'header-api-key-secret',
      'query-api-key-secret',
      'query-client-secret',
      'body-password-secret',
    ];

    for (const path of [
      `/dashboard/api/queues/${q}/${ids[0]}`,
      `/dashboard/read-only/api/queues/${q}/${ids[0]}`,
      `/dashboard/api/queues?activeQueue=${q}&status=completed&page=1`,
    ]) {
      const text = await (await fetch(`${api.url}${path}`, { headers: admin })).text();
      expect(text).toContain('visible-name');
      expect(text).toContain('"accept":"application/json"');
      expect(text).toContain('"limit":"10"');
      expect(text).toContain('[redacted]');
      for (const secret of secrets) expect(text, `${path} shows ${secret}`).not.toContain(secret);
      expect(text).not.toContain('target-session-secret');
    }
    const job = await json<{ job: { data: { op: { headers: Record<string, string>; query: Record<string, string>; url: string } } } }>(
      await fetch(`${api.url}/dashboard/api/queues/${q}/${ids[0]}`, { headers: admin }),
    );
    expect(job.job.data.op.headers).toEqual({ authorization: '[redacted]', 'X-Api-Key': '[redacted]', accept: 'application/json' });
    expect(job.job.data.op.query).toEqual({ api_key: '[redacted]', client_secret: '[redacted]', limit: '10' });
    expect(job.job.data.op.url).toBe(`${p.target.url}/secret?token=[redacted]&page=2`);

    // A queue created after the server started joins the boards (discovery is immediate in this test).
    const laterName = uniqueQueue('later');
    const later = new Queue(bullQueueName(laterName), { connection: redis().client, prefix: PREFIX });
    onTestFinished(() => later.close());
    await later.add('op', { op: { method: 'GET', url: 'https://example.com/' } });
    const listed = await json<{ queues: { displayName: string }[] }>(
      await fetch(`${api.url}/dashboard/read-only/api/queues`, { headers: admin }),
    );
    expect(listed.queues.map((queue) => queue.displayName)).toEqual(expect.arrayContaining([p.queue, laterName]));
  });
});
