/**
 * Safe targets through the real pipeline: hosts outside the allowed set and internal addresses are
 * refused at enqueue; redirects are followed only within the allowed set (at most 5, credentials
 * kept to their origin); a name that resolves to an internal address is refused at connect time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createDestinationPolicy } from '../../src/config/destinations.js';
import { AddressRefusedError, ValidationError } from '../../src/errors.js';
import { createHttpClient } from '../../src/http/http-client.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();

describe('destinations at enqueue', () => {
  it.each([
    ['http://169.254.169.254/latest/meta-data/iam/', /^  url: host 169\.254\.169\.254 is not allowed/m],
    [
      'https://elsewhere.example.net/hook',
      /^  url: host elsewhere\.example\.net is not allowed: configure a target for it or add it to "allowedHosts"/m,
    ],
    ['http://10.0.0.8/admin', /^  url: host 10\.0\.0\.8 is not allowed/m],
  ])('%s is refused with a clear error and nothing is enqueued', async (url, message) => {
    const p = await startPipeline(redis());
    const error = await p.producer.enqueue({ method: 'GET', url }, { batchId: 'refused' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toMatch(message);
    expect(await p.batches.status('refused')).toBeUndefined();
  });

  it('an allowed host that is an internal address still needs a target that allows it', async () => {
    const p = await startPipeline(redis(), { config: parseSluiceConfig({ allowedHosts: ['169.254.169.254', '127.0.0.1'] }) });
    const error = await p.producer
      .enqueue({ method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' })
      .catch((caught: unknown) => caught);
    expect((error as ValidationError).message).toContain(
      'url: 169.254.169.254 is a cloud metadata address; only a target for 169.254.169.254:80 with "allowPrivateAddresses": true may call it',
    );
  });
});

describe('documentation ranges and trailing-dot names at enqueue', () => {
  /** Every host allowed: what is refused here is refused for what it is, not for being unlisted. */
  const anyHost = parseSluiceConfig({
    allowedHosts: ['*'],
    targets: { lab: { baseUrl: 'http://198.51.100.5:8080' }, bench: { baseUrl: 'http://192.0.2.10:8080', allowPrivateAddresses: true } },
  });

  it.each([
    [
      'http://192.0.2.1/orders',
      'url: 192.0.2.1 is a documentation address; only a target for 192.0.2.1:80 with "allowPrivateAddresses": true may call it',
    ],
    ['https://203.0.113.7/orders', 'url: 203.0.113.7 is a documentation address; only a target for 203.0.113.7:443'],
    ['http://[2001:db8::10]:8080/x', 'url: [2001:db8::10] is a documentation address; only a target for [2001:db8::10]:8080'],
    [
      'http://localhost./admin',
      'url: localhost is a loopback address; only a target for localhost:80 with "allowPrivateAddresses": true may call it',
    ],
  ])('%s is refused naming the field and the reason; nothing is enqueued', async (url, message) => {
    const p = await startPipeline(redis(), { config: anyHost });
    const error = await p.producer.enqueue({ method: 'GET', url }, { batchId: 'documentation' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toContain(message);
    expect(await p.batches.status('documentation')).toBeUndefined();
  });

  it('a path on a target whose baseUrl is such an address names the target', async () => {
    const p = await startPipeline(redis(), { config: anyHost });
    const error = await p.producer.enqueue({ method: 'GET', target: 'lab', url: '/x' }).catch((caught: unknown) => caught);
    expect((error as ValidationError).message).toBe(
      'invalid operation:\n  target: lab: 198.51.100.5 is a documentation address; only a target for 198.51.100.5:8080 with "allowPrivateAddresses": true may call it',
    );
    // A target that allows private addresses may be at one: its operations are enqueued.
    await expect(p.producer.enqueue({ method: 'GET', target: 'bench', url: '/x' })).resolves.toMatchObject({ id: expect.any(String) });
  });

  it('sluice enqueue reports them by line, and enqueues nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-refused-'));
    try {
      const config = join(dir, 'sluice.json');
      await writeFile(config, JSON.stringify({ allowedHosts: ['*'] }));
      const file = join(dir, 'ops.jsonl');
      const lines = [
        { method: 'GET', url: 'https://api.example.com/fine' },
        { method: 'GET', url: 'http://198.51.100.1/copied-from-the-docs' },
        { method: 'GET', url: 'http://localhost.:9000/' },
      ];
      await writeFile(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
      const queue = uniqueQueue('refused');
      const result = await runCliInProcess(['enqueue', file], { REDIS_URL: redis().url, SLUICE_QUEUE: queue, SLUICE_CONFIG: config });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        'line 2: url: 198.51.100.1 is a documentation address; only a target for 198.51.100.1:80 with "allowPrivateAddresses": true may call it',
      );
      expect(result.stderr).toContain(
        'line 3: url: localhost is a loopback address; only a target for localhost:9000 with "allowPrivateAddresses": true may call it',
      );
      expect(result.stderr).not.toMatch(/^line 1:/m);
      expect(await redis().client.keys(`sluice:{${queue}}:*`)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('redirects', () => {
  it('follows a 303 within the target as a GET without the body', async () => {
    const p = await startPipeline(redis());
    p.target.script('POST /orders', [{ status: 303, headers: { location: '/orders/7' } }]);
    p.target.script('GET /orders/7', [{ status: 200, json: { id: 7 } }]);
    await p.producer.enqueue(p.op('/orders', { json: { sku: 'A' } }), { batchId: 'see-other' });
    expect(await p.settled('see-other')).toMatchObject({ succeeded: 1, deadLettered: 0 });
    expect(p.target.requests.map((r) => `${r.method} ${r.path} ${r.body}`)).toEqual(['POST /orders {"sku":"A"}', 'GET /orders/7 ']);
    const [line] = await p.results('see-other');
    expect(line).toMatchObject({ outcome: 'succeeded', status: 200 });
  });

  it('keeps method and body on a 307 to another allowed origin, but not the credentials', async () => {
    const second = await startTestTarget();
    const p = await startPipeline(redis(), {
      config: parseSluiceConfig({ targets: { second: { baseUrl: second.url, allowPrivateAddresses: true } } }),
    });
    p.target.script('PUT /moved', [{ status: 307, headers: { location: `${second.url}/here` } }]);
    const op = p.op('/moved', {
      method: 'PUT',
      json: { n: 1 },
      headers: { authorization: 'Bearer not-for-them', cookie: 'session=1', 'x-trace': 't-1' },
    });
    await p.producer.enqueue(op, { batchId: 'temporary' });
    expect(await p.settled('temporary')).toMatchObject({ succeeded: 1 });
    expect(p.target.requests[0]!.headers['authorization']).toBe('Bearer not-for-them');
    const [forwarded] = second.requests;
    expect(forwarded).toMatchObject({ method: 'PUT', path: '/here', body: '{"n":1}' });
    expect(forwarded!.headers['authorization']).toBeUndefined();
    expect(forwarded!.headers['cookie']).toBeUndefined();
    expect(forwarded!.headers['x-trace']).toBe('t-1');
  });

  it('refuses a redirect to a cloud metadata address: dead-lettered, saying why, and never connected', async () => {
    const p = await startPipeline(redis());
    p.target.script('GET /avatar', [
      { status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' } },
    ]);
    const { id } = await p.producer.enqueue(p.op('/avatar', { method: 'GET', json: undefined }), { batchId: 'ssrf' });
    expect(await p.settled('ssrf')).toMatchObject({ succeeded: 0, deadLettered: 1, retries: 0 });
    const letter = await p.deadLetters.get(id);
    expect(letter).toMatchObject({ reason: 'request-error' });
    expect(letter!.attempts[0]).toMatchObject({ error: 'ADDRESS_REFUSED' });
    expect(letter!.message).toBe(
      `redirect from ${p.target.url}/avatar to http://169.254.169.254/latest/meta-data/iam/security-credentials/ refused: host 169.254.169.254 is not allowed: configure a target for it or add it to "allowedHosts" in the config`,
    );
  });

  it('gives up after 5 redirects', async () => {
    const p = await startPipeline(redis());
    p.target.script('GET /loop', [{ status: 302, headers: { location: '/loop' } }]);
    const { id } = await p.producer.enqueue(p.op('/loop', { method: 'GET', json: undefined }), { batchId: 'loop' });
    expect(await p.settled('loop')).toMatchObject({ deadLettered: 1 });
    expect(p.requestsTo('/loop')).toHaveLength(6);
    expect((await p.deadLetters.get(id))!.message).toBe(`GET ${p.target.url}/loop: more than 5 redirects`);
  });

  it('does not follow a 3xx the operation expects', async () => {
    const p = await startPipeline(redis());
    p.target.script('GET /short', [{ status: 301, headers: { location: '/long' } }]);
    await p.producer.enqueue(p.op('/short', { method: 'GET', json: undefined, expect: { status: [301] } }), { batchId: 'expected-3xx' });
    expect(await p.settled('expected-3xx')).toMatchObject({ succeeded: 1 });
    expect(p.target.requests.map((r) => r.path)).toEqual(['/short']);
  });
});

describe('job data written by other clients', () => {
  it('a stored next page outside the allowed set is refused, not sent', async () => {
    const p = await startPipeline(redis(), { config: parseSluiceConfig({ files: { downloadDir: '/tmp' } }) });
    const op = { method: 'GET', target: 'test-target', url: '/items', paginate: { style: 'link' } };
    await p.bullQueue().add(
      'op',
      {
        op,
        opId: 'forged',
        idempotencyKey: 'forged',
        batchId: 'forged',
        paging: { pages: 1, items: 0, next: { url: 'https://evil.example.net/steal' } },
      },
      { jobId: 'forged' },
    );
    const letter = await waitFor(() => p.deadLetters.get('forged'), { what: 'the forged job to be dead-lettered' });
    expect(letter).toMatchObject({
      reason: 'request-error',
      message:
        'the next page https://evil.example.net/steal: host evil.example.net is not allowed: configure a target for it or add it to "allowedHosts" in the config',
    });
    expect(p.target.requests).toHaveLength(0);
  });
});

describe('addresses at connect time', () => {
  it.each(['192.0.2.1', '198.51.100.1', '[2001:db8::1]'])('refuses the documentation address %s before connecting', async (host) => {
    const client = createHttpClient({ ...createDestinationPolicy(parseSluiceConfig({ allowedHosts: ['*'] })) });
    const spec = {
      method: 'GET',
      url: new URL(`http://${host}:9/x`),
      headers: {},
      body: undefined,
      // A connection to a documentation address would hang until this: the refusal comes first.
      timeouts: { connect: 20_000, headers: 20_000, total: 25_000 },
    };
    const startedAt = Date.now();
    const error = await client.send(spec).catch((caught: unknown) => caught);
    await client.close();
    expect(error).toBeInstanceOf(AddressRefusedError);
    expect((error as Error).message).toBe(
      `${host} is a documentation address; only a target for ${host}:9 with "allowPrivateAddresses": true may call it`,
    );
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it('refuses a name that resolves to a loopback address unless a target for it allows that', async () => {
    const server = await startTestTarget();
    const port = new URL(server.url).port;
    const spec = {
      method: 'GET',
      url: new URL(`http://localhost:${port}/x`),
      headers: {},
      body: undefined,
      timeouts: { connect: 2_000, headers: 2_000, total: 5_000 },
    };
    const guarded = (config: unknown) => createHttpClient({ ...createDestinationPolicy(parseSluiceConfig(config)) });
    const refusing = guarded({ allowedHosts: ['localhost'] });
    const error = await refusing.send(spec).catch((caught: unknown) => caught);
    await refusing.close();
    expect(error).toBeInstanceOf(AddressRefusedError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^localhost \\((127\\.0\\.0\\.1|::1)\\) is a loopback address; only a target for localhost:${port} with "allowPrivateAddresses": true may call it$`,
      ),
    );
    expect(server.requests).toHaveLength(0);

    const allowing = guarded({ targets: { dev: { baseUrl: `http://localhost:${port}`, allowPrivateAddresses: true } } });
    const response = await allowing.send(spec);
    await allowing.close();
    expect(response.status).toBe(200);
    expect(server.requests).toHaveLength(1);
  });
});
