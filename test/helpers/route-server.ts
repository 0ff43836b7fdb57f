/**
 * A loopback `node:http` server for HTTP client tests, one per test file: each path (query
 * ignored) has a handler that writes its answer by hand (statuses, headers, bodies in pieces, hangs,
 * dropped sockets), unknown paths get a 404, and every request is recorded once its body is read.
 * Use the scripted target server (target-server.ts) where a scripted answer is enough.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';

export interface ReceivedRequest {
  method: string;
  /** The path with its query string, as sent. */
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The client's port: the same port means the same connection. */
  remotePort: number | undefined;
}

export type RouteHandler = (request: IncomingMessage, response: ServerResponse, body: string) => void;

export interface RouteServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request, in arrival order. */
  received: ReceivedRequest[];
}

/**
 * For a test file: `const server = useRouteServer({ '/ok': (request, response) => ... })`. The
 * server starts in beforeAll and closes in afterAll (its open connections too, so a handler may
 * leave a request hanging); use the getter inside tests.
 */
export function useRouteServer(routes: Record<string, RouteHandler>): () => RouteServer {
  let server: Server | undefined;
  let state: RouteServer | undefined;
  beforeAll(async () => {
    const received: ReceivedRequest[] = [];
    server = createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on('data', (chunk: Buffer) => parts.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        const path = request.url ?? '/';
        received.push({ method: request.method ?? '', path, headers: request.headers, body, remotePort: request.socket.remotePort });
        const handler = routes[new URL(path, 'http://x').pathname];
        if (handler) handler(request, response, body);
        else response.writeHead(404).end();
      });
    });
    const listening = server;
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    state = { url: `http://127.0.0.1:${(listening.address() as AddressInfo).port}`, received };
  });
  afterAll(async () => {
    if (!server) return;
    const closing = server;
    closing.closeAllConnections();
    await new Promise<void>((resolve, reject) => closing.close((error) => (error ? reject(error) : resolve())));
  });
  return () => {
    if (!state) throw new Error('useRouteServer(): the server is not started yet (use it inside a test or hook)');
    return state;
  };
}
