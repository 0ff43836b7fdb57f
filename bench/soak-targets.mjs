/**
 * The soak's targets: `node:http` servers on 127.0.0.1 in the soak process, each counting the
 * requests it receives per `Idempotency-Key` — when each arrived, which worker sent it (the
 * `x-soak-worker` header each worker's config adds), how it was answered, and whether another
 * request for the same key was in flight meanwhile.
 *
 * - `steady`: 201 after 2–20 ms; `/reject/…` answers 422 (operations meant to be dead-lettered).
 * - `flaky`: like steady, but about 20 % of requests are answered 503.
 * - `limited`: a strict GCRA limiter (`rate`/s, `burst`) in front: anything faster is answered 429
 *   with `Retry-After: 1`.
 * - `wobbly`: like steady, but `goDown()` closes the server (connections are refused, open ones cut)
 *   until `comeUp()` listens again on the same port.
 */
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

/** An answer the workers take as final: a success, or the 422 of `/reject`. */
const FINAL = (status) => (status >= 200 && status < 300) || status === 422;

/** Per key: what the target saw of it. Times are ms since `epoch` (the soak's start). */
function newKeyRecord() {
  return { requests: 0, firstAt: -1, finalAt: -1, finalWorker: '', inFlight: 0, repeatsAfterFinal: [] };
}

/**
 * @param {{ name: string, epoch: number, random: () => number, failRate?: number, limit?: { rate: number, burst: number } }} options
 */
export async function startCountingTarget({ name, epoch, random, failRate = 0, limit }) {
  const keys = new Map();
  const byStatus = {};
  const stats = { requests: 0, withoutKey: 0, concurrent: 0, unanswered: 0 };
  // GCRA: the theoretical arrival time of the next conforming request.
  let tat = 0;
  const interval = limit ? 1000 / limit.rate : 0;
  const tolerance = limit ? interval * limit.burst : 0;

  const handler = (req, res) => {
    const now = performance.now() - epoch;
    stats.requests += 1;
    const key = req.headers['idempotency-key'];
    const worker = String(req.headers['x-soak-worker'] ?? '');
    let record;
    if (typeof key === 'string') {
      record = keys.get(key);
      if (!record) keys.set(key, (record = newKeyRecord()));
      record.requests += 1;
      if (record.firstAt < 0) record.firstAt = now;
      if (record.inFlight > 0) stats.concurrent += 1;
      if (record.finalAt >= 0) record.repeatsAfterFinal.push({ at: now, worker, finalAt: record.finalAt, finalWorker: record.finalWorker });
      record.inFlight += 1;
    } else {
      stats.withoutKey += 1;
    }
    let status = 201;
    const headers = { 'content-type': 'application/json' };
    if (limit) {
      const t = Math.max(tat, now);
      if (t - now > tolerance) {
        status = 429;
        headers['retry-after'] = '1';
      } else {
        tat = t + interval;
      }
    }
    if (status === 201 && req.url?.startsWith('/reject')) status = 422;
    if (status === 201 && random() < failRate) status = 503;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    let done = false;
    const finish = (answered) => {
      if (done) return;
      done = true;
      if (!record) return;
      record.inFlight -= 1;
      if (answered && FINAL(status) && record.finalAt < 0) {
        record.finalAt = performance.now() - epoch;
        record.finalWorker = worker;
      }
      if (!answered) stats.unanswered += 1;
    };
    res.once('finish', () => finish(true));
    res.once('close', () => finish(res.writableFinished));
    req.resume();
    req.once('end', () => {
      const latency = 2 + Math.floor(random() * 18);
      setTimeout(() => {
        if (res.destroyed) return;
        const body = JSON.stringify(status < 300 ? { id: key ?? null, ok: true } : { error: status });
        res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }, latency);
    });
  };

  let server;
  let port = 0;
  const listen = async () => {
    for (let attempt = 1; ; attempt++) {
      server = createServer(handler);
      server.keepAliveTimeout = 30_000;
      try {
        await new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve(undefined);
          });
        });
        port = server.address().port;
        return;
      } catch (error) {
        // The port of a target that went down may be taken meanwhile; it comes back when it frees.
        if (error.code !== 'EADDRINUSE' || attempt >= 50) throw error;
        await delay(200);
      }
    }
  };
  const close = () =>
    new Promise((resolve) => {
      const current = server;
      if (!current?.listening) return resolve(undefined);
      current.close(() => resolve(undefined));
      current.closeAllConnections();
    });
  await listen();

  let down = false;
  return {
    name,
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    isDown: () => down,
    /** Refuses connections (and cuts the open ones) until comeUp(). */
    async goDown() {
      if (down) return;
      down = true;
      await close();
    },
    async comeUp() {
      if (!down) return;
      await listen();
      down = false;
    },
    close,
    /** Counts, and every request for a key after the key had its final answer (2xx, or 422) (with who sent what). */
    summary() {
      let extraRequests = 0;
      let keysSeen = 0;
      let keysFinal = 0;
      const repeatsAfterFinal = [];
      for (const [key, record] of keys) {
        keysSeen += 1;
        if (record.finalAt >= 0) keysFinal += 1;
        extraRequests += record.requests - 1;
        for (const repeat of record.repeatsAfterFinal) repeatsAfterFinal.push({ key, ...repeat });
      }
      return { name, ...stats, byStatus: { ...byStatus }, keysSeen, keysFinal, extraRequests, repeatsAfterFinal };
    },
    /** What the target saw of one key (undefined: no request). */
    key: (key) => keys.get(key),
  };
}
