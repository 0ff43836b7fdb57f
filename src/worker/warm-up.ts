import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseSluiceConfig } from '../config/sluice-config.js';
import { classifyStatus } from '../http/classify.js';
import { createHttpClient } from '../http/http-client.js';
import { buildRequestSpec } from '../http/request-spec.js';
import { parseOperation } from '../operation/parse-operation.js';

/**
 * Runs a fresh worker process's job path a few dozen times before it takes jobs (parse an operation,
 * build its request, send it through undici, classify the answer) against a loopback server of its
 * own: a cold process compiles all of that in its first second, and its event-loop stalls then make
 * rate-limited starts late or bunched (docs/architecture.md, "Worker warm-up"). Nothing leaves the
 * host; the server listens on 127.0.0.1 for those few hundred ms only.
 */
export async function warmUp(rounds = 40): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"id":"warm-up"}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = parseSluiceConfig({ targets: { 'warm-up': { baseUrl: base, allowPrivateAddresses: true } } });
  const http = createHttpClient();
  const samples = [
    { method: 'POST', target: 'warm-up', url: '/records', json: { id: 1, name: 'warm-up', tags: ['a', 'b'] }, meta: { row: 1 } },
    { method: 'PUT', target: 'warm-up', url: '/records/1', form: { name: 'warm-up', tags: ['a', 'b'] }, idempotencyKey: 'warm-up' },
    { method: 'GET', url: `${base}/records`, query: { page: 1, q: ['a', 'b'] }, expect: { status: [200] } },
  ];
  try {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        samples.map(async (sample, i) => {
          const parsed = parseOperation(sample, config);
          if (!parsed.ok) throw new Error(`warm-up operation ${i} is invalid: ${JSON.stringify(parsed.issues)}`);
          const spec = buildRequestSpec(parsed.operation, config.targets['warm-up'], `warm-up-${round}-${i}`);
          const response = await http.send(spec);
          classifyStatus(response.status, parsed.operation.expect?.status, response.retryAfterMs);
        }),
      );
    }
  } finally {
    await http.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
