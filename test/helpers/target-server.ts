/**
 * A scripted `node:http` target for integration tests: it answers each route from a script
 * (status sequences, delays, headers, dropped connections) and records every request.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { onTestFinished } from 'vitest';

export interface RecordedRequest {
  method: string;
  /** The path with its query string, as sent. */
  path: string;
  /** Lower-cased names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  body: string;
  /** ms since the epoch (performance.timeOrigin + performance.now()), when the request arrived. */
  startedAt: number;
  /** When the answer finished (or the socket was destroyed); unset while in flight. */
  endedAt?: number;
}

export interface ScriptedResponse {
  status: number;
  /** An array is sent as that many header lines of the same name. */
  headers?: Record<string, string | string[]>;
  /** Sent as JSON with `content-type: application/json` (unless `headers` sets one). */
  json?: unknown;
  /** Sent as is (`content-type: text/plain` unless `headers` sets one). */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  destroy?: boolean;
}

export type DefaultHandler = (request: RecordedRequest) => ScriptedResponse;

export interface TargetServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request, in arrival order (pushed once its body has been read). */
  requests: RecordedRequest[];
  /**
   * `script('POST /orders', [...])`: each request to that method and path (query ignored) takes
   * the next response; once the list is exhausted the last one repeats. Replaces any earlier script.
   */
  script(routeKey: string, responses: ScriptedResponse[]): void;
  /** Answers unscripted routes; by default 200 `{"ok":true}`. */
  setDefault(handler: DefaultHandler): void;
  /** Requests received and not yet answered. */
  inFlight(): number;
  /** The highest `inFlight()` seen so far. */
  readonly maxInFlight: number;
  close(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();
const defaultHandler: DefaultHandler = () => ({ status: 200, json: { ok: true } });

export async function startTargetServer(): Promise<TargetServer> {
  const requests: RecordedRequest[] = [];
  const scripts = new Map<string, { responses: ScriptedResponse[]; next: number }>();
  const timers = new Set<NodeJS.Timeout>();
  let handler = defaultHandler;
  let inFlight = 0;
  let maxInFlight = 0;
  let closing: Promise<void> | undefined;

  const pick = (recorded: RecordedRequest): ScriptedResponse => {
    const routeKey = `${recorded.method} ${recorded.path.split('?')[0] ?? ''}`;
    const script = scripts.get(routeKey);
    if (!script) return handler(recorded);
    const response = script.responses[Math.min(script.next, script.responses.length - 1)];
    script.next++;
    // The list is never empty (checked in script()).
    return response as ScriptedResponse;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const startedAt = now();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let ended = false;
    // eslint-disable-next-line prefer-const -- assigned once the body is read; end() may run before that
    let recorded: RecordedRequest | undefined;
    const end = (): void => {
      if (ended) return;
      ended = true;
      inFlight--;
      if (recorded) recorded.endedAt = now();
    };
    res.once('close', end);

    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    recorded = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: flattenHeaders(req.headers),
      body: Buffer.concat(chunks).toString('utf8'),
      startedAt,
    };
    requests.push(recorded);

    let response: ScriptedResponse;
    try {
      response = pick(recorded);
    } catch (error) {
      response = { status: 500, json: { error: error instanceof Error ? error.message : String(error) } };
    }
    if (response.delayMs && response.delayMs > 0) {
      const waited = await wait(response.delayMs, res, timers);
      if (!waited) return;
    }
    if (response.destroy) {
      req.socket.destroy();
      end();
      return;
    }
    send(res, response);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) send(res, { status: 500, json: { error: String(error) } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(routeKey, responses) {
      if (responses.length === 0) throw new Error(`script(${JSON.stringify(routeKey)}): expected at least one response`);
      const [method = '', path = ''] = routeKey.trim().split(/\s+/);
      scripts.set(`${method.toUpperCase()} ${path}`, { responses: [...responses], next: 0 });
    },
    setDefault(next) {
      handler = next;
    },
    inFlight: () => inFlight,
    get maxInFlight() {
      return maxInFlight;
    },
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
 * A target server for the running test, closed when the test finishes, however it ends. Call it
 * inside a test (a file-wide server: startTargetServer() in beforeAll, close() in afterAll). It
 * closes after whatever the test starts later, e.g. its workers: vitest runs onTestFinished
 * callbacks last-registered first. close() may also be called earlier (it is idempotent).
 */
export async function startTestTarget(): Promise<TargetServer> {
  const target = await startTargetServer();
  onTestFinished(() => target.close());
  return target;
}

/** Resolves true after `ms`, or false at once if the client went away first; timers are cancellable by close(). */
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

function send(res: ServerResponse, response: ScriptedResponse): void {
  const headers: Record<string, string | string[]> = {};
  let body = '';
  if (response.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(response.json);
  } else if (response.body !== undefined) {
    headers['content-type'] = 'text/plain; charset=utf-8';
    body = response.body;
  }
  for (const [name, value] of Object.entries(response.headers ?? {})) headers[name.toLowerCase()] = value;
  res.writeHead(response.status, headers);
  res.end(body);
}

function flattenHeaders(raw: IncomingMessage['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}
