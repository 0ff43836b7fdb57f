/**
 * Credentials in a request's query string never reach the request log.
 */
import { describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

async function setup(): Promise<{ p: Pipeline; api: ApiServer }> {
  const p = await startPipeline(redis());
  const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue, queueDiscoveryMs: 0 });
  return { p, api };
}

describe('the request log', () => {
  it('withholds credentials sent in a query string, whatever the answer', async () => {
    const { api } = await setup();
    const secrets = ['query-token-1', 'query-token-2', 'query-token-3', 'query-token-4', 'query-token-5', 'query-token-6'];
    const requests: [string, Parameters<ApiServer['call']>[1]][] = [
      [`/healthz?token=${secrets[0]}`, { role: null }],
      [`/v1/limits?access_token=${secrets[1]}&page=2`, { role: null }],
      [`/v1/nothing-here?api_key=${secrets[2]}`, { role: 'read' }],
      [`/v1/operations?queue=x&client_secret=${secrets[3]}`, { method: 'POST', role: 'enqueue', json: {} }],
      [`/dashboard/api/queues?x-api-key=${secrets[4]}`, { role: 'admin' }],
      [`/v1/batches?limit=5&ACCESS%5FTOKEN=${secrets[5]}&token`, { role: 'read' }],
    ];
    for (const [path, init] of requests) await api.call(path, init);
    const log = api.log();
    for (const secret of secrets) expect(log).not.toContain(secret);
    expect(log).toContain('/v1/limits?access_token=[redacted]&page=2');
    expect(log).toContain('/healthz?token=[redacted]');
    expect(log).toContain('/v1/batches?limit=5&ACCESS%5FTOKEN=[redacted]&token');
  });
});
