import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RedisClient } from '../redis/client.js';
import type { z } from 'zod';
import { EMPTY_CONFIG, type SluiceConfig } from '../config/sluice-config.js';
import { issuesFromZod } from '../config/issues.js';
import type { Logger } from '../observability/logger.js';
import { createLimitsAdmin } from '../limits/limits-admin.js';
import { ApiError, handleError, invalid } from './api-errors.js';
import { invalidUtf8At } from '../support/utf8.js';
import { answerUnroutedRequests } from './allowed-methods.js';
import type { ApiTokens, Role } from './api-tokens.js';
import { createAuthenticator } from './authenticate.js';
import { createAuthFailures } from './auth-failures.js';
import { createSessionStore } from './sessions.js';
import { openApiDocument } from './openapi.js';
import { createQueueRegistry } from './queue-registry.js';
import type { ReplicaAck } from '../queue/producer.js';
import type { AnyRoute } from './route.js';
import { NDJSON, isNdjson, operationRoutes } from './routes/operations.js';
import { batchRoutes } from './routes/batches.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { limitRoutes } from './routes/limits.js';
import { scheduleRoutes } from './routes/schedules.js';
import { healthRoutes } from './routes/health.js';
import { overviewRoutes } from './routes/overview.js';
import { queueRoutes } from './routes/queues.js';
import { sessionRoutes } from './routes/session.js';
import { createOverviewReader } from './overview.js';
import { createQueueDirectory } from './queue-directory.js';
import { bodyDeadline, resolveTimeouts, serverTimeoutOptions, type ServerTimeouts } from './timeouts.js';
import { registerBullBoard } from './dashboard/bull-board.js';
import { registerDashboardPage } from './dashboard/page.js';
import { bodyDecoder } from './body-encoding.js';
import { redactRequestTarget } from '../observability/redact.js';

export interface ServerOptions extends Partial<ServerTimeouts> {
  /** Borrowed: the server never closes it. */
  redis: RedisClient;
  tokens: ApiTokens;
  logger: Logger;
  config?: SluiceConfig;
  /** Queue used when a request names none. Default `default`. */
  queue?: string;
  /** Largest request body (JSON or NDJSON), in bytes. Default 32 MiB. */
  bodyLimitBytes?: number;
  dedupWindowSeconds?: number;
  /** Bulk requests write lanes (see ProducerOptions.lanes), of at most `laneSize` operations. */
  lanes?: boolean;
  laneSize?: number;
  /** An enqueue is answered once this many replicas have it (see ProducerOptions.replicas). */
  replicas?: ReplicaAck;
  batchRetentionSeconds?: number;
  /** Prometheus text for `/metrics` (read role). Omitted: no `/metrics` route. */
  metrics?: { contentType: string; render(): Promise<string> };
  version?: string;
  /** How long the dashboards reuse their list of the queues in Redis (a SCAN walk). Default 30,000 ms. */
  queueDiscoveryMs?: number;
  /** How long one reading of `/v1/overview` answers every request (each open dashboard polls every 2 s). Default 1,000 ms. */
  overviewReuseMs?: number;
  /** A dashboard session unused for this long ends. Default 1,800 s. */
  sessionIdleSeconds?: number;
  /** A dashboard session ends this long after sign-in, however busy. Default 43,200 s (12 h). */
  sessionMaxSeconds?: number;
  /** Failed sign-ins and bearer tokens a client address may have per window before all its credentials get 429. Default 10. */
  authFailureLimit?: number;
  /** That window, from its first failure. Default 60 s. */
  authFailureWindowSeconds?: number;
  /**
   * Which proxies' `X-Forwarded-For` names the client (for the failure limit): fastify's `trustProxy`,
   * e.g. `'127.0.0.1'`, `'10.0.0.0/8'`, or a hop count. Default none: the socket's address.
   */
  trustProxy?: boolean | string | string[] | number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's role, once authenticated (undefined on public routes). */
    role: Role | undefined;
  }
}

const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

// Limit keys and ids may be 256 characters long (hostnames, too).
const ROUTER_OPTIONS = { ignoreTrailingSlash: true, maxParamLength: 300 };

/**
 * The HTTP API: enqueue, follow batches, triage dead letters, steer limits, health and metrics.
 * Builds the app; never listens (the caller does), and closing the app closes what it made.
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const config = options.config ?? EMPTY_CONFIG;
  const defaultQueue = options.queue ?? 'default';
  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const timeouts = resolveTimeouts(options);
  const app = Fastify({
    ...serverTimeoutOptions(timeouts),
    ...(options.trustProxy !== undefined ? { trustProxy: trustProxyOption(options.trustProxy) } : {}),
    loggerInstance: options.logger.child({ component: 'server' }) as FastifyBaseLogger,
    bodyLimit: bodyLimitBytes,
    // Requests are logged once, when answered (see onResponse), at debug for successful reads.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: ROUTER_OPTIONS,
    // Errors fastify raises before a route runs (a malformed URL) get our problem details too.
    frameworkErrors: (error, request, reply) => {
      void handleError(error, request, reply);
    },
    // While closing, requests on open connections get our 503 (see the onRequest hook).
    return503OnClosing: false,
  });
  const queues = createQueueRegistry({
    redis: options.redis,
    config,
    defaultQueue,
    ...(options.dedupWindowSeconds !== undefined ? { dedupWindowSeconds: options.dedupWindowSeconds } : {}),
    ...(options.lanes !== undefined ? { lanes: options.lanes } : {}),
    ...(options.laneSize !== undefined ? { laneSize: options.laneSize } : {}),
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.batchRetentionSeconds !== undefined ? { batchRetentionSeconds: options.batchRetentionSeconds } : {}),
  });
  app.addHook('onClose', () => queues.close());

  app.decorateRequest('role', undefined);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down; try again (another replica, or in a moment)');
  });
  // NDJSON is read by its route as a stream; plain text is not an accepted body.
  app.addContentTypeParser(NDJSON, (_request, payload, done) => done(null, payload));
  acceptEmptyJson(app);
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((error, request, reply) => handleError(error, request, reply));
  answerUnroutedRequests(app, ROUTER_OPTIONS);
  app.addHook('onResponse', async (request, reply) => {
    // A client may put a token in the query string (`?access_token=`): the log keeps it out.
    const url = redactRequestTarget(request.url);
    const entry = { method: request.method, url, status: reply.statusCode, durationMs: Math.round(reply.elapsedTime) };
    if (reply.statusCode >= 400 || request.method !== 'GET') request.log.info(entry, 'request');
    else request.log.debug(entry, 'request');
  });

  const sessions = createSessionStore({
    redis: options.redis,
    tokens: options.tokens,
    ...(options.sessionIdleSeconds !== undefined ? { idleSeconds: options.sessionIdleSeconds } : {}),
    ...(options.sessionMaxSeconds !== undefined ? { maxSeconds: options.sessionMaxSeconds } : {}),
  });
  const failures = createAuthFailures({
    redis: options.redis,
    ...(options.authFailureLimit !== undefined ? { limit: options.authFailureLimit } : {}),
    ...(options.authFailureWindowSeconds !== undefined ? { windowSeconds: options.authFailureWindowSeconds } : {}),
  });
  const auth = createAuthenticator({ tokens: options.tokens, sessions, failures });
  const limits = createLimitsAdmin({ redis: options.redis, config });
  const directory = createQueueDirectory({
    redis: options.redis,
    defaultQueue,
    ...(options.queueDiscoveryMs !== undefined ? { refreshMs: options.queueDiscoveryMs } : {}),
  });
  const routes: AnyRoute[] = [
    ...healthRoutes({ redis: options.redis, ...(options.metrics ? { metrics: options.metrics } : {}) }),
    ...operationRoutes({ queues, redis: options.redis, config, bodyLimitBytes }),
    ...batchRoutes({ queues }),
    ...deadLetterRoutes({ queues }),
    ...limitRoutes({ redis: options.redis, limits, defaultQueue }),
    ...queueRoutes({ queues, redis: options.redis, defaultQueue }),
    ...scheduleRoutes({ redis: options.redis, config, defaultQueue }),
    ...overviewRoutes({
      overview: createOverviewReader({
        queues,
        directory,
        limits,
        defaultQueue,
        ...(options.overviewReuseMs !== undefined ? { reuseMs: options.overviewReuseMs } : {}),
      }),
    }),
    ...sessionRoutes({ tokens: options.tokens, sessions, failures, signInTimeoutMs: timeouts.signInTimeoutMs }),
  ];
  let document: Record<string, unknown> | undefined;
  app.get('/openapi.json', async () => (document ??= openApiDocument(routes, { title: 'sluice', version: options.version ?? '0.0.0' })));

  for (const spec of routes) {
    const bodyTimeoutMs = spec.bodyTimeoutMs;
    // The deadline watches the bytes as sent; the decoder then decodes a Content-Encoding (or refuses it).
    const preParsing = [
      ...(bodyTimeoutMs !== undefined && (timeouts.requestTimeoutMs === 0 || bodyTimeoutMs < timeouts.requestTimeoutMs)
        ? [bodyDeadline(bodyTimeoutMs)]
        : []),
      bodyDecoder(spec.bodyEncodings ?? [], spec.bodyLimitBytes ?? bodyLimitBytes),
    ];
    app.route({
      method: spec.method,
      url: spec.url,
      ...(spec.bodyLimitBytes !== undefined ? { bodyLimit: spec.bodyLimitBytes } : {}),
      preParsing,
      // Before the body is read: a request without a valid token never gets its body read.
      onRequest: async (request) => {
        if (spec.role !== null) request.role = await auth.authenticate(request, spec.role);
        await spec.beforeBody?.(request);
      },
      handler: async (request, reply) => {
        // NDJSON is parsed as a stream for every route; only the routes that read it accept it.
        if (isNdjson(request) && !spec.bodyDoc?.content[NDJSON]) {
          throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `${spec.method} ${spec.url} takes application/json`);
        }
        const input = {
          params: check(spec.params, request.params, 'path'),
          query: check(spec.query, request.query ?? {}, 'query'),
          body: spec.body ? check(spec.body, request.body ?? null, 'body') : request.body,
        };
        return spec.handler(request, reply, input);
      },
    });
  }
  // The dashboards: sluice's page at / (data from /v1/overview) and bull-board at /dashboard.
  registerDashboardPage(app);
  await registerBullBoard(app, { auth, queues, directory });
  return app;
}

/** A hop count becomes fastify's function form (its types take only that, though it accepts a number). */
function trustProxyOption(given: boolean | string | string[] | number) {
  return typeof given === 'number' ? (_address: string, hop: number) => hop < given : given;
}

/** Checks one part of a request; a mismatch is a 400 naming each field (`query.status`, `body.ids[2]`). */
function check<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'path' | 'query' | 'body'): T {
  if (!schema) return value as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = issuesFromZod(parsed.error.issues).map((issue) => ({
    path: issue.path ? `${where}.${issue.path}` : where,
    message: issue.message,
  }));
  if (where === 'path') {
    // A path part that cannot name anything (`/v1/batches//results`): say which part, and why.
    const params = (value ?? {}) as Record<string, unknown>;
    const parts = issuesFromZod(parsed.error.issues).map(({ path, message }) => {
      const name = String(path ?? '').split('.')[0] ?? '';
      return params[name] === '' ? `the {${name}} part of the path is empty` : `{${name}}: ${message}`;
    });
    throw new ApiError(404, 'NOT_FOUND', `no such resource: ${parts.join('; ')}`);
  }
  throw invalid(`invalid ${where === 'body' ? 'request body' : 'query parameters'}`, issues);
}

/**
 * Many clients send `Content-Type: application/json` on every request, with or without a body: an
 * empty body is no body (a route that needs one says so), not a 400 for a POST that takes none.
 */
function acceptEmptyJson(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
    if (bytes.length === 0) return done(null, undefined);
    // Read as text, bytes that are not UTF-8 would become U+FFFD and be sent on so (NDJSON and the
    // CLI refuse them): refused here, naming the byte.
    const badByte = invalidUtf8At(bytes as Buffer);
    if (badByte !== undefined) {
      return done(new ApiError(400, 'BAD_JSON', `the body is not valid UTF-8 at byte ${badByte}; send JSON in UTF-8`), undefined);
    }
    const body = bytes.toString('utf8');
    return parseJson(request, body, (error, parsed) => {
      // fastify's parser drops what JSON.parse said: where the JSON breaks.
      done(error ? new ApiError(400, 'BAD_JSON', badJsonMessage(body)) : null, parsed);
    });
  });
}

/** What is wrong with a body that is not JSON: JSON.parse's words (where it breaks), and NDJSON sent as JSON named. */
function badJsonMessage(body: string): string {
  // What parses but is refused all the same: a key that would reach an object's prototype.
  let reason = 'it holds a __proto__ or constructor.prototype key';
  try {
    JSON.parse(body);
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
    // Node 20 gives an offset only: its line and column too (Node 22 writes them itself).
    const at = /at position (\d+)$/.exec(reason);
    if (at) {
      const before = body.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      reason += ` (line ${line} column ${before.length - before.lastIndexOf('\n')})`;
    }
  }
  const lines = body.split('\n').filter((line) => line.trim() !== '');
  const ndjson = lines.length > 1 && lines.every((line) => line.trimStart().startsWith('{'));
  return `the body is not valid JSON: ${reason}${ndjson ? '; for one operation per line, send Content-Type: application/x-ndjson (or one JSON array)' : ''}`;
}
