import { Job } from 'bullmq';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import { sleep } from '../support/sleep.js';

/**
 * Jobs a worker fetched whose reply Redis never sent. A Redis that shuts down (a restart, a
 * failover) runs the commands it has read before it stops, and writes them to its AOF, but may not
 * answer them; a connection cut after a command reached Redis does the same. When the command was
 * BullMQ's fetch (moveToActive, or a moveToFinished that fetches the next job), the job is in
 * `active` under this worker's lock, and nothing here knows of it: nobody runs it, nobody renews its
 * lock, and only BullMQ's stalled-job check takes it back, 30–60 s later with the defaults (the lock
 * duration, then the next fleet-wide check). A batch waits that long for it.
 *
 * So after each reconnect the worker looks in `active` for jobs locked with its own tokens
 * (`<worker id>:<n>`) that it does not hold, and puts them back in the queue (BullMQ's
 * moveJobFromActiveToWait: only while the lock is still that token; no stall counted). Twice, a
 * moment apart: a fetch re-sent after the reconnect (ioredis re-sends what was not answered) may be
 * answered, and its job taken up, just after the first look; a job in both looks, not taken up in
 * between, is an orphan. A job put back whose outcome was already recorded is not sent again (its
 * next run finds the outcome: see job-ending.ts).
 */

/** Between the two looks: long enough for the replies of re-sent commands to be taken up. */
export const ORPHAN_SETTLE_MS = 500;
/** Lock keys read per MGET. */
const LOCKS_AT_ONCE = 1_000;

export interface OrphanHost {
  /** The worker's id: its lock tokens are `<id>:<n>`. */
  readonly id: string;
  /** BullMQ's active list and a job's lock key. */
  activeKey: string;
  lockKey(jobId: string): string;
  /** Whether this process holds the job (fetched, running or finishing). */
  holds(jobId: string): boolean;
  /** BullMQ's marker: a job put back among the prioritized ones wakes no waiting worker without it. */
  markerKey: string;
  /** Puts the job back in the queue if its lock is still `token`; false when it is not. */
  putBack(jobId: string, token: string): Promise<boolean>;
}

/**
 * Puts a job of `queue` back in it (BullMQ's moveJobFromActiveToWait: no stall counted) while its
 * lock is still `token`; false when it is gone or someone else's lock is on it (BullMQ refuses).
 */
export async function putBackJob(queue: Parameters<typeof Job.fromId>[0], jobId: string, token: string): Promise<boolean> {
  const job = await Job.fromId(queue, jobId);
  return job
    ? job.moveToWait(token).then(
        () => true,
        () => false,
      )
    : false;
}

/** Jobs in `active` locked with this worker's tokens that it does not hold: job id → token. */
async function lookForOrphans(redis: RedisClient, host: OrphanHost): Promise<Map<string, string>> {
  const ids = await redis.lrange(host.activeKey, 0, -1);
  const orphans = new Map<string, string>();
  for (let from = 0; from < ids.length; from += LOCKS_AT_ONCE) {
    const some = ids.slice(from, from + LOCKS_AT_ONCE);
    const locks = await redis.mget(...some.map((id) => host.lockKey(id)));
    some.forEach((id, i) => {
      const lock = locks[i];
      if (lock?.startsWith(`${host.id}:`) && !host.holds(id)) orphans.set(id, lock);
    });
  }
  return orphans;
}

/** Looks twice (see above) and puts the orphans back; returns their ids. */
export async function reclaimOrphans(redis: RedisClient, host: OrphanHost, signal?: AbortSignal): Promise<string[]> {
  const first = await lookForOrphans(redis, host);
  if (first.size === 0 || !(await sleep(ORPHAN_SETTLE_MS, signal))) return [];
  const second = await lookForOrphans(redis, host);
  const reclaimed: string[] = [];
  for (const [id, token] of second) {
    // A worker closing leaves the rest to the stalled-job check.
    if (signal?.aborted) break;
    if (first.get(id) !== token || host.holds(id)) continue;
    if (await host.putBack(id, token)) reclaimed.push(id);
  }
  if (reclaimed.length) await redis.zadd(host.markerKey, 0, '0');
  return reclaimed;
}

/**
 * Calls `onReconnect` each time the client is ready again after it lost its connection (not at the
 * first connect). A Redis Cluster client says `close` only when every node is gone: one master's
 * restart or failover shows as a node it adds (`+node`), so that is a reconnect too (a worker
 * looks at its own jobs, whichever node holds them). One set of listeners per client, however many
 * workers share it. Returns the function that stops the calls.
 */
export function onReconnect(redis: RedisClient, callback: () => void): () => void {
  let watch = watches.get(redis);
  if (!watch) {
    const created: ReconnectWatch = { callbacks: new Set(), lost: false };
    redis.on('close', () => {
      created.lost = true;
    });
    const callAll = () => {
      for (const call of created.callbacks) call();
    };
    redis.on('ready', () => {
      if (!created.lost) return;
      created.lost = false;
      callAll();
    });
    // (A client's first nodes are added before it is ready: those are not reconnects.)
    if (redis instanceof Cluster) redis.on('+node', () => redis.status === 'ready' && callAll());
    watches.set(redis, created);
    watch = created;
  }
  const callbacks = watch.callbacks;
  callbacks.add(callback);
  return () => callbacks.delete(callback);
}

interface ReconnectWatch {
  callbacks: Set<() => void>;
  lost: boolean;
}

const watches = new WeakMap<RedisClient, ReconnectWatch>();
