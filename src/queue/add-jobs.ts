import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/client.js';
import { defineScript } from '../redis/scripts.js';
import { StaleShardCountError } from './shards.js';
import { jobIdForPlace } from '../redis/keys.js';

export interface NewJob {
  id: string;
  /** The job's data, or `json`: the data already serialized. */
  data?: unknown;
  json?: string;
  /** Its idempotency key's mark: set with the job, and the job is not added while another holds it. */
  dedupKey?: string;
  /** Its place in a resumable input (see EnqueueManyOptions.resumable), kept in its key's mark. */
  place?: string;
  /** The part of its batch's index of places that holds its place (see ChunkBatch.placesKey). */
  placeBucket?: string;
  /** Written as a delayed job (priority 0) due this many ms from now: far back in its limit key's line. */
  delayMs?: number;
}

/** A lane: one job (named `lane`) that carries several operations (see queue/lanes.ts). */
export interface NewLane {
  id: string;
  /** The lane's data is `before`, the added members' data joined by commas, then `after`. */
  before: string;
  after: string;
  members: readonly LaneMember[];
  delayMs?: number;
}

/** One operation in a lane: its data (JSON), its key's mark and its place, as a job's. */
export interface LaneMember {
  /** Its job id: `<lane id>-<index from 0>` (add-jobs.lua makes it so again). */
  id: string;
  json: string;
  dedupKey?: string;
  place?: string;
  placeBucket?: string;
}

/** The batch a chunk is counted in, with its keys (in the queue's slot). */
export interface ChunkBatch {
  id: string;
  key: string;
  resultsKey: string;
  indexKey: string;
  retentionSeconds: number;
  /**
   * The batch's index of places (keys.batchPlaces): a job (a lane's member) with a place is added
   * only when its place is not in the index, and is put there with it, so the same line enqueued
   * again, however it is packed, is not added twice (add-jobs.lua).
   */
  placesKey?: string;
}

export interface AddJobsOptions {
  batch?: ChunkBatch;
  /** How long a job's idempotency key stays held once it is added. */
  dedupWindowMs?: number;
  /** The jobs' timestamp (ms), when not now: a lane's operation leaving it keeps the lane's (see worker/lane-runner.ts). */
  timestamp?: number;
  /**
   * A chunk of a resumable input claims this mark with its jobs (see add-jobs.lua): `places` gives,
   * per member in the order of `jobs`, its index in the chunk. While the mark is held (the dedup
   * window) the chunk adds nothing: each member is `{ already }`, the id the chunk gave it.
   */
  chunkMark?: { key: string; places: readonly number[] };
  /**
   * The batch is new: its id was made for the enqueue writing it (newBatchId), so none of its
   * lines was written before as a job of its own, and a lane member's single-job key is neither
   * sent nor looked at (see add-jobs.lua). A batch id that was given is never new.
   */
  newBatch?: boolean;
  /**
   * The shard's count key (`QueueKeys.shards`) and the shard count the keyed jobs were routed with:
   * the call is refused (StaleShardCountError) when the shard's fence says otherwise (see
   * queue/shards.ts). Without it (a job re-added to the shard it was in) nothing is checked.
   */
  fence?: { key: string; routedWith: number };
}

/** Who holds an idempotency key: the job, and the batch and place it was added with (empty when unknown). */
export interface KeyHolder {
  jobId: string;
  batchId: string;
  place: string;
}

/**
 * Enqueued by an earlier run of the same chunk (see AddJobsOptions.chunkMark), with this id; for
 * one that run did not add, the key's holder it was answered with (marks written before it was
 * kept have none).
 */
export interface AddedBefore {
  already: string;
  holder?: KeyHolder;
}

/**
 * Per job (per member of a lane): added; there already (false: its id exists, or its place has a
 * result); its key's holder; or, for a chunk whose mark is held, the id an earlier run gave it.
 */
export type AddedJob = boolean | KeyHolder | AddedBefore;

export type AddJobs = (jobs: readonly (NewJob | NewLane)[], options?: AddJobsOptions) => Promise<AddedJob[]>;

/** The job name of a lane; every other sluice job is an `op`. */
export const LANE_JOB_NAME = 'lane';

/**
 * Adds chunks of prioritized (or delayed) jobs, one script call each (redis/lua/add-jobs.lua), written exactly as
 * BullMQ's own add writes a job: BullMQ's addBulk runs a script per job, and Redis time bounds an
 * enqueue. Single jobs are named `name`, lanes `lane`; `priority` is the same for every job (sluice adds
 * jobs at NEW_JOB_PRIORITY). The same call claims the idempotency keys and counts the added
 * operations (a lane's members) in their batch.
 */
export function createJobAdder(redis: RedisClient, queue: Queue, name: string, priority: number): AddJobs {
  const addJobs = defineScript(redis, 'add-jobs');
  const { meta, prioritized, pc, marker, events, active, delayed } = queue.keys as Record<string, string>;
  // Never written: stands in for the keys a call does not use, in the queue's slot.
  const none = queue.toKey('none');
  return async (jobs, options = {}) => {
    if (jobs.length === 0) return [];
    const { batch } = options;
    const now = options.timestamp ?? Date.now();
    // Delays count from the timestamp: a job given an earlier one is still due `delayMs` from now.
    const late = Date.now() - now;
    const keys = [
      meta!,
      prioritized!,
      pc!,
      marker!,
      events!,
      active!,
      batch?.key ?? none,
      batch?.resultsKey ?? none,
      batch?.indexKey ?? none,
      delayed!,
      options.chunkMark?.key ?? none,
      options.fence?.key ?? none,
      batch?.placesKey ?? none,
    ];
    const args: (string | number)[] = [
      now,
      options.chunkMark?.places.map((place) => place + 1).join(' ') ?? '',
      priority,
      batch?.id ?? '',
      new Date(now).toISOString(),
      batch?.retentionSeconds ?? 0,
      options.dedupWindowMs ?? 0,
      now - (batch?.retentionSeconds ?? 0) * 1_000,
      options.fence ? String(options.fence.routedWith) : '',
      batch?.placesKey ? '1' : '',
      options.newBatch ? '1' : '',
    ];
    for (const job of jobs) {
      const given = Math.max(0, Math.round(job.delayMs ?? 0));
      const delay = given > 0 ? given + late : 0;
      const opts = JSON.stringify(delay > 0 ? { jobId: job.id, delay, attempts: 0 } : { jobId: job.id, priority, attempts: 0 });
      keys.push(queue.toKey(job.id));
      if ('members' in job) {
        // Its data whole, with the byte lengths of the text before its members and of each member:
        // Redis hashes every string a script makes, so the data passes as one string, used as it is
        // when every member is added (see add-jobs.lua, laneData).
        const members = job.members.map((member) => member.json);
        const data = `${job.before}${members.join(',')}${job.after}`;
        let lengths = String(Buffer.byteLength(job.before));
        for (const json of members) lengths += ` ${Buffer.byteLength(json)}`;
        args.push(job.id, LANE_JOB_NAME, opts, delay, '1', data, lengths, job.members.length);
        for (const [i, member] of job.members.entries()) {
          // add-jobs.lua makes each member's id from its lane's: one made otherwise would be answered under another.
          if (member.id !== `${job.id}-${i}`) throw new Error(`lane ${job.id}: member ${i} has the id ${member.id}, not ${job.id}-${i}`);
          pushMember(keys, args, member);
          // The job it would be alone (a line of a resumable input without a key, written so while lanes were off).
          // (add-jobs.lua expects it by the rule that makes the member's operation id `p-<place>`.)
          if (member.dedupKey === undefined && member.place && !options.newBatch) keys.push(queue.toKey(jobIdForPlace(member.place)));
        }
      } else {
        args.push(job.id, name, opts, delay, '0', job.json ?? JSON.stringify(job.data), '', 1);
        pushMember(keys, args, job);
      }
    }
    const replies = (await addJobs(keys.length, ...keys, ...args)) as (number | string)[];
    const [first] = replies;
    if (options.fence && replies.length === 1 && typeof first === 'string' && first.startsWith('!')) {
      throw new StaleShardCountError(Number(first.slice(1)), options.fence.routedWith);
    }
    const { chunkMark } = options;
    const held =
      chunkMark && replies.length === 1 && typeof replies[0] === 'string' && replies[0].startsWith('=')
        ? replies[0].slice(1).split(' ')
        : undefined;
    if (chunkMark && held) return chunkMark.places.map((place) => chunkMarkEntry(held[place] ?? ''));
    return replies.map((reply) => (typeof reply === 'number' ? reply === 1 : keyHolder(reply)));
  };
}

/**
 * A member's arguments (see add-jobs.lua): its place, whether it is keyed and the part of the index
 * of places; its key's mark among the keys when it has one. Its ids follow from its lane's (a lane
 * member's job id is `<lane id>-<index>`, see lanes.ts newLane; its operation id is its place's job
 * id for a line of a resumable input without a key), so they are not sent: a million-line enqueue
 * writes about a quarter fewer bytes to Redis.
 */
function pushMember(keys: string[], args: (string | number)[], member: Pick<LaneMember, 'dedupKey' | 'place' | 'placeBucket'>): void {
  if (member.dedupKey !== undefined) keys.push(member.dedupKey);
  args.push(member.place ?? '', member.dedupKey === undefined ? '0' : '1', member.placeBucket ?? '');
}

/** An entry of a chunk's mark: the id the chunk gave a line, or for a duplicate its key's holder (`<id>,<batch id>`). */
export function chunkMarkEntry(entry: string): AddedBefore {
  if (!entry.includes(',')) return { already: entry };
  const holder = keyHolder(entry, ',');
  return { already: holder.jobId, holder };
}

/** A mark's value: `<job id> <batch id> <place>`, or the job id alone (older marks, a job that outlived its mark). */
function keyHolder(mark: string, separator = ' '): KeyHolder {
  const [jobId = '', batchId = '', place = ''] = mark.split(separator);
  return { jobId, batchId, place };
}
