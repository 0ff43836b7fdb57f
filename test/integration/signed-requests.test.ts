/**
 * Signed requests end to end: real workers and Redis, and a real HTTP receiver that checks every
 * signature with an implementation of its own — the `standardwebhooks` package (the spec's
 * reference library) for the preset, node:crypto written here for custom templates.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createDeadLetterStore } from '../../src/outcomes/dead-letter-store.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { createProducer } from '../../src/queue/producer.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest, type ScriptedResponse, type TargetServer } from '../helpers/target-server.js';

const redis = useRedisServer();

const WHSEC = `whsec_${randomBytes(32).toString('base64')}`;
const HMAC_SECRET = `hmac-${randomBytes(12).toString('hex')}`;
const ENV = { HOOKS_SECRET: WHSEC, PARTNER_SECRET: HMAC_SECRET };

const FAST_RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const accepted: ScriptedResponse = { status: 204 };
const refused: ScriptedResponse = { status: 401, json: { error: 'bad signature' } };

/** The receiver's check, with the spec's reference library. */
function verifiesStandardWebhook(request: RecordedRequest, body = request.body): boolean {
  try {
    new Webhook(WHSEC).verify(body, request.headers);
    return true;
  } catch {
    return false;
  }
}

interface Run {
  target: TargetServer;
  logs: string[];
  deadLetters: ReturnType<typeof createDeadLetterStore>;
  /** Enqueues the operations, waits for the batch to settle, and returns its result lines. */
  run(ops: Record<string, unknown>[]): Promise<ResultLine[]>;
}

/**
 * A target `hooks` with this auth on a receiver answering with `handler`, a producer and a worker
 * whose environment holds ENV. `via` puts something between them: it gets the receiver's URL and
 * answers the base URL the worker sends to.
 */
async function setup(
  auth: Record<string, unknown>,
  handler: (request: RecordedRequest) => ScriptedResponse,
  via?: (receiverUrl: string) => Promise<string>,
): Promise<Run> {
  const target = await startTestTarget();
  target.setDefault(handler);
  const baseUrl = via ? await via(target.url) : target.url;
  const config = parseSluiceConfig({ targets: { hooks: { baseUrl, allowPrivateAddresses: true, auth } } });
  const queue = uniqueQueue('signed');
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const producer = createProducer({ connection: redis().url, queue, config });
  const deadLetters = createDeadLetterStore({ redis: redis().client, queue });
  const worker = createSluiceWorker({
    connection: redis().url,
    logger: createLogger({ level: 'debug', destination }),
    queue,
    config,
    env: { ...ENV },
    concurrency: 5,
    warmUp: false,
  });
  onTestFinished(async () => {
    await worker.close({ force: true });
    await producer.close();
    await deadLetters.close();
  });
  await worker.ready();
  const batches = createBatches(redis().client, queue);
  return {
    target,
    logs,
    deadLetters,
    async run(ops) {
      const { batchId } = await producer.enqueueMany(ops);
      await waitFor(async () => (await batches.status(batchId))?.pending === 0, { timeoutMs: 20_000, what: `batch ${batchId} to settle` });
      const lines: ResultLine[] = [];
      for await (const line of batches.results(batchId)) lines.push(line);
      return lines;
    },
  };
}

interface Forwarded {
  path: string;
  /** The body as sluice sent it. */
  sent: string;
  /** The body as the receiver got it. */
  delivered: string;
}

/**
 * An HTTP proxy in front of `upstream` that passes every request on with its headers (the
 * signature's among them) and its body rewritten by `rewrite`; closed when the test ends.
 */
async function startRewritingProxy(
  upstream: string,
  rewrite: (path: string, body: string) => string,
): Promise<{ url: string; forwarded: Forwarded[] }> {
  const forwarded: Forwarded[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const sent = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const delivered = rewrite(path, sent);
      forwarded.push({ path, sent, delivered });
      const headers: IncomingHttpHeaders = { ...req.headers, host: new URL(upstream).host };
      delete headers.connection;
      if (headers['content-length'] !== undefined) headers['content-length'] = String(Buffer.byteLength(delivered));
      const onward = httpRequest(new URL(path, upstream), { method: req.method, headers, agent: false }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      onward.on('error', () => res.destroy());
      onward.end(delivered);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, forwarded };
}

/** Every string value Redis holds, for the secret scan. */
async function redisText(): Promise<string> {
  const client = redis().client;
  const parts: string[] = [];
  for (const key of await client.keys('*')) {
    const type = await client.type(key);
    if (type === 'string') parts.push((await client.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await client.lrange(key, 0, -1)));
    else if (type === 'zset') parts.push(JSON.stringify(await client.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await client.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}

describe('Standard Webhooks preset', () => {
  const auth = { type: 'standardWebhooks', secretFromEnv: 'HOOKS_SECRET' };

  it('every request verifies with the reference library; webhook-id is the idempotency key; the secret is nowhere stored or logged', async () => {
    const signed = await setup(auth, (request) => (verifiesStandardWebhook(request) ? accepted : refused));
    const ops = Array.from({ length: 6 }, (_, i) => ({
      method: 'POST',
      target: 'hooks',
      url: `/events/${i}`,
      json: { type: 'order.created', order: i, note: 'ünïcode {braces} too' },
      ...(i === 0 ? { idempotencyKey: 'evt_order_0' } : {}),
      retry: FAST_RETRY,
    }));
    const lines = await signed.run(ops);
    expect(lines.map((line) => line.outcome)).toEqual(Array(6).fill('succeeded'));
    expect(signed.target.requests).toHaveLength(6);
    for (const request of signed.target.requests) {
      expect(request.headers['webhook-id']).toBe(request.headers['idempotency-key']);
      expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    }
    expect(signed.target.requests.find((request) => request.path === '/events/0')!.headers['webhook-id']).toBe('evt_order_0');
    const stored = await redisText();
    expect(stored).toContain('/events/');
    expect(stored).not.toContain(WHSEC.slice('whsec_'.length));
    expect(signed.logs.join('')).not.toContain(WHSEC.slice('whsec_'.length));
  });

  it('a retry is signed again: a new timestamp and signature, the same webhook-id and Idempotency-Key', async () => {
    // The first attempt is refused with Retry-After: 1, so the second one is at least a second later.
    let calls = 0;
    const signed = await setup(auth, (request) => {
      calls += 1;
      if (calls === 1) return { status: 503, headers: { 'retry-after': '1' }, json: { error: 'busy' } };
      return verifiesStandardWebhook(request) ? accepted : refused;
    });
    const lines = await signed.run([{ method: 'POST', target: 'hooks', url: '/events/retry', json: { n: 1 }, retry: FAST_RETRY }]);
    expect(lines[0]).toMatchObject({ outcome: 'succeeded', attempts: 2 });
    const [first, second] = signed.target.requests;
    expect(verifiesStandardWebhook(first!)).toBe(true);
    expect(verifiesStandardWebhook(second!)).toBe(true);
    expect(Number(second!.headers['webhook-timestamp'])).toBeGreaterThan(Number(first!.headers['webhook-timestamp']));
    expect(second!.headers['webhook-signature']).not.toBe(first!.headers['webhook-signature']);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(second!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(second!.headers['webhook-id']).toBe(lines[0]!.idempotencyKey);
  });

  it('a body changed on the way fails verification: the receiver answers 401, a permanent refusal, dead-lettered after one attempt', async () => {
    // What the receiver checks is not what sluice signed (a proxy that rewrote the body).
    const signed = await setup(auth, (request) => (verifiesStandardWebhook(request, `${request.body} `) ? accepted : refused));
    const lines = await signed.run([{ method: 'POST', target: 'hooks', url: '/events/tampered', json: { n: 1 }, retry: FAST_RETRY }]);
    expect(lines[0]).toMatchObject({ outcome: 'deadLettered', status: 401 });
    expect(signed.target.requests).toHaveLength(1);
    // The untouched body does verify: the 401 is the tampering, not a bad signature.
    expect(verifiesStandardWebhook(signed.target.requests[0]!)).toBe(true);
    const [letter] = await signed.deadLetters.list({});
    expect(letter).toMatchObject({ reason: 'permanent-status', status: 401 });
  });
});

describe('custom HMAC templates', () => {
  /** The receiver's own check for the GitHub-like target below (of `body` in place of the request's, when given). */
  function verifiesHex(request: RecordedRequest, body = request.body): boolean {
    const timestamp = request.headers['x-timestamp'] ?? '';
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    const canonical = `${timestamp}.${request.method}.${request.path}.${bodySha256}.${request.headers['idempotency-key'] ?? ''}`;
    const expected = `sha256=${createHmac('sha256', HMAC_SECRET).update(canonical).digest('hex')}`;
    const given = Buffer.from(request.headers['x-signature'] ?? '');
    return given.length === expected.length && timingSafeEqual(given, Buffer.from(expected));
  }

  const hexAuth = {
    type: 'hmac',
    secretFromEnv: 'PARTNER_SECRET',
    template: '{timestamp}.{method}.{pathWithQuery}.{bodySha256}.{idempotencyKey}',
    header: 'X-Signature',
    prefix: 'sha256=',
    timestampHeader: 'X-Timestamp',
    timestampFormat: 'unixMilliseconds',
  };

  /** The receiver's own check for a Stripe-like target: the body itself in the signed string. */
  function verifiesBodyBase64(request: RecordedRequest, body = request.body): boolean {
    const expected = createHmac('sha512', HMAC_SECRET)
      .update(`${request.headers['x-signed-at'] ?? ''}:${body}`)
      .digest('base64');
    const given = Buffer.from(request.headers['x-body-signature'] ?? '');
    return given.length === Buffer.byteLength(expected) && timingSafeEqual(given, Buffer.from(expected));
  }
  const bodyAuth = {
    type: 'hmac',
    secretFromEnv: 'PARTNER_SECRET',
    algorithm: 'sha512',
    encoding: 'base64',
    template: '{timestamp}:{body}',
    header: 'X-Body-Signature',
    timestampHeader: 'X-Signed-At',
    timestampFormat: 'unixSeconds',
  };

  it('sha256, hex, a prefix, unix ms: each request (query, body, none) verifies; a retry gets a new timestamp', async () => {
    const auth = hexAuth;
    let retried = false;
    const signed = await setup(auth, (request) => {
      if (request.path.startsWith('/flaky') && !retried) {
        retried = true;
        return { status: 503, json: { error: 'busy' } };
      }
      return verifiesHex(request) ? accepted : refused;
    });
    const lines = await signed.run([
      {
        method: 'POST',
        target: 'hooks',
        url: '/orders',
        query: { dry: 'true', tag: ['a', 'b'] },
        json: { total: 12.5 },
        retry: FAST_RETRY,
      },
      { method: 'PUT', target: 'hooks', url: '/orders/7', form: { status: 'paid' }, idempotencyKey: 'order-7-paid', retry: FAST_RETRY },
      { method: 'DELETE', target: 'hooks', url: '/orders/8', retry: FAST_RETRY },
      { method: 'POST', target: 'hooks', url: '/flaky', body: 'plain text', retry: FAST_RETRY },
    ]);
    expect(lines.map((line) => line.outcome)).toEqual(Array(4).fill('succeeded'));
    const flaky = signed.target.requests.filter((request) => request.path === '/flaky');
    expect(flaky).toHaveLength(2);
    expect(Number(flaky[1]!.headers['x-timestamp'])).toBeGreaterThan(Number(flaky[0]!.headers['x-timestamp']));
    expect(flaky[1]!.headers['x-signature']).not.toBe(flaky[0]!.headers['x-signature']);
    expect(flaky[1]!.headers['idempotency-key']).toBe(flaky[0]!.headers['idempotency-key']);
  });

  it('sha512, base64, ISO time, {path} {body} {id}: the receiver recomputes it from the request and the operation id', async () => {
    const auth = {
      type: 'hmac',
      secretFromEnv: 'PARTNER_SECRET',
      algorithm: 'sha512',
      encoding: 'base64',
      template: 'v2:{id}:{timestamp}:{path}:{body}',
      header: 'Signature',
      timestampHeader: 'Signature-Time',
      timestampFormat: 'iso',
    };
    const signed = await setup(auth, () => accepted);
    const lines = await signed.run([
      { method: 'POST', target: 'hooks', url: '/a?x=1', json: { a: [1, 2, 3] }, meta: { path: '/a' } },
      { method: 'GET', target: 'hooks', url: '/b', meta: { path: '/b' } },
    ]);
    expect(lines.map((line) => line.outcome)).toEqual(['succeeded', 'succeeded']);
    for (const line of lines) {
      const path = (line.meta as { path: string }).path;
      const request = signed.target.requests.find((received) => received.path.split('?')[0] === path)!;
      const time = request.headers['signature-time']!;
      expect(new Date(time).toISOString()).toBe(time);
      const expected = createHmac('sha512', HMAC_SECRET).update(`v2:${line.id}:${time}:${path}:${request.body}`).digest('base64');
      expect(request.headers['signature']).toBe(expected);
    }
  });
  it.each([
    ['{bodySha256}', hexAuth, verifiesHex],
    ['{body}', bodyAuth, verifiesBodyBase64],
  ] as const)(
    "a template with %s: a body changed on the way fails the receiver's check (401, dead-lettered after one attempt); the one passed on as sent verifies",
    async (_placeholder, auth, verifies) => {
      // A proxy between sluice and the receiver rewrites one request's body and keeps its headers.
      let proxy: Awaited<ReturnType<typeof startRewritingProxy>> | undefined;
      const signed = await setup(
        auth,
        (request) => (verifies(request) ? accepted : refused),
        async (receiverUrl) => {
          proxy = await startRewritingProxy(receiverUrl, (path, body) =>
            path === '/tampered' ? body.replace('"amount":100', '"amount":900') : body,
          );
          return proxy.url;
        },
      );
      const order = { order: 7, amount: 100 };
      const lines = await signed.run([
        { method: 'POST', target: 'hooks', url: '/intact', json: order, meta: { path: '/intact' }, retry: FAST_RETRY },
        { method: 'POST', target: 'hooks', url: '/tampered', json: order, meta: { path: '/tampered' }, retry: FAST_RETRY },
      ]);
      const outcomeOf = (path: string) => lines.find((line) => (line.meta as { path: string }).path === path);
      expect(outcomeOf('/intact')).toMatchObject({ outcome: 'succeeded', status: 204 });
      expect(outcomeOf('/tampered')).toMatchObject({ outcome: 'deadLettered', status: 401 });
      expect(signed.target.requests.map((request) => request.path).sort()).toEqual(['/intact', '/tampered']);

      const tampered = signed.target.requests.find((request) => request.path === '/tampered')!;
      const hop = proxy!.forwarded.find((entry) => entry.path === '/tampered')!;
      expect(hop.sent).toBe('{"order":7,"amount":100}');
      expect(tampered.body).toBe('{"order":7,"amount":900}');
      // The receiver got sluice's signature untouched: it verifies against the body sluice sent, so
      // the 401 is the changed body alone (a signature that did not cover the body would verify both).
      expect(verifies(tampered, hop.sent)).toBe(true);
      expect(verifies(tampered)).toBe(false);
      const [letter] = await signed.deadLetters.list({});
      expect(letter).toMatchObject({ reason: 'permanent-status', status: 401 });
    },
  );
});

describe('signing secrets', () => {
  it('a worker without the secret, or with a malformed whsec_ one, refuses to start: the variables named, never their values', () => {
    const config = parseSluiceConfig({
      targets: {
        hooks: { baseUrl: 'http://127.0.0.1:1', auth: { type: 'standardWebhooks', secretFromEnv: 'HOOKS_SECRET' } },
        partner: {
          baseUrl: 'http://127.0.0.1:1',
          auth: { type: 'hmac', secretFromEnv: 'PARTNER_SECRET', template: '{body}', header: 'x-sig' },
        },
      },
    });
    const start = () =>
      createSluiceWorker({
        connection: redis().url,
        logger: createLogger({ level: 'silent' }),
        config,
        env: { HOOKS_SECRET: 'whsec_n0t-base64!' },
      });
    expect(start).toThrow(ConfigError);
    const message = (() => {
      try {
        start();
      } catch (error) {
        return (error as ConfigError).message;
      }
      return '';
    })();
    expect(message).toContain(
      'targets.hooks.auth.secretFromEnv: environment variable HOOKS_SECRET is not a Standard Webhooks secret (expected whsec_ and base64)',
    );
    expect(message).toContain('targets.partner.auth.secretFromEnv: environment variable PARTNER_SECRET is not set');
    expect(message).not.toContain('n0t-base64');
  });
});
