/**
 * An operation carrying every kind of credential a caller might put in one, dead-lettered, then
 * looked at through every reader: the HTTP API (operation, dead letters, overview), the CLI
 * (`dlq show`, `dlq list`, `dlq list --json`) and bull-board. None shows a secret; what is stored
 * is unchanged, and a replay sends the operation exactly as it was enqueued.
 */
import { describe, expect, it } from 'vitest';
import { PREFIX, bullQueueName, queueKeys } from '../../src/redis/keys.js';
import { Queue } from 'bullmq';
import { TOKENS, startApiServer } from '../helpers/api-server.js';
import { runCliInProcess } from '../helpers/cli-in-process.js';
import { FAST_RETRY, startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();

/** Every secret holds this, so one check finds any of them. */
const MARK = 's3cr3t';

function secretOperation(targetUrl: string) {
  const withPassword = targetUrl.replace('http://', `http://deploy:${MARK}-url-password@`);
  return {
    method: 'POST',
    url: `${withPassword}/orders?access_token=${MARK}-url-token&page=2`,
    headers: {
      Authorization: `Bearer ${MARK}-authorization`,
      'x-api-key': `${MARK}-x-api-key`,
      Cookie: `sid=${MARK}-cookie`,
      'Proxy-Authorization': `Basic ${MARK}-proxy`,
      'X-Upstream-Token': `${MARK}-upstream-token`,
      'X-Forwarded-Auth': `Bearer ${MARK}-scheme-in-a-plain-header`,
      accept: 'application/json',
    },
    query: { api_key: `${MARK}-q-api-key`, token: `${MARK}-q-token`, password: `${MARK}-q-password`, limit: '10' },
    json: { name: 'visible-name', password: `${MARK}-json-password` },
    retry: FAST_RETRY,
  };
}

/** A job another language's client wrote, whose URL (with credentials) is invalid: its dead letter's message quotes it. */
const FOREIGN_URL = `ftp://mirror:${MARK}-ftp-password@files.example.com/export?token=${MARK}-ftp-token`;

describe('what readers see of an operation carrying credentials', () => {
  it('every reader shows it redacted; the stored operation and a replay keep it as enqueued', async () => {
    const p = await startPipeline(redis());
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
    p.target.script('POST /orders', [
      { status: 404, json: { error: 'no such order' } },
      { status: 201, json: { ok: true } },
    ]);
    const batchId = 'secrets';
    const { id } = await p.producer.enqueue(secretOperation(p.target.url), { batchId });
    const foreign = await p.bullQueue().add('op', { method: 'GET', url: FOREIGN_URL });
    await p.settled(batchId);
    await waitFor(async () => (await p.deadLetters.get(foreign.id!)) !== undefined, { what: 'the foreign job to be dead-lettered' });
    expect((await p.deadLetters.get(foreign.id!))!.message).toContain(`${MARK}-ftp-token`);

    const shown: Record<string, string> = {};
    const read = async (path: string) => {
      const response = await api.call(path, { role: 'read' });
      shown[`GET ${path}`] = await response.text();
      expect(response.status, shown[`GET ${path}`]).toBe(200);
    };
    await read(`/v1/operations/${id}`);
    await read(`/v1/operations/${foreign.id!}`);
    await read('/v1/dead-letters');
    await read(`/v1/dead-letters?batch=${batchId}`);
    await read('/v1/overview');
    const env = { REDIS_URL: redis().url, SLUICE_QUEUE: p.queue };
    for (const argv of [
      ['dlq', 'show', id],
      ['dlq', 'show', foreign.id!],
      ['dlq', 'show', id, '--json'],
      ['dlq', 'list', '--json'],
      ['dlq', 'list'],
    ]) {
      const result = await runCliInProcess(argv, env);
      expect(result.code, result.stderr).toBe(0);
      shown[`sluice ${argv.join(' ')}`] = result.stdout;
    }
    const board = `/dashboard/read-only/api/queues/${encodeURIComponent(bullQueueName(p.queue))}/${id}`;
    shown[board] = await (await fetch(`${api.url}${board}`, { headers: { authorization: `Bearer ${TOKENS.read}` } })).text();

    const leaking = Object.entries(shown).filter(([, text]) => text.includes(MARK));
    expect(leaking.map(([where]) => where)).toEqual([]);
    for (const [where, text] of Object.entries(shown)) expect(text, where).toContain('[redacted]');
    // Redaction withholds values, not the shape: names and harmless values stay readable.
    const op = (JSON.parse(shown[`GET /v1/operations/${id}`]!) as { operation: ReturnType<typeof secretOperation> }).operation;
    const url = `${p.target.url.replace('http://', 'http://deploy:redacted@')}/orders?access_token=[redacted]&page=2`;
    expect(op).toMatchObject({
      url,
      headers: {
        Authorization: '[redacted]',
        'x-api-key': '[redacted]',
        Cookie: '[redacted]',
        'Proxy-Authorization': '[redacted]',
        'X-Upstream-Token': '[redacted]',
        'X-Forwarded-Auth': '[redacted]',
        accept: 'application/json',
      },
      query: { api_key: '[redacted]', token: '[redacted]', password: '[redacted]', limit: '10' },
      json: { name: 'visible-name', password: '[redacted]' },
    });
    expect(shown['sluice dlq list']).toContain(`POST ${url}`);
    // `dlq show --json`: one line, the object `dlq list --json` prints and the API lists in `items`.
    const showJson = shown[`sluice dlq show ${id} --json`]!;
    expect(showJson.split('\n')).toEqual([expect.any(String), '']);
    const apiItem = (JSON.parse(shown['GET /v1/dead-letters']!) as { items: { id: string }[] }).items.find((item) => item.id === id);
    const listed = shown['sluice dlq list --json']!.trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string });
    expect(JSON.parse(showJson)).toEqual(apiItem);
    expect(JSON.parse(showJson)).toEqual(listed.find((item) => item.id === id));
    expect(JSON.parse(shown[`sluice dlq show ${id}`]!)).toEqual(JSON.parse(showJson));
    expect(shown[`sluice dlq show ${foreign.id!}`]).toContain('ftp://mirror:redacted@files.example.com/export?token=[redacted]');

    // Stored as enqueued: the dead letter in Redis, and the replay's request.
    const stored = await redis().client.hget(queueKeys(p.queue).deadLetters, id);
    for (const secret of ['url-password', 'url-token', 'authorization', 'x-api-key', 'cookie', 'q-api-key', 'json-password'])
      expect(stored).toContain(`${MARK}-${secret}`);
    expect((await p.deadLetters.replay([id])).replayed).toHaveLength(1);
    const replayed = (await waitFor(() => p.target.requests.filter((request) => request.path.startsWith('/orders'))[1]))!;
    expect(replayed.headers).toMatchObject({
      authorization: `Bearer ${MARK}-authorization`,
      'x-api-key': `${MARK}-x-api-key`,
      cookie: `sid=${MARK}-cookie`,
      'x-forwarded-auth': `Bearer ${MARK}-scheme-in-a-plain-header`,
    });
    expect(replayed.path).toContain(`access_token=${MARK}-url-token`);
    expect(replayed.path).toContain(`api_key=${MARK}-q-api-key`);
  });

  it('shows a dead letter whose job BullMQ removed redacted too', async () => {
    const p = await startPipeline(redis());
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });
    p.target.script('POST /orders', [{ status: 404 }]);
    const { id } = await p.producer.enqueue(secretOperation(p.target.url), { batchId: 'removed' });
    await p.settled('removed');
    await waitFor(async () => (await p.bullQueue().getJobState(id)) === 'failed', { what: 'the job to fail' });
    const bull = new Queue(bullQueueName(p.queue), { connection: redis().client, prefix: PREFIX });
    await bull.remove(id);
    await bull.close();

    const response = await api.call(`/v1/operations/${id}`, { role: 'read' });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ state: 'dead-lettered', operation: { headers: { Authorization: '[redacted]' } } });
    expect(text).not.toContain(MARK);
  });
});
