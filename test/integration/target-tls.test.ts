/**
 * TLS per target through real workers and Redis, against `node:https` targets whose certificates a
 * CA made for this file signs: a private CA (`caFile`), mutual TLS (`certFile`/`keyFile`, an
 * encrypted key), `servername`, `minVersion`. A handshake that cannot succeed is dead-lettered at
 * once, saying why; a client certificate goes only to its target's origin; the SSRF guard holds
 * over https; key material never reaches Redis or the logs.
 */
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createDestinationPolicy } from '../../src/config/destinations.js';
import { loadTargetTls } from '../../src/config/tls-files.js';
import { AddressRefusedError } from '../../src/errors.js';
import { createHttpClient } from '../../src/http/http-client.js';
import { createLogger } from '../../src/observability/logger.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createDeadLetterStore } from '../../src/outcomes/dead-letter-store.js';
import { createProducer } from '../../src/queue/producer.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { PASSPHRASE, SERVER_NAME, createTestPki, startHttpsTarget, type HttpsTarget } from '../helpers/test-pki.js';

const redis = useRedisServer();
const pki = createTestPki();
afterAll(() => pki.remove());

const RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };

async function https(...args: Parameters<typeof startHttpsTarget>): Promise<HttpsTarget> {
  const target = await startHttpsTarget(...args);
  onTestFinished(() => target.close());
  return target;
}

/**
 * A producer and one worker (environment `env`, logs kept) on a queue of their own, with these
 * targets; `run` enqueues one operation and waits for its end.
 */
async function pipeline(targets: Record<string, unknown>, env: Record<string, string> = {}) {
  const config = parseSluiceConfig({ targets });
  const queue = uniqueQueue('tls');
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
  const worker = createSluiceWorker({ connection: redis().url, logger, queue, config, env, concurrency: 2, warmUp: false });
  const batches = createBatches(redis().client, queue);
  const deadLetters = createDeadLetterStore({ redis: redis().client, queue });
  onTestFinished(async () => {
    await worker.close({ force: true });
    await producer.close();
    await deadLetters.close();
  });
  await worker.ready();
  return {
    logs,
    async run(operation: Record<string, unknown>) {
      const batchId = uniqueQueue('batch');
      const { id } = await producer.enqueue({ retry: RETRY, ...operation }, { batchId });
      await waitFor(async () => (await batches.status(batchId))?.pending === 0, { what: `batch ${batchId} to settle`, timeoutMs: 15_000 });
      const lines = [];
      for await (const line of batches.results(batchId)) lines.push(line);
      return { line: lines[0]!, deadLetter: await deadLetters.get(id) };
    },
  };
}

const target = (server: HttpsTarget, tls?: Record<string, unknown>) => ({
  baseUrl: server.url,
  allowPrivateAddresses: true,
  ...(tls ? { tls } : {}),
});

describe('a private CA', () => {
  it('without caFile: dead-lettered at once (request-error), saying the certificate is not trusted; nothing was sent', async () => {
    const server = await https(pki.server);
    const p = await pipeline({ orders: target(server) });
    const { line, deadLetter } = await p.run({ target: 'orders', method: 'POST', url: '/orders', json: { sku: 'A' } });
    expect(line).toMatchObject({ outcome: 'deadLettered', reason: 'request-error', attempts: 1 });
    expect(deadLetter!.attempts).toHaveLength(1);
    expect(deadLetter!.attempts[0]).toMatchObject({ error: 'TLS_CERT_UNTRUSTED' });
    expect(deadLetter!.message).toBe(
      `POST ${server.url}/orders failed: the server's certificate is not trusted (for a server whose certificate a private CA signs, give that CA in the target's tls.caFile) (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate)`,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('with caFile: the request succeeds', async () => {
    const server = await https(pki.server);
    const p = await pipeline({ orders: target(server, { caFile: pki.caFile }) });
    const { line } = await p.run({ target: 'orders', method: 'POST', url: '/orders', json: { sku: 'A' } });
    expect(line).toMatchObject({ outcome: 'succeeded', status: 200, result: { body: { ok: true } } });
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /orders']);
  });

  it('caFile replaces the default roots: another CA is not trusted for this target', async () => {
    const server = await https(pki.server);
    const p = await pipeline({ orders: target(server, { caFile: pki.otherCaFile }) });
    const { deadLetter } = await p.run({ target: 'orders', method: 'GET', url: '/orders' });
    expect(deadLetter).toMatchObject({ reason: 'request-error', attempts: [{ error: 'TLS_CERT_UNTRUSTED' }] });
  });
});

describe('mutual TLS', () => {
  const mtls = { ca: readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: true };

  it.each([
    ['TLS 1.3', 'TLSv1.3', 'TLS_CLIENT_CERT_REFUSED', 'the server refused the client certificate, or requires one'],
    ['TLS 1.2', 'TLSv1.2', 'TLS_HANDSHAKE_FAILED', 'the TLS handshake failed'],
  ] as const)(
    'a server (%s) that requires a client certificate refuses a target without one: dead-lettered at once',
    async (_, maxVersion, code, words) => {
      const server = await https(pki.server, { ...mtls, maxVersion });
      const p = await pipeline({ partner: target(server, { caFile: pki.caFile }) });
      const { deadLetter } = await p.run({ target: 'partner', method: 'GET', url: '/status' });
      expect(deadLetter).toMatchObject({ reason: 'request-error', attempts: [{ error: code }] });
      expect(deadLetter!.message).toContain(words);
      expect(server.requests).toHaveLength(0);
    },
  );

  it('accepts a target with the certificate (an encrypted key); Redis and the logs never hold the key or its passphrase', async () => {
    const server = await https(pki.server, mtls);
    const tls = {
      caFile: pki.caFile,
      certFile: pki.client.certFile,
      keyFile: pki.encryptedClientKeyFile,
      passphraseFromEnv: 'PARTNER_KEY_PASSPHRASE',
    };
    const p = await pipeline({ partner: target(server, tls) }, { PARTNER_KEY_PASSPHRASE: PASSPHRASE });
    const { line } = await p.run({ target: 'partner', method: 'PUT', url: '/things/1', json: { n: 1 } });
    expect(line).toMatchObject({ outcome: 'succeeded', status: 200 });
    expect(server.requests).toMatchObject([{ method: 'PUT', path: '/things/1', clientCn: 'sluice-worker' }]);

    const stored = await redisText();
    const logged = p.logs.join('');
    // The scans read what they should: the job in Redis, its attempt in the logs.
    expect(stored).toContain('/things/1');
    expect(logged).toContain('/things/1');
    const keyBody = readFileSync(pki.encryptedClientKeyFile, 'utf8').split('\n')[1]!;
    const plainKeyBody = readFileSync(pki.client.keyFile, 'utf8').split('\n')[1]!;
    for (const secret of [PASSPHRASE, keyBody, plainKeyBody]) {
      expect(stored).not.toContain(secret);
      expect(logged).not.toContain(secret);
    }
  });

  it('a redirect to another origin does not take the client certificate along', async () => {
    // Trusts the same CA and asks for a client certificate, but does not require one.
    const elsewhere = await https(pki.server, { ca: readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: false });
    const landing = `https://localhost:${elsewhere.port}/landing`;
    const server = await https(pki.server, mtls, (path) =>
      path === '/moved' ? { status: 307, headers: { location: landing } } : { status: 200 },
    );
    const p = await pipeline({
      partner: target(server, { caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile }),
      mirror: { baseUrl: `https://localhost:${elsewhere.port}`, allowPrivateAddresses: true, tls: { caFile: pki.caFile } },
    });
    const { line } = await p.run({ target: 'partner', method: 'GET', url: '/moved' });
    expect(line).toMatchObject({ outcome: 'succeeded', status: 200 });
    expect(server.requests).toMatchObject([{ path: '/moved', clientCn: 'sluice-worker' }]);
    expect(elsewhere.requests).toMatchObject([{ path: '/landing', clientCn: undefined }]);
  });
});

describe('servername and minVersion', () => {
  it('verifies the certificate against servername when the target is called by IP', async () => {
    const server = await https(pki.namedServer);
    const p = await pipeline({
      named: target(server, { caFile: pki.caFile, servername: SERVER_NAME }),
      unnamed: { ...target(server, { caFile: pki.caFile }), baseUrl: `https://localhost:${server.port}` },
    });
    expect((await p.run({ target: 'named', method: 'GET', url: '/x' })).line).toMatchObject({ outcome: 'succeeded', status: 200 });
    const { deadLetter } = await p.run({ target: 'unnamed', method: 'GET', url: '/x' });
    expect(deadLetter).toMatchObject({ reason: 'request-error', attempts: [{ error: 'TLS_CERT_NAME_MISMATCH' }] });
    expect(deadLetter!.message).toContain("is not issued for this host name (the target's tls.servername names the one to verify)");
    expect(server.requests.map((r) => r.path)).toEqual(['/x']);
  });

  it('minVersion TLSv1.3 refuses a server that speaks TLS 1.2 at most; TLSv1.2 accepts it', async () => {
    const server = await https(pki.server, { maxVersion: 'TLSv1.2' });
    const strict = await pipeline({ old: target(server, { caFile: pki.caFile, minVersion: 'TLSv1.3' }) });
    const { deadLetter } = await strict.run({ target: 'old', method: 'GET', url: '/x' });
    expect(deadLetter).toMatchObject({ reason: 'request-error', attempts: [{ error: 'TLS_PROTOCOL_VERSION' }] });
    expect(deadLetter!.message).toContain("no TLS version in common (the target's tls.minVersion)");
    const lenient = await pipeline({ old: target(server, { caFile: pki.caFile, minVersion: 'TLSv1.2' }) });
    expect((await lenient.run({ target: 'old', method: 'GET', url: '/x' })).line).toMatchObject({ outcome: 'succeeded' });
  });
});

describe('the SSRF guard over https', () => {
  it('refuses a name that resolves to loopback, TLS settings or not, unless its target allows private addresses', async () => {
    const server = await https(pki.server);
    const origin = `https://localhost:${server.port}`;
    const spec = {
      method: 'GET',
      url: new URL(`${origin}/x`),
      headers: {},
      body: undefined,
      timeouts: { connect: 2_000, headers: 2_000, total: 5_000 },
    };
    const client = (allowPrivateAddresses: boolean) => {
      const config = parseSluiceConfig({ targets: { local: { baseUrl: origin, allowPrivateAddresses, tls: { caFile: pki.caFile } } } });
      return createHttpClient({ ...createDestinationPolicy(config), tls: loadTargetTls(config, {}) });
    };
    const refusing = client(false);
    const error = await refusing.send(spec).catch((caught: unknown) => caught);
    await refusing.close();
    expect(error).toBeInstanceOf(AddressRefusedError);
    expect((error as Error).message).toMatch(
      /^localhost \((127\.0\.0\.1|::1)\) is a loopback address; only a target for localhost:\d+ with "allowPrivateAddresses": true may call it$/,
    );
    expect(server.connections).toBe(0);

    const allowing = client(true);
    const response = await allowing.send(spec);
    await allowing.close();
    expect(response.status).toBe(200);
  });
});

describe('the example in docs/configuration.md', () => {
  it('runs as written, given its files and a server where its baseUrl points', async () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## TLS per target'), doc.indexOf('\n## ', doc.indexOf('## TLS per target') + 1));
    const [configText, operationText] = [...section.matchAll(/```json\n([\s\S]*?)\n```/g)].map((match) => match[1]!);
    const example = parseSluiceConfig(JSON.parse(configText!));
    const ledger = example.targets['ledger']!;
    expect(ledger.tls?.servername).toBe(SERVER_NAME);

    const server = await https(pki.namedServer, { ca: readFileSync(pki.caFile), requestCert: true, rejectUnauthorized: true });
    // The same config, with this machine's files and server in place of /etc/sluice/tls and 10.20.0.15:8443.
    const files: Record<string, string> = {
      '/etc/sluice/tls/ledger-ca.pem': pki.caFile,
      '/etc/sluice/tls/sluice-client.pem': pki.client.certFile,
      '/etc/sluice/tls/sluice-client.key': pki.encryptedClientKeyFile,
    };
    const tls = Object.fromEntries(Object.entries(ledger.tls!).map(([field, value]) => [field, files[String(value)] ?? value]));
    const baseUrl = ledger.baseUrl.replace('10.20.0.15:8443', `127.0.0.1:${server.port}`);
    const p = await pipeline({ ledger: { ...ledger, baseUrl, tls } }, { LEDGER_KEY_PASSPHRASE: PASSPHRASE });
    const { line } = await p.run(JSON.parse(operationText!) as Record<string, unknown>);
    expect(line).toMatchObject({ outcome: 'succeeded', status: 200 });
    expect(server.requests).toMatchObject([{ method: 'POST', path: '/v1/entries', clientCn: 'sluice-worker' }]);
  });
});

/** Every value in the test Redis, as text. */
async function redisText(): Promise<string> {
  const client = redis().client;
  const parts: string[] = [];
  for (const key of await client.keys('*')) {
    const type = await client.type(key);
    parts.push(key);
    if (type === 'string') parts.push((await client.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await client.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await client.smembers(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await client.zrange(key, 0, -1)));
    else if (type === 'stream') parts.push(JSON.stringify(await client.xrange(key, '-', '+')));
  }
  return parts.join('\n');
}
