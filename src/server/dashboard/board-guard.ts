import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, forbidden, handleError, unauthorized } from '../api-errors.js';
import { CSRF_HEADER, type Authenticator, type Identity } from '../authenticate.js';

/** The admin board (every action); viewers with a smaller role are sent to the read-only one. */
export const BOARD_PATH = '/dashboard';
/** The same board with every action refused. */
export const READ_ONLY_BOARD_PATH = `${BOARD_PATH}/read-only`;

export type Board = 'admin' | 'read-only';

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** The most jobs one board page may list (bull-board itself sets no bound). */
const MAX_JOBS_PER_PAGE = 100;

export interface BoardGuardDeps {
  auth: Authenticator;
  /** A job's BullMQ state ('unknown' when there is none), by its queue's name on the board (`{queue}`). */
  jobState(boardQueueName: string, jobId: string): Promise<string>;
}

/** Refuses what the viewer may not do (a sent reply), or undefined to go on. */
export async function guardBoard(
  deps: BoardGuardDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  board: Board,
): Promise<FastifyReply | undefined> {
  const prefix = board === 'admin' ? BOARD_PATH : READ_ONLY_BOARD_PATH;
  const path = request.url.split('?')[0]!;
  const isPage = SAFE_METHODS.has(request.method) && !path.startsWith(`${prefix}/api/`) && !path.startsWith(`${prefix}/static/`);
  let identity: Identity | undefined;
  try {
    identity = await deps.auth.identify(request);
  } catch (error) {
    return handleError(error, request, reply);
  }
  const role = identity?.role;
  if (!role) {
    // A browser without a live session (none, or one that ended) goes to the sign-in form, which
    // sends it back here after.
    if (isPage && identity?.via !== 'header') return reply.redirect(`/?next=${encodeURIComponent(request.url)}`);
    const why = !identity
      ? 'sign in at / (or send "Authorization: Bearer <token>")'
      : identity.via === 'header'
        ? 'unknown token'
        : 'the session has ended: sign in again at /';
    return handleError(unauthorized(why), request, reply);
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
  if (identity!.via === 'cookie' && !fromOurOwnPage(request)) {
    return handleError(
      forbidden(`a change signed in by cookie must come from the dashboard itself (or send the ${CSRF_HEADER} header)`),
      request,
      reply,
    );
  }
  const refusal = await refusedAction(request, deps.jobState);
  return refusal ? handleError(refusal, request, reply) : undefined;
}

/** Finished jobs are already counted in their batches: removing them leaves no batch waiting. */
const FINISHED = new Set(['completed', 'failed']);

/**
 * Admin actions that would break sluice's bookkeeping, refused with 409 rather than made up for: a
 * retry runs a dead letter again behind the dead-letter queue's back; empty, obliterate and cleaning
 * unfinished jobs remove jobs that batches count as pending, and those batches would never finish.
 */
async function refusedAction(request: FastifyRequest, jobState: BoardGuardDeps['jobState']): Promise<ApiError | undefined> {
  const route = request.routeOptions.url ?? request.url.split('?')[0]!;
  if (/\/retry(\/|$)/.test(route)) {
    return new ApiError(
      409,
      'REPLAY_DEAD_LETTERS_INSTEAD',
      'failed sluice jobs are dead letters: replay them from the dashboard at /, POST /v1/dead-letters/replay or `sluice dlq replay`, which keep batches and the dead-letter queue in step',
    );
  }
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  const unfinishedJob = async () => {
    const state = await jobState(params['queueName'] ?? '', params['jobId'] ?? '');
    return state !== 'unknown' && !FINISHED.has(state);
  };
  const strands =
    /\/api\/queues\/:queueName\/(?:empty|obliterate)$/.test(route) ||
    (/\/api\/queues\/:queueName\/clean\/:queueStatus$/.test(route) && !FINISHED.has(params['queueStatus'] ?? '')) ||
    (/\/api\/queues\/:queueName\/:jobId\/clean$/.test(route) && (await unfinishedJob()));
  if (!strands) return undefined;
  return new ApiError(
    409,
    'WOULD_STRAND_BATCHES',
    'emptying or obliterating a queue, or cleaning jobs that have not finished, removes jobs their batches are waiting for, and those batches would never finish: pause the queue instead (and resume it later); finished (completed, failed) jobs may be cleaned',
  );
}

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
