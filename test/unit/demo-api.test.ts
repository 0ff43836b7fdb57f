import { describe, expect, it, onTestFinished } from 'vitest';
import { startDemoApi, type DemoApi, type DemoApiOptions } from '../../src/demo/demo-api.js';

/** A demo API without latency or injected failures unless the test asks; closed after the test. */
async function demo(options: DemoApiOptions = {}): Promise<DemoApi> {
  const api = await startDemoApi({ latencyMs: { min: 0, max: 0 }, failureRate: 0, rateLimitRate: 0, ...options });
  onTestFinished(() => api.close());
  return api;
}

function post(api: DemoApi, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${api.url}/records`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

/** Answers the scripted values in order, then 0.99 (served, never injected). */
function scripted(values: number[]): () => number {
  let next = 0;
  return () => values[next++] ?? 0.99;
}

describe('demo API', () => {
  it('creates one record for a POST retried with the same Idempotency-Key', async () => {
    const api = await demo();
    const first = await post(api, JSON.stringify({ name: 'a', id: 99 }), { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('content-type')).toBe('application/json');
    expect(first.headers.get('x-request-id')).toBeTruthy();
    const created = (await first.json()) as { id: number; name: string; createdAt: string };
    expect(created).toMatchObject({ id: 1, name: 'a' });
    expect(first.headers.get('location')).toBe('/records/1');

    const replay = await post(api, JSON.stringify({ name: 'a' }), { 'idempotency-key': 'k-1' });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual(created);

    const other = await post(api, JSON.stringify({ name: 'b' }));
    expect(other.status).toBe(201);
    expect(((await other.json()) as { id: number }).id).toBe(2);

    const list = (await (await fetch(`${api.url}/records`)).json()) as { items: unknown[]; total: number };
    expect(list.total).toBe(2);
    expect(api.records()).toHaveLength(2);
    expect(api.stats()).toMatchObject({ requests: 4, created: 2, idempotentReplays: 1, status: { '200': 2, '201': 2 } });
  });

  it('reads, updates and deletes a record', async () => {
    const api = await demo();
    await (await post(api, JSON.stringify({ name: 'a' }))).body?.cancel();
    const put = await fetch(`${api.url}/records/1`, { method: 'PUT', body: JSON.stringify({ name: 'b', createdAt: 'x' }) });
    expect(put.status).toBe(200);
    const updated = (await put.json()) as Record<string, unknown>;
    expect(updated).toMatchObject({ id: 1, name: 'b' });
    expect(updated.createdAt).not.toBe('x');
    expect(updated.updatedAt).toEqual(expect.any(String));
    expect(await (await fetch(`${api.url}/records/1`)).json()).toEqual(updated);

    const del = await fetch(`${api.url}/records/1`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
    expect(api.records()).toEqual([]);
  });

  it('answers 404 JSON for unknown records and paths', async () => {
    const api = await demo();
    const cases = [
      ['GET', '/records/999'],
      ['PUT', '/records/999'],
      ['DELETE', '/records/999'],
      ['GET', '/nope'],
      ['GET', '/records/abc'],
    ];
    for (const [method = 'GET', path = '/'] of cases) {
      const response = await fetch(`${api.url}${path}`, { method, ...(method === 'PUT' ? { body: '{}' } : {}) });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('x-request-id')).toBeTruthy();
      expect(await response.json()).toEqual({ error: 'not found' });
    }
    const patch = await fetch(`${api.url}/records/1`, { method: 'PATCH', body: '{}' });
    expect(patch.status).toBe(405);
    expect(patch.headers.get('allow')).toBe('GET, PUT, DELETE');
    await patch.body?.cancel();
  });

  it('injects 503 and 429 before any state change, from the scripted random', async () => {
    // Draws per request: outcome, then latency (always 0 here, as min = max = 0).
    const api = await demo({ failureRate: 0.1, rateLimitRate: 0.1, random: scripted([0.01, 0, 0.07, 0, 0.15, 0, 0.5, 0]) });
    const answers = [];
    for (let i = 0; i < 4; i++) {
      const response = await post(api, JSON.stringify({ n: i }), { 'idempotency-key': `key-${i}` });
      answers.push({ status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() });
    }
    expect(answers.map((a) => [a.status, a.retryAfter])).toEqual([
      [503, '1'],
      [503, null],
      [429, '1'],
      [201, null],
    ]);
    expect(answers[3]?.body).toMatchObject({ id: 1, n: 3 });
    expect(api.records()).toHaveLength(1);
    expect(api.stats()).toMatchObject({ requests: 4, created: 1, status: { '503': 2, '429': 1, '201': 1 } });
  });

  it('waits the latency drawn for each request', async () => {
    const api = await demo({ latencyMs: { min: 60, max: 60 } });
    const started = performance.now();
    await (await fetch(`${api.url}/records`)).json();
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });

  it('answers 400 for an invalid JSON body and changes nothing', async () => {
    const api = await demo();
    const bad = await post(api, '{nope');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'invalid JSON' });
    const notObject = await post(api, '[1,2]');
    expect(notObject.status).toBe(400);
    await notObject.body?.cancel();
    expect(api.records()).toEqual([]);
    expect(api.stats().created).toBe(0);
  });

  it('rejects bad options, naming each one', async () => {
    await expect(startDemoApi({ failureRate: 2, rateLimitRate: -1, latencyMs: { min: 5, max: 1 } })).rejects.toThrow(
      /failureRate: expected a number from 0 to 1, received 2[\s\S]*rateLimitRate[\s\S]*latencyMs/,
    );
  });

  it('closes idempotently, with keep-alive connections open', async () => {
    const api = await startDemoApi({ latencyMs: { min: 0, max: 0 } });
    await (await fetch(`${api.url}/records`)).text();
    const closing = api.close();
    expect(api.close()).toBe(closing);
    await closing;
    await expect(fetch(`${api.url}/records`)).rejects.toThrow();
  });
});
