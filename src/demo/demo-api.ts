/**
 * A small, realistic REST API on `node:http` for `sluice demo` and end-to-end tests: CRUD on
 * `/records`, random latency, injected 503/429 answers, and `Idempotency-Key` on POST so that a
 * retried create does not create twice. State lives in memory and dies with `close()`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError, type Issue } from '../errors.js';
import { createDemoRecords, type Answer, type DemoRecord } from './demo-records.js';

export type { DemoRecord } from './demo-records.js';

export interface DemoApiOptions {
  /** Default 0 (a free port). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Added latency per request, drawn uniformly in [min, max] ms. Default { min: 5, max: 40 }. */
  latencyMs?: { min: number; max: number };
  /** Fraction of requests answered 503; `retryAfterShare` of those carry `Retry-After: 1`. Default 0.05. */
  failureRate?: number;
  /**
   * Share of the 503s that carry `Retry-After: 1`. Default 0.5. A Retry-After pauses the whole limit
   * key for every worker, so a realistic API sends it rarely (when it is really overloaded).
   */
  retryAfterShare?: number;
  /** Fraction of requests answered 429 with `Retry-After: 1`. Default 0.02. */
  rateLimitRate?: number;
  /**
   * Source of randomness, default Math.random. Each request draws twice, in this order: the
   * outcome (r < failureRate/2: 503 with Retry-After; r < failureRate: 503; r < failureRate +
   * rateLimitRate: 429; otherwise served), then the latency.
   */
  random?: () => number;
  /**
   * A strict limiter in front of the API, as a real SaaS API has: a request that arrives faster than
   * `requestsPerSecond` (GCRA with `burst`) is answered 429 with `Retry-After`. Default: none.
   */
  strictLimit?: { requestsPerSecond: number; burst?: number };
}

export interface DemoApiStats {
  requests: number;
  created: number;
  /** Count of responses per status code, e.g. { '201': 3, '503': 1 }. */
  status: Record<string, number>;
  idempotentReplays: number;
  /** Requests refused by `strictLimit`. */
  limited: number;
  /** Most requests in flight at once. */
  maxInFlight: number;
}

export interface DemoApi {
  /** e.g. `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  stats(): DemoApiStats;
  /** Arrival time (ms, monotonic) of every request, in order. */
  arrivals(): number[];
  records(): DemoRecord[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startDemoApi(options: DemoApiOptions = {}): Promise<DemoApi> {
  const host = options.host ?? '127.0.0.1';
  const latency = options.latencyMs ?? { min: 5, max: 40 };
  const failureRate = options.failureRate ?? 0.05;
  const rateLimitRate = options.rateLimitRate ?? 0.02;
  const retryAfterShare = options.retryAfterShare ?? 0.5;
  const random = options.random ?? Math.random;
  validate(latency, failureRate, rateLimitRate);

  const stats: DemoApiStats = { requests: 0, created: 0, status: {}, idempotentReplays: 0, limited: 0, maxInFlight: 0 };
  const records = createDemoRecords(stats);
  const arrivals: number[] = [];
  let inFlight = 0;
  const refusal = strictLimit(options.strictLimit);
  const timers = new Set<NodeJS.Timeout>();
  let closing: Promise<void> | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.requests++;
    const arrived = performance.now();
    arrivals.push(arrived);
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const retryAfter = refusal(arrived);
    if (retryAfter !== undefined) {
      stats.limited++;
      send(
        res,
        { status: 429, body: { error: 'rate limit exceeded' }, headers: { 'retry-after': String(retryAfter) } },
        randomUUID(),
        stats,
      );
      return;
    }
    const requestId = headerValue(req, 'x-request-id') ?? randomUUID();
    const raw = await readBody(req);
    const outcome = random();
    const waitMs = latency.min + Math.floor(random() * (latency.max - latency.min + 1));
    if (waitMs > 0 && !(await wait(waitMs, res, timers))) return;

    let answer: Answer;
    if (raw === undefined) answer = { status: 413, body: { error: 'request body too large' } };
    else if (outcome < failureRate) {
      answer = { status: 503, body: { error: 'service unavailable' } };
      if (outcome < failureRate * retryAfterShare) answer.headers = { 'retry-after': '1' };
    } else if (outcome < failureRate + rateLimitRate) {
      answer = { status: 429, body: { error: 'rate limited' }, headers: { 'retry-after': '1' } };
    } else {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      answer = records.route(req.method ?? 'GET', path, headerValue(req, 'idempotency-key'), raw);
    }
    send(res, answer, requestId, stats);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) res.destroy();
      else send(res, { status: 500, body: { error: error instanceof Error ? error.message : 'internal error' } }, randomUUID(), stats);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    stats: () => ({ ...stats, status: { ...stats.status } }),
    arrivals: () => [...arrivals],
    records: () => records.list().map((record) => ({ ...record })),
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * The strict limit as a GCRA: admits a request when the theoretical arrival time is at most
 * `tolerance` ahead of now. Returns the seconds to wait for a refused request, undefined for an admitted one.
 */
function strictLimit(strict: DemoApiOptions['strictLimit']): (now: number) => number | undefined {
  if (!strict) return () => undefined;
  const interval = 1_000 / strict.requestsPerSecond;
  const tolerance = ((strict.burst ?? 1) - 1) * interval;
  let tat = 0;
  return (now) => {
    if (tat - now > tolerance) return Math.max(1, Math.ceil((tat - tolerance - now) / 1_000));
    tat = Math.max(tat, now) + interval;
    return undefined;
  };
}

function validate(latency: { min: number; max: number }, failureRate: number, rateLimitRate: number): void {
  const issues: Issue[] = [];
  const isRate = (value: number): boolean => Number.isFinite(value) && value >= 0 && value <= 1;
  if (!isRate(failureRate)) issues.push({ path: 'failureRate', message: `expected a number from 0 to 1, received ${String(failureRate)}` });
  if (!isRate(rateLimitRate))
    issues.push({ path: 'rateLimitRate', message: `expected a number from 0 to 1, received ${String(rateLimitRate)}` });
  if (isRate(failureRate) && isRate(rateLimitRate) && failureRate + rateLimitRate > 1) {
    issues.push({ path: 'failureRate', message: `failureRate + rateLimitRate must be at most 1, received ${failureRate + rateLimitRate}` });
  }
  const okLatency = Number.isFinite(latency.min) && Number.isFinite(latency.max) && latency.min >= 0 && latency.max >= latency.min;
  if (!okLatency)
    issues.push({ path: 'latencyMs', message: `expected { min, max } with 0 <= min <= max, received ${JSON.stringify(latency)}` });
  if (issues.length > 0) throw new ValidationError('demo API options', issues);
}

/** The body as text, or undefined when it is larger than MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8');
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Resolves true after `ms`, or false at once if the client went away; close() clears the timers. */
function wait(ms: number, res: ServerResponse, timers: Set<NodeJS.Timeout>): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      timers.delete(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.off('close', onClose);
      resolve(true);
    }, ms);
    timers.add(timer);
    res.once('close', onClose);
  });
}

function send(res: ServerResponse, answer: Answer, requestId: string, stats: DemoApiStats): void {
  const key = String(answer.status);
  stats.status[key] = (stats.status[key] ?? 0) + 1;
  const body = answer.status === 204 || answer.body === undefined ? '' : JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'x-request-id': requestId, ...answer.headers });
  res.end(body);
}
