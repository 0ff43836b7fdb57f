/**
 * OAuth2 client credentials across real worker processes: a cold fleet shares one token, and the
 * secrets live only in the workers' environment.
 */
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const CLIENT_ID = 'fleet-client-5e1d';
const CLIENT_SECRET = 'fleet-secret-77a0c3b9';

describe('OAuth2 across worker processes (built binary)', () => {
  it('3 cold workers × 100 concurrency, 300 operations: one token request for the fleet, every call authorized', async () => {
    const target = await startTestTarget();
    let token: string | undefined;
    let tokenRequests = 0;
    target.setDefault((request) => {
      if (request.path === '/oauth/token') {
        tokenRequests += 1;
        const expected = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
        if (request.headers['authorization'] !== expected) return { status: 401, json: { error: 'invalid_client' } };
        token = `fleet-token-${tokenRequests}`;
        // A slow token endpoint: every worker is asking at once while the first request is out.
        return { status: 200, json: { access_token: token, expires_in: 600 }, delayMs: 300 };
      }
      return request.headers['authorization'] === `Bearer ${token}` ? { status: 200, json: { ok: true } } : { status: 401, json: {} };
    });
    const queue = uniqueQueue('e2e-oauth');
    const config = await cli.file(
      `${queue}.json`,
      JSON.stringify({
        targets: {
          api: {
            baseUrl: target.url,
            allowPrivateAddresses: true,
            auth: {
              type: 'oauth2ClientCredentials',
              tokenUrl: `${target.url}/oauth/token`,
              clientIdFromEnv: 'API_CLIENT_ID',
              clientSecretFromEnv: 'API_CLIENT_SECRET',
            },
          },
        },
      }),
    );
    const env = { SLUICE_QUEUE: queue, SLUICE_CONFIG: config };
    const ops = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ method: 'POST', target: 'api', url: `/things/${i}`, json: { i } }),
    ).join('\n');
    // Enqueued first: the workers start cold into a full queue. The producer needs no secrets.
    const enqueued = await cli.run(['enqueue', await cli.file(`${queue}.jsonl`, `${ops}\n`), '--batch', 'fleet', '--json'], { env });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const workers = await cli.startWorkers(3, {
      concurrency: 100,
      env: { ...env, API_CLIENT_ID: CLIENT_ID, API_CLIENT_SECRET: CLIENT_SECRET, LOG_LEVEL: 'debug' },
    });

    const waited = await cli.run(['wait', 'fleet', '--timeout', '60', '--json'], { env, timeoutMs: 70_000 });
    if (waited.code !== 0) {
      // Why, for whoever reads the failure: the first dead letter and what the target saw.
      const first = (await cli.run(['dlq', 'list', '--limit', '1', '--json'], { env })).stdout.trim();
      const statuses = target.requests.filter((request) => request.path === '/oauth/token').length;
      expect.fail(
        `${waited.stdout.trim()}\ntoken requests: ${tokenRequests} (${statuses} to /oauth/token)\nfirst dead letter: ${first.slice(0, 1_500)}`,
      );
    }
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 300, succeeded: 300, deadLettered: 0 });
    expect(tokenRequests, 'token requests made by the fleet').toBe(1);
    const logs = workers.map((worker) => worker.stdout()).join('\n');
    expect(logs, 'worker logs').toContain('/things/');
    for (const secret of [CLIENT_SECRET, 'fleet-token-1']) expect(logs).not.toContain(secret);
  }, 90_000);
});
