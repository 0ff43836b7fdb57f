import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, forbidden, handleError, unauthorized } from '../api-errors.js';
import type { ApiTokens } from '../api-tokens.js';
import { CSRF_HEADER, presentedToken } from '../authenticate.js';
import type { QueueDirectory } from '../queue-directory.js';
import type { QueueRegistry, QueueResources } from '../queue-registry.js';
import { redactJobData } from './redact.js';

/** The admin board (every action); viewers with a smaller role are sent to the read-only one. */
export const BOARD_PATH = '/dashboard';
/** The same board with every action refused. */
export const READ_ONLY_BOARD_PATH = `${BOARD_PATH}/read-only`;

/**
 * bull-board's page links a web font on Google's servers. It is not needed (the UI falls back to
 * system fonts): the link is dropped from the page, and the policy lets the browser fetch nothing
 * but our own assets anyway.
 */
const WEB_FONT_LINK = /<link\b[^>]*\bhref="https:\/\/fonts\.googleapis\.com\/[^>]*>\s*/g;
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const SAFE_METHODS = new Set(['GET', 'HEAD']);

export interface BullBoardOptions {
  tokens: ApiTokens;
  /** Its BullMQ `Queue` objects are the boards' (no connection of their own). */
  queues: QueueRegistry;
  directory: QueueDirectory;
}

type Board = 'admin' | 'read-only';

/**
 * Mounts bull-board twice over the same queues: at /dashboard for admins, and at
 * /dashboard/read-only with bull-board's read-only mode for everyone else. The read-only mode hides
 * the actions; what enforces it is the hook here, which refuses every request but GET and HEAD to
 * the read-only board, and every request from a non-admin to the admin one, whatever bull-board's
 * routes are. Job data and return values are shown through `redactJobData`.
 */
export async function registerBullBoard(app: FastifyInstance, options: BullBoardOptions): Promise<void> {
  const { tokens, queues, directory } = options;
  /** Per queue: its BullMQ Queue (the registry's) and an adapter for each board. */
  const shown = new Map<string, { queue: QueueResources['queue'] } & Record<Board, BullMQAdapter>>();

  function adapter(resources: QueueResources, readOnlyMode: boolean): BullMQAdapter {
    const made = new BullMQAdapter(resources.queue, {
      readOnlyMode,
      // A failed job is a dead letter: replay it from sluice's page, which keeps batches and the
      // dead-letter queue in step (a BullMQ retry would run it again unrecorded).
      allowRetries: false,
      displayName: resources.name,
      description: `sluice queue ${resources.name}`,
    });
    made.setFormatter('data', (data: unknown) => redactJobData(data));
    made.setFormatter('returnValue', (value: unknown) => redactJobData(value));
    return made;
  }

  const boards = {} as Record<Board, ReturnType<typeof createBullBoard>>;
  const servers = {} as Record<Board, FastifyAdapter>;
  for (const board of ['admin', 'read-only'] as const) {
    servers[board] = new FastifyAdapter();
    servers[board].setBasePath(board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH);
    // Queues join on the first request (see syncQueues): building the app asks Redis nothing.
    boards[board] = createBullBoard({
      queues: [],
      serverAdapter: servers[board],
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
  }

  /**
   * Before each board request: the boards show the directory's queues (new ones join, vanished ones
   * leave), each over the registry's current Queue object (it may have replaced one it evicted).
   * Costs no Redis command while the directory's listing is fresh and the registry knows the queues.
   */
  async function syncQueues(request: FastifyRequest): Promise<void> {
    let current: QueueResources[];
    try {
      const names = await directory.names();
      // A queue deleted since it was listed is left out (existing() never creates one).
      const found = await Promise.all(
        names.map((name) => queues.existing(name).catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)))),
      );
      current = found.filter((resources): resources is QueueResources => resources !== undefined);
    } catch (error) {
      request.log.warn({ err: error }, 'dashboard: could not list the queues; showing the ones known');
      return;
    }
    let changed = current.length !== shown.size;
    for (const resources of current) {
      if (shown.get(resources.name)?.queue === resources.queue) continue;
      shown.set(resources.name, { queue: resources.queue, admin: adapter(resources, false), 'read-only': adapter(resources, true) });
      changed = true;
    }
    const names = new Set(current.map((resources) => resources.name));
    for (const name of shown.keys()) if (!names.has(name)) shown.delete(name);
    if (!changed) return;
    for (const board of ['admin', 'read-only'] as const)
      boards[board].replaceQueues(current.map((resources) => shown.get(resources.name)![board]));
  }

  for (const board of ['admin', 'read-only'] as const) {
    const prefix = board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH;
    await app.register(async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        const refused = guard(request, reply, board);
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
      await scope.register(servers[board].registerPlugin(), { prefix });
    });
  }

  /** Refuses what the viewer may not do (a sent reply), or undefined to go on. */
  function guard(request: FastifyRequest, reply: FastifyReply, board: Board): FastifyReply | undefined {
    const prefix = board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH;
    const path = request.url.split('?')[0]!;
    const isPage = SAFE_METHODS.has(request.method) && !path.startsWith(`${prefix}/api/`) && !path.startsWith(`${prefix}/static/`);
    let presented: ReturnType<typeof presentedToken>;
    try {
      presented = presentedToken(request);
    } catch (error) {
      return handleError(error, request, reply);
    }
    const role = presented ? tokens.roleOf(presented.token) : undefined;
    if (!role) {
      // A browser without a valid session (none, or a token since removed) goes to the sign-in
      // form, which sends it back here after.
      if (isPage && presented?.via !== 'header') return reply.redirect(`/?next=${encodeURIComponent(request.url)}`);
      return handleError(
        unauthorized(presented ? 'unknown token' : 'sign in at / (or send "Authorization: Bearer <token>")'),
        request,
        reply,
      );
    }
    request.role = role;
    // bull-board reads as many jobs as a page asks for, and shows Redis's host details: bounded, and admins only.
    const perPage = Number(new URLSearchParams(request.url.split('?')[1] ?? '').get('jobsPerPage') ?? '0');
    if (perPage > MAX_JOBS_PER_PAGE) {
      return handleError(new ApiError(400, 'BAD_REQUEST', `jobsPerPage may be at most ${MAX_JOBS_PER_PAGE}`), request, reply);
    }
    if (role !== 'admin' && path.startsWith(`${prefix}/api/redis/`)) {
      return handleError(forbidden('Redis server details are for admin tokens'), request, reply);
    }
    if (board === 'read-only') {
      if (SAFE_METHODS.has(request.method)) return undefined;
      return handleError(forbidden(`the read-only dashboard changes nothing; ${BOARD_PATH} with an admin token does`), request, reply);
    }
    if (role !== 'admin') {
      if (isPage) return reply.redirect(`${READ_ONLY_BOARD_PATH}${request.url.slice(BOARD_PATH.length)}`);
      return handleError(
        forbidden(`the ${BOARD_PATH} board needs the admin role; the token has ${role} (${READ_ONLY_BOARD_PATH} is open to it)`),
        request,
        reply,
      );
    }
    if (SAFE_METHODS.has(request.method)) return undefined;
    if (presented!.via === 'cookie' && !fromOurOwnPage(request)) {
      return handleError(
        forbidden(`a change signed in by cookie must come from the dashboard itself (or send the ${CSRF_HEADER} header)`),
        request,
        reply,
      );
    }
    if (/\/retry(\/|$)/.test(request.routeOptions.url ?? path)) {
      return handleError(
        new ApiError(
          409,
          'REPLAY_DEAD_LETTERS_INSTEAD',
          'failed sluice jobs are dead letters: replay them from the dashboard at /, POST /v1/dead-letters/replay or `sluice dlq replay`, which keep batches and the dead-letter queue in step',
        ),
        request,
        reply,
      );
    }
    return undefined;
  }
}

/** The most jobs one board page may list (bull-board itself sets no bound). */
const MAX_JOBS_PER_PAGE = 100;

/**
 * CSRF: bull-board's page cannot send our header, so a cookie-signed change must show that the
 * browser sent it from this origin: `Sec-Fetch-Site: same-origin` (set by the browser, not by
 * scripts or proxies), or an `Origin` naming the host the request was sent to.
 */
function fromOurOwnPage(request: FastifyRequest): boolean {
  if (request.headers[CSRF_HEADER] !== undefined) return true;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = request.headers.origin;
  if (!origin) return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.statusCode === 404;
}
