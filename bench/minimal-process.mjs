/**
 * The ceilings the bench compares sluice with: the least code that does the same job, in its own
 * process like a sluice worker. It prints `ready` when it can take work and `done` when it has
 * done all of it (the bench stamps that line with its own clock; it counts a worker's completed jobs
 * in Redis instead, as several workers share a queue).
 *
 *   node bench/minimal-process.mjs http URL N CONCURRENCY     undici alone: N POSTs, CONCURRENCY at a time
 *   node bench/minimal-process.mjs worker URL CONCURRENCY     a BullMQ worker, one undici POST per job
 *   node bench/minimal-process.mjs addbulk FILE               raw `addBulk` of a JSONL file, 500 jobs a call
 *   node bench/minimal-process.mjs paced URL N RATE           undici alone, paced: N POSTs started RATE a second
 *                                                             (after 200 to warm up; `ready` once warm)
 *
 * `worker` and `addbulk` use REDIS_URL and the queue SLUICE_QUEUE (BullMQ's default prefix). The
 * worker keeps running after `done` until SIGTERM, as a sluice worker does.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';

const [mode, ...args] = process.argv.slice(2);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = process.env.SLUICE_QUEUE ?? 'bench-minimal';

/** One POST with a small JSON body; the answer's body is read whole, as sluice reads it. */
async function post(dispatcher, url, body) {
  const res = await request(`${url}/items`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

if (mode === 'http') {
  const [url, n, concurrency] = [args[0], Number(args[1]), Number(args[2])];
  const dispatcher = new Agent({ connections: concurrency });
  let next = 0;
  console.log('ready');
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await post(dispatcher, url, { i: next++ });
    }),
  );
  console.log('done');
  await dispatcher.close();
} else if (mode === 'worker') {
  const [url, concurrency] = [args[0], Number(args[1])];
  const dispatcher = new Agent({ connections: concurrency });
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const worker = new Worker(queueName, (job) => post(dispatcher, url, job.data), {
    connection,
    concurrency,
    removeOnComplete: { age: 3_600 },
    removeOnFail: { age: 86_400 },
  });
  worker.on('error', (error) => console.error(error));
  await worker.waitUntilReady();
  console.log('ready');
  process.once('SIGTERM', () => {
    void (async () => {
      await worker.close();
      await dispatcher.close();
      connection.disconnect();
    })();
  });
} else if (mode === 'addbulk') {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection });
  let chunk = [];
  for await (const line of createInterface({ input: createReadStream(args[0]), crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    chunk.push({ name: 'op', data: JSON.parse(line) });
    if (chunk.length === 500) {
      await queue.addBulk(chunk);
      chunk = [];
    }
  }
  if (chunk.length) await queue.addBulk(chunk);
  console.log('done');
  await queue.close();
  connection.disconnect();
} else if (mode === 'paced') {
  // What one HTTP request costs a process that sends a few at a time (the binding shape's rate per
  // worker process): nothing batched, a wakeup per request.
  const [url, n, rate] = [args[0], Number(args[1]), Number(args[2])];
  const dispatcher = new Agent({ connections: 10 });
  for (let i = 0; i < 200; i++) await post(dispatcher, url, { i });
  console.log('ready');
  const startedAt = performance.now();
  const sent = [];
  for (let i = 0; i < n; i++) {
    sent.push(post(dispatcher, url, { i }));
    const due = startedAt + ((i + 1) * 1000) / rate;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  await Promise.all(sent);
  console.log('done');
  await dispatcher.close();
} else {
  console.error(`unknown mode ${mode}: expected http, paced, worker or addbulk`);
  process.exit(2);
}
