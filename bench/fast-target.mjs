/**
 * The fastest target we can offer the workers: a `node:http` server on 127.0.0.1 that answers every
 * request `200 {"ok":true}` at once and records when each request arrived (`performance.now()`, the
 * bench process's monotonic clock). It does no work of its own, so the throughput figures measure
 * sluice, not the target.
 */
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * `bodyBytes`: answer a JSON body of about this size instead (the memory scenario uses 1 KiB).
 * @returns {Promise<{ url: string, requests(): number, arrivals(): Float64Array, close(): Promise<void> }>}
 */
export async function startFastTarget({ bodyBytes } = {}) {
  const BODY = Buffer.from(bodyBytes ? JSON.stringify({ ok: true, pad: 'x'.repeat(Math.max(0, bodyBytes - 22)) }) : '{"ok":true}');
  const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };
  let arrivals = new Float64Array(32_768);
  let count = 0;
  const server = createServer((req, res) => {
    if (count === arrivals.length) {
      const grown = new Float64Array(arrivals.length * 2);
      grown.set(arrivals);
      arrivals = grown;
    }
    arrivals[count++] = performance.now();
    // The body is not needed; let it drain so the connection stays reusable.
    req.resume();
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
  const served = await serveOnLoopback(server);
  return {
    url: served.url,
    requests: () => count,
    arrivals: () => arrivals.slice(0, count),
    close: served.close,
  };
}

/**
 * Listens on a free loopback port, keeping keep-alive connections 30 s (the bench's clients reuse
 * them): the base URL, and a close that ends every connection (once, however often it is called).
 */
export async function serveOnLoopback(server) {
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  const address = server.address();
  let closing;
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    close() {
      closing ??= new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve(undefined)));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
