import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseSluiceConfig } from '../config/sluice-config.js';
import { classifyStatus } from '../http/classify.js';
import { createHttpClient } from '../http/http-client.js';
import { buildRequestSpec } from '../http/request-spec.js';
import { parseOperation } from '../operation/parse-operation.js';

/**
 * Runs a fresh worker process's job path a few dozen times before it takes jobs: parse and
 * validate an operation, build its request, send it (undici, its HTTP parser) and classify the
 * answer, against a loopback server of its own. A cold process meeting a backlog spends its
 * first second compiling all of that while it also starts rate-limited requests; measured here,
 * its event loop stalled for 250–365 ms (110–170 ms warm), long enough for starts to miss their
 * slots or arrive bunched at a strict target. Takes about 100–300 ms; nothing leaves the host.
 * (A listening server inside src/, which STYLE.md keeps for entry points: it binds 127.0.0.1 on an
 * ephemeral port for those few hundred ms only, and is closed before the worker takes jobs.)
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
