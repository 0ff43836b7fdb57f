import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { PREFIX } from '../queue/keys.js';
import { luaScript } from '../queue/lua-script.js';
import type { Logger } from './logger.js';

/**
 * Worker processes publish their metrics to Redis; `sluice server` reads every live worker's.
 *
 * One hash holds them all: field = the worker's id, value = `<staleAtMs>|<json snapshot>`. One
 * script call per publish (HSET, stamped with Redis's own clock, so hosts' clocks do not matter)
 * and one per read (HGETALL, dropping the entries past their stale time). A single key needs no
 * hash tag for Redis Cluster, and `sluice:metrics:…` cannot clash with a queue's `sluice:{name}:…`.
 */
export const WORKER_SNAPSHOTS_KEY = `${PREFIX}:metrics:workers`;

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

/**
 * KEYS: the hash. ARGV: field, keep ms, payload. Stores `<now + keep>|<payload>` and returns now (ms).
 * It also looks at one random other entry and deletes it if stale, and keeps the hash expiring after
 * the longest keep, so the entries of dead workers go away even when no server reads them.
 * (HRANDFIELD needs Redis 6.2; on older servers that clean-up is skipped.)
 */
const PUBLISH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[2])
local probe = redis.pcall('HRANDFIELD', KEYS[1])
if type(probe) == 'string' and probe ~= ARGV[1] then
  local value = redis.call('HGET', KEYS[1], probe)
  local bar = value and string.find(value, '|', 1, true)
  local staleAt = bar and tonumber(string.sub(value, 1, bar - 1))
  if not staleAt or staleAt < now then redis.call('HDEL', KEYS[1], probe) end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now + keep) .. '|' .. ARGV[3])
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
return now`;

/** KEYS: the hash. Returns [field, value, …] of entries not yet stale; deletes the stale ones. */
const READ_LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local bar = string.find(value, '|', 1, true)
  local staleAt = bar and tonumber(string.sub(value, 1, bar - 1))
  if staleAt and staleAt >= now then
    live[#live + 1] = all[i]
    live[#live + 1] = value
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live`;

/** A new worker id: host, pid and a random part (two workers in one process, a reused pid). */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Stores one snapshot, live for `keepMs` from now. One Redis command. */
export async function publishSnapshot(redis: Redis, snapshot: Omit<WorkerSnapshot, 'at'>, keepMs: number): Promise<void> {
  const publish = luaScript<[string, string, number, string]>(redis, 'sluiceMetricsPublish', 1, PUBLISH);
  // The reader works out the publish time from the stale time and keepMs.
  await publish(
    WORKER_SNAPSHOTS_KEY,
    snapshot.worker,
    keepMs,
    JSON.stringify({ queue: snapshot.queue, keepMs, metrics: snapshot.metrics }),
  );
}

/** Every live worker's snapshot, sorted by worker id; removes the stale ones. One Redis command. */
export async function readLiveSnapshots(redis: Redis): Promise<WorkerSnapshot[]> {
  const read = luaScript<[string]>(redis, 'sluiceMetricsReadLive', 1, READ_LIVE);
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
  redis: Redis;
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
