import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../api-errors.js';
import type { Authenticator } from '../authenticate.js';
import type { QueueDirectory } from '../queue-directory.js';
import type { Queue } from 'bullmq';
import type { QueueRegistry, ShardQueue } from '../queue-registry.js';
import { SHARD_NAME, shardOf } from '../../redis/keys.js';
import { redactJobData, redactText } from '../../observability/redact.js';
import { BOARD_PATH, READ_ONLY_BOARD_PATH, guardBoard, type Board } from './board-guard.js';

export { BOARD_PATH, READ_ONLY_BOARD_PATH } from './board-guard.js';

/**
 * bull-board's page links a web font on Google's servers. It is not needed (the UI falls back to
 * system fonts): the link is dropped from the page, and the policy lets the browser fetch nothing
 * but our own assets anyway.
 */
const WEB_FONT_LINK = /<link\b[^>]*\bhref="https:\/\/fonts\.googleapis\.com\/[^>]*>\s*/g;
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

export interface BullBoardOptions {
  auth: Authenticator;
  /** Its BullMQ `Queue` objects are the boards' (no connection of their own). */
  queues: QueueRegistry;
  directory: QueueDirectory;
}

/**
 * Mounts bull-board twice over the same queues (each shard of a spread queue as a queue of its own,
 * see boardLabel): at /dashboard for admins, and at /dashboard/read-only with bull-board's read-only mode for everyone else. The read-only mode hides
 * the actions; what enforces it is the hook here (guardBoard, in board-guard.ts), which refuses
 * every request but GET and HEAD to the read-only board, and every request from a non-admin to the
 * admin one, whatever bull-board's routes are. Job data and return values are shown through
 * `redactJobData`.
 */
export async function registerBullBoard(app: FastifyInstance, options: BullBoardOptions): Promise<void> {
  const { auth, queues, directory } = options;
  /** Per shard on the boards (`q`, `q#1`, …): its BullMQ Queue (the registry's), its name shown, and an adapter for each board. */
  const shown = new Map<string, { queue: Queue; displayName: string } & Record<Board, BullMQAdapter>>();

  const boards = { admin: newBoard('admin'), 'read-only': newBoard('read-only') };

  /**
   * Before each board request: the boards show every shard of the directory's queues (new ones
   * join, vanished ones leave), each over the registry's current Queue object (it may have replaced
   * one it evicted). Costs one HMGET per queue (its shard count) every 5 s at most, and nothing more
   * while the directory's listing is fresh and the registry knows the queues.
   */
  async function syncQueues(request: FastifyRequest): Promise<void> {
    let current: BoardShard[];
    try {
      current = await boardShards();
    } catch (error) {
      request.log.warn({ err: error }, 'dashboard: could not list the queues; showing the ones known');
      return;
    }
    let changed = current.length !== shown.size;
    for (const shard of current) {
      const { displayName } = boardLabel(shard);
      const known = shown.get(shard.name);
      if (known?.queue === shard.queue && known.displayName === displayName) continue;
      shown.set(shard.name, { queue: shard.queue, displayName, admin: boardAdapter(shard, false), 'read-only': boardAdapter(shard, true) });
      changed = true;
    }
    const names = new Set(current.map((shard) => shard.name));
    for (const name of shown.keys()) if (!names.has(name)) shown.delete(name);
    if (!changed) return;
    for (const board of ['admin', 'read-only'] as const)
      boards[board].bullBoard.replaceQueues(current.map((shard) => shown.get(shard.name)![board]));
  }

  /** Every shard of every queue the directory lists, in its order, shard by shard. */
  async function boardShards(): Promise<BoardShard[]> {
    const names = await directory.names();
    // A queue deleted since it was listed is left out (existing() never creates one).
    const found = await Promise.all(
      names.map(async (name) => {
        const resources = await queues.existing(name).catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)));
        if (!resources) return [];
        const { shards } = await resources.shards({ cached: true });
        return shards.map((shard) => ({ ...shard, queueName: resources.name, of: shards.length }));
      }),
    );
    return found.flat();
  }

  /** Looks a job's state up by its board queue name, `{queue}` or `{queue#i}` (BullMQ's name of a sluice queue's shard). */
  async function jobState(boardQueueName: string, jobId: string): Promise<string> {
    const name = /^\{(.+)\}$/.exec(boardQueueName)?.[1];
    if (name === undefined || !SHARD_NAME.test(name)) return 'unknown';
    const { queue, index } = shardOf(name);
    const resources = await queues.existing(queue).catch(() => undefined);
    const shard = resources && (await resources.shards({ cached: true })).shards[index];
    return shard ? shard.queue.getJobState(jobId) : 'unknown';
  }

  for (const board of ['admin', 'read-only'] as const) {
    const prefix = board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH;
    await app.register(async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        const refused = await guardBoard({ auth, jobState }, request, reply, board);
        if (refused) return refused;
        if (!request.url.startsWith(`${prefix}/static/`)) await syncQueues(request);
        return undefined;
      });
      scope.addHook('onSend', async (_request, reply, payload) => {
        if (!String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
        void reply
          .header('content-security-policy', BOARD_CSP)
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', 'no-store')
          .header('x-content-type-options', 'nosniff');
        return typeof payload === 'string' ? payload.replace(WEB_FONT_LINK, '') : payload;
      });
      await scope.register(boards[board].server.registerPlugin(), { prefix });
    });
  }
}

/** A board with no queue yet. */
function newBoard(board: Board): { server: FastifyAdapter; bullBoard: ReturnType<typeof createBullBoard> } {
  const server = new FastifyAdapter();
  server.setBasePath(board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH);
  // Queues join on the first request (see syncQueues): building the app asks Redis nothing.
  const bullBoard = createBullBoard({
    queues: [],
    serverAdapter: server,
    options: {
      uiConfig: {
        boardTitle: board === 'admin' ? 'sluice queues' : 'sluice queues (read-only)',
        hideDocsLink: true,
        miscLinks: [
          { text: 'sluice dashboard', url: '/' },
          { text: 'OpenAPI', url: '/openapi.json' },
        ],
      },
    },
  });
  return { server, bullBoard };
}

type BoardJob = NonNullable<Awaited<ReturnType<BullMQAdapter['getJob']>>>;

/**
 * BullMQ's adapter, with what it shows of a failure redacted: bull-board's formatters reach only
 * data and return values, so failure reasons and stack traces are withheld in the job's own
 * `toJSON` (which bull-board reads), and log lines as they are read.
 */
class RedactingAdapter extends BullMQAdapter {
  override async getJob(id: string): Promise<BoardJob | undefined> {
    const job = await super.getJob(id);
    return job ? redactFailure(job) : job;
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<BoardJob[]> {
    return (await super.getJobs(...args)).map(redactFailure);
  }

  override async getJobLogs(id: string): Promise<string[]> {
    return (await super.getJobLogs(id)).map(redactText);
  }
}

function redactFailure(job: BoardJob): BoardJob {
  const toJSON = job.toJSON.bind(job);
  job.toJSON = () => {
    const json = toJSON();
    return {
      ...json,
      failedReason: typeof json.failedReason === 'string' ? redactText(json.failedReason) : json.failedReason,
      stacktrace: Array.isArray(json.stacktrace)
        ? json.stacktrace.map((line) => (typeof line === 'string' ? redactText(line) : line))
        : json.stacktrace,
    };
  };
  return job;
}

/** A shard of a sluice queue, as the boards show it (each shard is a BullMQ queue of its own). */
interface BoardShard extends ShardQueue {
  /** The sluice queue it is a shard of. */
  queueName: string;
  /** How many shards the queue has (its highest count: the shards readers and workers cover). */
  of: number;
}

/**
 * What a board calls a shard: a queue never spread by its name, as before; a spread queue's shards
 * by the queue and the shard (bull-board's menu lists them by BullMQ name, `{q}`, `{q#1}`, which
 * says the same). Not grouped with bull-board's `delimiter`: its menu makes a group of a queue with
 * children, and shard 0 (the queue's own name) would have no entry of its own.
 */
function boardLabel(shard: BoardShard): { displayName: string; description: string } {
  if (shard.of <= 1) return { displayName: shard.queueName, description: `sluice queue ${shard.queueName}` };
  return {
    displayName: `${shard.queueName} · shard ${shard.index}`,
    description: `sluice queue ${shard.queueName}, shard ${shard.index} of ${shard.of} (BullMQ queue {${shard.name}})`,
  };
}

/** A shard on one board: its job data and return values shown through `redactJobData`, failures through `redactText`. */
function boardAdapter(shard: BoardShard, readOnlyMode: boolean): BullMQAdapter {
  const made = new RedactingAdapter(shard.queue, {
    readOnlyMode,
    // A failed job is a dead letter: replay it from sluice's page, which keeps batches and the
    // dead-letter queue in step (a BullMQ retry would run it again unrecorded).
    allowRetries: false,
    ...boardLabel(shard),
  });
  made.setFormatter('data', (data: unknown) => redactJobData(data));
  made.setFormatter('returnValue', (value: unknown) => redactJobData(value));
  return made;
}

function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.statusCode === 404;
}
