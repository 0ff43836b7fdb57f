/**
 * Target auth end to end: real workers, a real Redis, a real HTTP target that checks credentials
 * (and plays an OAuth2 token endpoint). Secrets come from the workers' `env` only; every test
 * scans Redis and the logs for them.
 */
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createProducer } from '../../src/queue/producer.js';
import { createDeadLetterStore } from '../../src/outcomes/dead-letter-store.js';
import { createSluiceWorker, type SluiceWorker, type SluiceWorkerOptions } from '../../src/worker/sluice-worker.js';
import { queuedOperations, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget, type RecordedRequest, type ScriptedResponse, type TargetServer } from '../helpers/target-server.js';

const redis = useRedisServer();

const SECRETS = {
  API_KEY: 'key-7d1f0c2e9b',
  BEARER: 'bearer-5a8e3f61c4',
  USER: 'svc-user-31f9',
  PASSWORD: 'pw-c0ffee-42b7',
  CLIENT_ID: 'client-9e4d27',
  CLIENT_SECRET: 'secret-b51a8c06d3',
};

const FAST_RETRY = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 };

interface Harness {
  queue: string;
  target: TargetServer;
  logs: string[];
  /** Enqueues `count` POSTs to the target; returns the batch id. */
  enqueue(count: number): Promise<string>;
  /** Enqueues `count` POSTs to the target and waits for the batch to settle. */
  run(count: number): Promise<{ succeeded: number; deadLettered: number; batchId: string }>;
  startWorker(concurrency?: number, options?: Partial<SluiceWorkerOptions>): Promise<SluiceWorker>;
  deadLetters(): ReturnType<typeof createDeadLetterStore>;
}

/**
 * A target named `api` with this auth (given the target server's URL), a producer, and workers
 * whose environment holds SECRETS.
 */
async function setup(
  auth: Record<string, unknown> | ((targetUrl: string) => Record<string, unknown>),
  handler: (request: RecordedRequest) => ScriptedResponse,
): Promise<Harness> {
  const target = await startTestTarget();
  target.setDefault(handler);
  const config: SluiceConfig = parseSluiceConfig({
    targets: { api: { baseUrl: target.url, allowPrivateAddresses: true, auth: typeof auth === 'function' ? auth(target.url) : auth } },
  });
  const queue = uniqueQueue('auth');
  const logs: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString('utf8'));
        done();
      },
    }),
  });
  const producer = createProducer({ connection: redis().url, queue, config });
  const batches = createBatches(redis().client, queue);
  const deadLetters = createDeadLetterStore({ redis: redis().client, queue });
  const workers: SluiceWorker[] = [];
  onTestFinished(async () => {
    for (const worker of workers) await worker.close({ force: true });
    await producer.close();
    await deadLetters.close();
  });
  async function startWorker(concurrency = 20, options: Partial<SluiceWorkerOptions> = {}): Promise<SluiceWorker> {
    const worker = createSluiceWorker({
      connection: redis().url,
      logger,
      queue,
      config,
      env: { ...SECRETS },
      concurrency,
      warmUp: false,
      ...options,
    });
    workers.push(worker);
    await worker.ready();
    return worker;
  }
  async function enqueue(count: number): Promise<string> {
    const ops = Array.from({ length: count }, (_, i) => ({
      method: 'POST',
      target: 'api',
      url: `/things/${i}`,
      json: { i },
      retry: FAST_RETRY,
    }));
    return (await producer.enqueueMany(ops)).batchId;
  }
  return {
    queue,
    target,
    logs,
    startWorker,
    deadLetters: () => deadLetters,
    enqueue,
    async run(count) {
      const batchId = await enqueue(count);
      const status = await waitFor(
        async () => {
          const current = await batches.status(batchId);
          return current && current.pending === 0 ? current : undefined;
        },
        { timeoutMs: 20_000, what: `batch ${batchId} to settle` },
      );
      return { succeeded: status!.succeeded, deadLettered: status!.deadLettered, batchId };
    },
  };
}

/** Every string Redis holds (keys, values, members, fields, stream entries). */
async function redisText(): Promise<string> {
  const client = redis().client;
  const parts: string[] = [];
  for (const key of await client.keys('*')) {
    parts.push(key);
    const type = await client.type(key);
    if (type === 'string') parts.push((await client.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await client.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await client.smembers(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await client.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await client.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}

async function expectNoSecretLeaked(harness: Harness, extra: string[] = []): Promise<void> {
  const stored = await redisText();
  const logged = harness.logs.join('');
  // The scans do read what they should: job data and results in Redis, attempts in the logs.
  expect(stored).toContain('/things/');
  expect(logged).toContain('/things/');
  for (const secret of [...Object.values(SECRETS), ...extra]) {
    expect(stored, `Redis holds ${secret}`).not.toContain(secret);
    expect(logged, `logs hold ${secret}`).not.toContain(secret);
  }
}

const ok: ScriptedResponse = { status: 200, json: { ok: true } };
const refused: ScriptedResponse = { status: 401, json: { error: 'unauthorized' } };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('static credentials from the worker environment', () => {
  const cases: [string, Record<string, unknown>, (request: RecordedRequest) => boolean][] = [
    [
      'apiKey in a header',
      { type: 'apiKey', in: 'header', name: 'X-API-Key', valueFromEnv: 'API_KEY' },
      (r) => r.headers['x-api-key'] === SECRETS.API_KEY,
    ],
    [
      'apiKey in the query',
      { type: 'apiKey', in: 'query', name: 'api_key', valueFromEnv: 'API_KEY' },
      (r) => new URL(r.path, 'http://x').searchParams.get('api_key') === SECRETS.API_KEY,
    ],
    ['bearer', { type: 'bearer', tokenFromEnv: 'BEARER' }, (r) => r.headers['authorization'] === `Bearer ${SECRETS.BEARER}`],
    [
      'basic',
      { type: 'basic', usernameFromEnv: 'USER', passwordFromEnv: 'PASSWORD' },
      (r) => r.headers['authorization'] === basic(SECRETS.USER, SECRETS.PASSWORD),
    ],
  ];
  for (const [name, auth, authorized] of cases) {
    it(`${name}: every request carries it; Redis and the logs never see it`, async () => {
      const harness = await setup(auth, (request) => (authorized(request) ? ok : refused));
      await harness.startWorker();
      const outcome = await harness.run(20);
      expect(outcome).toMatchObject({ succeeded: 20, deadLettered: 0 });
      expect(harness.target.requests).toHaveLength(20);
      await expectNoSecretLeaked(harness);
    });
  }

  it('an apiKey in the query that the target echoes (Link, Location) is redacted before anything is stored', async () => {
    const auth = { type: 'apiKey', in: 'query', name: 'api_key', valueFromEnv: 'API_KEY' };
    const harness = await setup(auth, (request) => ({
      status: 200,
      json: { ok: true },
      headers: { link: `<${request.path}>; rel="self"`, location: request.path },
    }));
    await harness.startWorker();
    expect(await harness.run(3)).toMatchObject({ succeeded: 3 });
    expect(harness.target.requests.every((request) => request.path.includes(`api_key=${SECRETS.API_KEY}`))).toBe(true);
    expect(await redisText()).toContain('api_key=[redacted]');
    await expectNoSecretLeaked(harness);
  });

  it('credentials go to the target origin only: an absolute URL on another allowed host gets none', async () => {
    const other = await startTestTarget();
    const harness = await setup({ type: 'bearer', tokenFromEnv: 'BEARER' }, () => ok);
    const config = parseSluiceConfig({
      targets: {
        api: { baseUrl: harness.target.url, allowPrivateAddresses: true, auth: { type: 'bearer', tokenFromEnv: 'BEARER' } },
        other: { baseUrl: other.url, allowPrivateAddresses: true },
      },
    });
    const queue = uniqueQueue('auth-origin');
    const producer = createProducer({ connection: redis().url, queue, config });
    const worker = createSluiceWorker({
      connection: redis().url,
      logger: createLogger({ level: 'silent' }),
      queue,
      config,
      env: { ...SECRETS },
      warmUp: false,
    });
    onTestFinished(async () => {
      await worker.close({ force: true });
      await producer.close();
    });
    await worker.ready();
    const { batchId } = await producer.enqueueMany([
      { method: 'POST', target: 'api', url: `${other.url}/elsewhere`, json: {} },
      { method: 'POST', target: 'api', url: '/home', json: {} },
    ]);
    await waitFor(async () => (await createBatches(redis().client, queue).status(batchId))?.succeeded === 2, {
      what: 'both operations to succeed',
    });
    expect(other.requests[0]!.headers['authorization']).toBeUndefined();
    expect(harness.target.requests[0]!.headers['authorization']).toBe(`Bearer ${SECRETS.BEARER}`);
  });

  it('a wrong secret is a permanent 401: dead-lettered with the status, the secret nowhere in it', async () => {
    const harness = await setup({ type: 'bearer', tokenFromEnv: 'BEARER' }, () => refused);
    await harness.startWorker();
    const outcome = await harness.run(2);
    expect(outcome).toMatchObject({ succeeded: 0, deadLettered: 2 });
    const letters = await harness.deadLetters().list({ batchId: outcome.batchId });
    expect(letters.map((letter) => [letter.reason, letter.status])).toEqual([
      ['permanent-status', 401],
      ['permanent-status', 401],
    ]);
    await expectNoSecretLeaked(harness);
  });

  it('a worker whose environment lacks a secret refuses to start, naming each variable and where it is configured', () => {
    const config = parseSluiceConfig({
      targets: {
        a: { baseUrl: 'http://127.0.0.1:1', auth: { type: 'basic', usernameFromEnv: 'A_USER', passwordFromEnv: 'A_PASSWORD' } },
        b: { baseUrl: 'http://127.0.0.1:1', auth: { type: 'bearer', tokenFromEnv: 'B_TOKEN' } },
      },
    });
    const start = () =>
      createSluiceWorker({ connection: redis().url, logger: createLogger({ level: 'silent' }), config, env: { A_USER: 'u', B_TOKEN: '' } });
    expect(start).toThrow(ConfigError);
    try {
      start();
    } catch (error) {
      expect((error as ConfigError).message).toContain('targets.a.auth.passwordFromEnv: environment variable A_PASSWORD is not set');
      expect((error as ConfigError).message).toContain('targets.b.auth.tokenFromEnv: environment variable B_TOKEN is not set');
      expect((error as ConfigError).message).not.toContain('A_USER is not set');
    }
  });
});

/** An OAuth2 token endpoint at /oauth/token and an API that accepts only the current token. */
function oauthServer(options: { tokenFailures?: ScriptedResponse[]; lifetimeS?: number } = {}) {
  let issued = 0;
  let current: string | undefined;
  const failures = [...(options.tokenFailures ?? [])];
  const tokenRequests: RecordedRequest[] = [];
  const handler = (request: RecordedRequest): ScriptedResponse => {
    if (request.path === '/oauth/token') {
      tokenRequests.push(request);
      const failure = failures.shift();
      if (failure) return failure;
      const form = new URLSearchParams(request.body);
      if (
        request.headers['authorization'] !== basic(SECRETS.CLIENT_ID, SECRETS.CLIENT_SECRET) ||
        form.get('grant_type') !== 'client_credentials'
      ) {
        return { status: 401, json: { error: 'invalid_client', error_description: 'client authentication failed' } };
      }
      issued += 1;
      current = `access-${issued}-${Math.random().toString(36).slice(2)}`;
      return {
        status: 200,
        json: { access_token: current, token_type: 'Bearer', expires_in: options.lifetimeS ?? 3_600, scope: form.get('scope') },
      };
    }
    return current && request.headers['authorization'] === `Bearer ${current}` ? ok : refused;
  };
  return {
    handler,
    tokenRequests,
    /** The server forgets its token (revoked): requests with it get 401 until a new one is issued. */
    revoke: () => {
      current = `revoked-${Math.random()}`;
    },
    issuedTokens: () => issued,
  };
}

describe('OAuth2 client credentials', () => {
  // The token endpoint lives on the API's own server.
  const auth = (targetUrl: string) => ({
    type: 'oauth2ClientCredentials',
    tokenUrl: `${targetUrl}/oauth/token`,
    clientIdFromEnv: 'CLIENT_ID',
    clientSecretFromEnv: 'CLIENT_SECRET',
    scope: 'things:write',
    audience: 'https://api.example.test',
  });

  it('200 jobs on a cold fleet of 2 workers cost one token request; the token is shared through Redis, sealed', async () => {
    const oauth = oauthServer();
    const harness = await setup(auth, oauth.handler);
    await harness.startWorker(100);
    await harness.startWorker(100);
    const outcome = await harness.run(200);
    expect(outcome).toMatchObject({ succeeded: 200, deadLettered: 0 });
    expect(oauth.tokenRequests).toHaveLength(1);
    const form = new URLSearchParams(oauth.tokenRequests[0]!.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      scope: 'things:write',
      audience: 'https://api.example.test',
    });
    // The access token is in Redis only encrypted.
    await expectNoSecretLeaked(harness, [`access-1-`]);
  });

  it('a 401 drops the token for every worker: one new token request, and each operation still succeeds', async () => {
    const oauth = oauthServer();
    const harness = await setup(auth, oauth.handler);
    await harness.startWorker(10);
    await harness.startWorker(10);
    expect(await harness.run(20)).toMatchObject({ succeeded: 20, deadLettered: 0 });
    oauth.revoke();
    const second = await harness.run(40);
    expect(second).toMatchObject({ succeeded: 40, deadLettered: 0 });
    // One refresh for the fleet; a worker that raced it may have asked once more, never once per job.
    expect(oauth.issuedTokens()).toBeGreaterThanOrEqual(2);
    expect(oauth.issuedTokens()).toBeLessThanOrEqual(3);
    await expectNoSecretLeaked(harness, ['access-']);
  });

  it('a token endpoint that fails twice (503, reset) is retried with backoff within the attempt', async () => {
    const oauth = oauthServer({
      tokenFailures: [
        { status: 503, json: { error: 'temporarily_unavailable' } },
        { status: 200, destroy: true },
      ],
    });
    const harness = await setup(auth, oauth.handler);
    await harness.startWorker(10);
    expect(await harness.run(10)).toMatchObject({ succeeded: 10, deadLettered: 0 });
    expect(oauth.tokenRequests).toHaveLength(3);
    expect(harness.logs.join('')).toContain('OAuth2 token request failed; retrying');
  });

  it('a worker stopping while a token request hangs keeps its deadline: the request is aborted, the operations requeued', async () => {
    // A token endpoint that never answers (the client would wait 15 s for headers, three times).
    const harness = await setup(auth, (request) => (request.path === '/oauth/token' ? { status: 200, json: {}, delayMs: 120_000 } : ok));
    const worker = await harness.startWorker(5, { shutdownTimeoutMs: 500 });
    await harness.enqueue(3);
    await waitFor(() => harness.target.inFlight() === 1, { what: 'the token request to hang' });

    const stopping = Date.now();
    await worker.close();
    expect(Date.now() - stopping).toBeLessThan(10_000);
    await waitFor(() => harness.target.requests[0]!.endedAt !== undefined, { what: 'the token request to be aborted' });
    expect(harness.target.requests.map((request) => request.path)).toEqual(['/oauth/token']);
    // Back in the queue for the next worker: not failed, not dead-lettered.
    const client = redis().client;
    const back = (await client.zcard(`sluice:{${harness.queue}}:delayed`)) + (await queuedOperations(client, harness.queue));
    expect(back).toBe(3);
    expect(await harness.deadLetters().count()).toBe(0);
    expect(harness.logs.join('')).toContain('shutdown while waiting for an OAuth2 token; requeued');
  });

  it('a token endpoint that refuses the client dead-letters the operations as auth-failed, saying why', async () => {
    const oauth = oauthServer({
      tokenFailures: Array.from({ length: 50 }, () => ({
        status: 401,
        json: { error: 'invalid_client', error_description: 'unknown client' },
      })),
    });
    const harness = await setup(auth, oauth.handler);
    await harness.startWorker(5);
    const outcome = await harness.run(3);
    expect(outcome).toMatchObject({ succeeded: 0, deadLettered: 3 });
    const letters = await harness.deadLetters().list({ batchId: outcome.batchId });
    expect(letters).toHaveLength(3);
    for (const letter of letters) {
      expect(letter.reason).toBe('auth-failed');
      expect(letter.message).toMatch(
        /target api: OAuth2 token request to http:\/\/127\.0\.0\.1:\d+\/oauth\/token answered HTTP 401: invalid_client \(unknown client\)/,
      );
    }
    await expectNoSecretLeaked(harness);
  });
});
