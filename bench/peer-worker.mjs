/**
 * One worker process of a peer that the bench compares sluice with under a binding limit
 * (bench/peers.mjs): a plain BullMQ worker whose jobs are each one undici POST to the demo API,
 * rate-limited the way a user would without sluice.
 *
 *   node bench/peer-worker.mjs bullmq OPTIONS_JSON        BullMQ's own Worker `limiter` ({ max, duration })
 *   node bench/peer-worker.mjs bottleneck OPTIONS_JSON    the POST inside `limiter.schedule()` of a
 *                                                         Bottleneck limiter clustered through Redis (ioredis)
 *
 * OPTIONS_JSON: { url, concurrency, limiter?: { max, duration }, bottleneck?: { id, ...Bottleneck options } }.
 * REDIS_URL and the queue SLUICE_QUEUE (BullMQ's default prefix) come from the environment, as for
 * bench/minimal-process.mjs. A 429 answer completes the job (it is counted, never retried); any
 * other answer that is not 2xx, a network error or a Bottleneck error fails it (1 attempt). Errors
 * that Bottleneck emits on its own (its heartbeat, its Redis clients) are printed on stderr as a
 * JSON line `{"bottleneckError": message}`. It prints `ready` when it takes work and keeps running
 * until SIGTERM.
 */
import Bottleneck from 'bottleneck';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';

const [mode, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}');
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = process.env.SLUICE_QUEUE ?? 'bench-peer';
if (mode !== 'bullmq' && mode !== 'bottleneck') {
  console.error(`unknown mode ${mode}: expected bullmq or bottleneck`);
  process.exit(2);
}

const dispatcher = new Agent({ connections: options.concurrency });

/** One POST with a small JSON body, the answer read whole; 429 is an outcome, not an error. */
async function post(data) {
  const res = await request(`${options.url}/records`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(data),
  });
  await res.body.text();
  if (res.statusCode !== 429 && (res.statusCode < 200 || res.statusCode > 299)) throw new Error(`status ${res.statusCode}`);
  return res.statusCode;
}

let limiter;
if (mode === 'bottleneck') {
  const { hostname, port } = new URL(redisUrl);
  limiter = new Bottleneck({
    ...options.bottleneck,
    datastore: 'ioredis',
    clientOptions: { host: hostname, port: Number(port) },
  });
  limiter.on('error', (error) => console.error(JSON.stringify({ bottleneckError: error?.message ?? String(error) })));
  await limiter.ready();
}

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker(queueName, limiter ? (job) => limiter.schedule(() => post(job.data)) : (job) => post(job.data), {
  connection,
  concurrency: options.concurrency,
  ...(mode === 'bullmq' ? { limiter: options.limiter } : {}),
  removeOnComplete: { age: 3_600 },
  removeOnFail: { age: 86_400 },
});
worker.on('error', (error) => console.error(error));
await worker.waitUntilReady();
console.log('ready');

process.once('SIGTERM', () => {
  void (async () => {
    try {
      await worker.close();
      if (limiter) await limiter.disconnect();
      await dispatcher.close();
      connection.disconnect();
    } finally {
      process.exit(0);
    }
  })();
});
