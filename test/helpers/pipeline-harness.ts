/**
 * One producer → queue → in-process worker → scripted target pipeline per test, on the test
 * file's redis-server. Everything it opens is closed when the test finishes (workers first, with
 * `force` so a test that failed mid-request does not wait for the shutdown deadline).
 */
import { Queue } from 'bullmq';
import { EMPTY_CONFIG, type SluiceConfig } from '../../src/config/sluice-config.js';
import { onTestFinished } from 'vitest';
import { createDeadLetterStore, type DeadLetterStore } from '../../src/outcomes/dead-letter-store.js';
import { createBatches, type Batches, type BatchStatus } from '../../src/outcomes/batches.js';
import { PREFIX, bullQueueName } from '../../src/redis/keys.js';
import { createProducer, type Producer, type ProducerOptions } from '../../src/queue/producer.js';
import type { ResultLine } from '../../src/outcomes/result-line.js';
import { createSluiceWorker, type SluiceWorker, type SluiceWorkerOptions } from '../../src/worker/sluice-worker.js';
import { testLogger, uniqueQueue, waitFor, type TestRedis } from './redis.js';
import { startTargetServer, type RecordedRequest, type TargetServer } from './target-server.js';

/** Small delays so retried tests take milliseconds, not seconds. */
export const FAST_RETRY = { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 } as const;

export type WorkerOverrides = Partial<Omit<SluiceWorkerOptions, 'connection' | 'logger' | 'queue'>>;

export interface Pipeline {
  queue: string;
  /** The config producers and workers use: the given one plus a `test-target` target for the target server. */
  config: SluiceConfig;
  target: TargetServer;
  producer: Producer;
  /** The first worker (already ready). */
  worker: SluiceWorker;
  batches: Batches;
  deadLetters: DeadLetterStore;
  /** Another worker on the same queue, ready, closed at the end of the test. */
  startWorker(overrides?: WorkerOverrides): Promise<SluiceWorker>;
  /** A raw BullMQ queue on the same queue (as another language's client would use it). */
  bullQueue(): Queue;
  /** A POST to `${target.url}${path}` with fast retries. */
  op(path: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Requests the target received for this path (query included). */
  requestsTo(path: string): RecordedRequest[];
  /** Waits until the batch has nothing pending (and something was counted). */
  settled(batchId: string, timeoutMs?: number): Promise<BatchStatus>;
  /** Every result line of a batch. */
  results(batchId: string): Promise<ResultLine[]>;
}

/** `producerOptions`: the producer's own (e.g. `lanes`). */
export async function startPipeline(
  redis: TestRedis,
  overrides: WorkerOverrides = {},
  producerOptions: Pick<ProducerOptions, 'lanes' | 'laneSize' | 'dedupWindowSeconds'> = {},
): Promise<Pipeline> {
  const queue = uniqueQueue('pipe');
  const target = await startTargetServer();
  // The target server is on loopback: a target for it allows that (sluice refuses internal addresses otherwise).
  const base = overrides.config ?? EMPTY_CONFIG;
  const config: SluiceConfig = {
    ...base,
    targets: { ...base.targets, 'test-target': { baseUrl: target.url, allowPrivateAddresses: true } },
  };
  const workerOverrides: WorkerOverrides = { ...overrides, config };
  const workers: SluiceWorker[] = [];
  let bull: Queue | undefined;
  const producer = createProducer({ connection: redis.url, queue, config, ...producerOptions });
  // Replays go back as the producer writes (in lanes when it does).
  const deadLetters = createDeadLetterStore({ redis: redis.client, queue, config, ...producerOptions });

  onTestFinished(async () => {
    const failures: unknown[] = [];
    const attempt = async (close: () => Promise<void>): Promise<void> => {
      try {
        await close();
      } catch (error) {
        failures.push(error);
      }
    };
    for (const worker of workers.reverse()) await attempt(() => worker.close({ force: true }));
    await attempt(() => producer.close());
    await attempt(() => deadLetters.close());
    if (bull) await attempt(() => bull!.close());
    await attempt(() => target.close());
    if (failures.length) throw new AggregateError(failures, 'pipeline cleanup failed');
  });

  async function startWorker(more: WorkerOverrides = {}): Promise<SluiceWorker> {
    const worker = createSluiceWorker({
      connection: redis.url,
      logger: testLogger(),
      queue,
      concurrency: 5,
      shutdownTimeoutMs: 5_000,
      ...workerOverrides,
      ...more,
    });
    workers.push(worker);
    await worker.ready();
    return worker;
  }

  const worker = await startWorker();
  const batches = createBatches(redis.client, queue);

  return {
    queue,
    config,
    target,
    producer,
    worker,
    batches,
    deadLetters,
    startWorker,
    bullQueue() {
      bull ??= new Queue(bullQueueName(queue), { connection: redis.client, prefix: PREFIX });
      return bull;
    },
    op(path, extra = {}) {
      return { method: 'POST', url: `${target.url}${path}`, json: { path }, retry: FAST_RETRY, ...extra };
    },
    requestsTo: (path) => target.requests.filter((request) => request.path === path),
    async settled(batchId, timeoutMs = 15_000) {
      const status = await waitFor(
        async () => {
          const current = await batches.status(batchId);
          return current && current.total > 0 && current.pending === 0 ? current : undefined;
        },
        { timeoutMs, what: `batch ${batchId} to settle` },
      );
      // waitFor only returns a truthy value.
      return status!;
    },
    async results(batchId) {
      const lines: ResultLine[] = [];
      for await (const line of batches.results(batchId)) lines.push(line);
      return lines;
    },
  };
}
