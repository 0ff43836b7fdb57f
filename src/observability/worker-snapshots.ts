import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisClient } from '../redis/client.js';
import type { Registry } from 'prom-client';
import { WORKER_SNAPSHOTS_KEY } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import type { Logger } from './logger.js';

/**
 * Worker processes publish their metrics to Redis; `sluice server` reads every live worker's.
 *
 * One hash holds them all: field = the worker's id, value = `<staleAtMs>|<json snapshot>`. One
 * script call per publish (HSET, stamped with Redis's own clock, so hosts' clocks do not matter)
 * and one per read (HGETALL, dropping the entries past their stale time). A single key needs no
 * hash tag for Redis Cluster, and `sluice:metrics:…` cannot clash with a queue's `sluice:{name}:…`.
 */

/** A worker's entry is ignored (and removed) this long after its last publish, unless its interval is longer. */
export const DEFAULT_STALE_AFTER_MS = 60_000;

/** What a worker publishes: prom-client's `getMetricsAsJSON()` of its registry and which queue it serves. */
export interface WorkerSnapshot {
  /** `host:pid:random`, unique per worker instance. */
  worker: string;
  queue: string;
  /** Redis time (ms) of the publish. */
  at: number;
  metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
}

/** A new worker id: host, pid and a random part (two workers in one process, a reused pid). */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Stores one snapshot, live for `keepMs` from now. One Redis command. */
export async function publishSnapshot(redis: RedisClient, snapshot: Omit<WorkerSnapshot, 'at'>, keepMs: number): Promise<void> {
  const publish = defineScript<[string, string, number, string]>(redis, 'metrics-publish-1');
  // The reader works out the publish time from the stale time and keepMs.
  await publish(
    WORKER_SNAPSHOTS_KEY,
    snapshot.worker,
    keepMs,
    JSON.stringify({ queue: snapshot.queue, keepMs, metrics: snapshot.metrics }),
  );
}

/** Every live worker's snapshot, sorted by worker id; removes the stale ones. One Redis command. */
export async function readLiveSnapshots(redis: RedisClient): Promise<WorkerSnapshot[]> {
  const read = defineScript<[string]>(redis, 'metrics-read-live-1');
  const reply = (await read(WORKER_SNAPSHOTS_KEY)) as string[];
  const snapshots: WorkerSnapshot[] = [];
  for (let i = 0; i < reply.length; i += 2) {
    const value = reply[i + 1]!;
    const bar = value.indexOf('|');
    try {
      const body = JSON.parse(value.slice(bar + 1)) as { queue: string; keepMs: number; metrics: WorkerSnapshot['metrics'] };
      if (typeof body.queue !== 'string' || !Array.isArray(body.metrics)) continue;
      snapshots.push({ worker: reply[i]!, queue: body.queue, at: Number(value.slice(0, bar)) - body.keepMs, metrics: body.metrics });
    } catch {
      // Not ours, or cut: skip it (it goes stale and is removed like any other).
    }
  }
  return snapshots.sort((a, b) => (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0));
}

export interface MetricsPublisherOptions {
  /** Borrowed. */
  redis: RedisClient;
  registry: Registry;
  queue: string;
  logger: Logger;
  /** Default: newWorkerId(). */
  id?: string;
  /** How often to publish. Default 5,000 ms. */
  intervalMs?: number;
  /** How long a snapshot counts as live. Default: the larger of 60 s and three intervals. */
  keepMs?: number;
}

export interface MetricsPublisher {
  readonly id: string;
  /** Publishes now (the timer does this every interval). */
  publish(): Promise<void>;
  /** Stops the timer and publishes a last time (waiting at most 2 s for Redis). Idempotent. */
  close(): Promise<void>;
}

/**
 * Publishes a worker's registry every `intervalMs` and once on close. A failed publish (Redis
 * away) is logged once and retried at the next tick; a tick that finds the last publish still
 * pending is skipped.
 */
export function createMetricsPublisher(options: MetricsPublisherOptions): MetricsPublisher {
  const { redis, registry, queue, logger } = options;
  const id = options.id ?? newWorkerId();
  const intervalMs = options.intervalMs ?? 5_000;
  if (!Number.isFinite(intervalMs) || intervalMs < 10) {
    throw new TypeError(`metrics intervalMs: expected at least 10 (ms), received ${String(intervalMs)}`);
  }
  const keepMs = options.keepMs ?? Math.max(DEFAULT_STALE_AFTER_MS, 3 * intervalMs);
  const log = logger.child({ component: 'metrics', worker: id });
  let pending: Promise<void> | undefined;
  let failing = false;
  let closing: Promise<void> | undefined;

  function publish(): Promise<void> {
    pending ??= registry
      .getMetricsAsJSON()
      .then((metrics) => publishSnapshot(redis, { worker: id, queue, metrics }, keepMs))
      .then(
        () => {
          if (failing) log.info('metrics published again');
          failing = false;
        },
        (error: unknown) => {
          if (!failing) log.warn({ err: error }, 'could not publish metrics to Redis; will retry');
          failing = true;
        },
      )
      .finally(() => {
        pending = undefined;
      });
    return pending;
  }

  const timer = setInterval(() => {
    if (!pending) void publish();
  }, intervalMs);
  timer.unref();

  async function close(): Promise<void> {
    clearInterval(timer);
    // A pending publish may wait for a Redis that is gone (worker connections retry forever): bounded.
    const last = (pending ?? Promise.resolve()).then(publish);
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([last, new Promise((resolve) => (deadline = setTimeout(resolve, 2_000)))]);
    clearTimeout(deadline);
  }

  return {
    id,
    publish,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
