/**
 * The HTTP API built on a test's pipeline and listening on a free loopback port, with one token per
 * role; closed when the test ends. Requests go over a real socket (`fetch`).
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { onTestFinished } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import type { RedisClient } from '../../src/redis/connection.js';
import { parseApiTokens } from '../../src/server/api-tokens.js';
import { buildServer, type ServerOptions } from '../../src/server/build-server.js';
import type { SluiceConfig } from '../../src/config/sluice-config.js';

export const TOKENS = {
  admin: 'admin-token-0123456789abcdef',
  enqueue: 'enqueue-token-0123456789abcdef',
  read: 'read-token-0123456789abcdef',
} as const;

export interface ApiServer {
  app: FastifyInstance;
  url: string;
  /** Everything the server logged (JSON lines). */
  log(): string;
  /** `fetch(url + path)` with the role's token (or none). JSON bodies are sent as JSON. */
  call(
    path: string,
    init?: {
      method?: string;
      role?: keyof typeof TOKENS | null;
      json?: unknown;
      body?: string | Uint8Array;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
  /** Signs the dashboard in with the role's token; returns the session cookie as `name=value` for a Cookie header. */
  signIn(role: keyof typeof TOKENS): Promise<string>;
}

export async function startApiServer(
  options: { redis: RedisClient; config: SluiceConfig; queue: string } & Partial<ServerOptions>,
): Promise<ApiServer> {
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
  const logger = createLogger({ level: 'debug', destination: sink });
  const app = await buildServer({
    tokens: parseApiTokens(
      Object.entries(TOKENS)
        .map(([role, token]) => `${token}:${role}`)
        .join(','),
    ),
    logger,
    ...options,
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(() => app.close());
  const api: ApiServer = {
    app,
    url,
    log: () => lines.join(''),
    async signIn(role) {
      const response = await api.call('/login', { method: 'POST', role: null, json: { token: TOKENS[role] } });
      if (response.status !== 200) throw new Error(`signing in as ${role}: HTTP ${response.status} ${await response.text()}`);
      const cookie = response.headers.getSetCookie().find((line) => line.startsWith('sluice_session='));
      if (!cookie) throw new Error(`signing in as ${role}: no session cookie`);
      return cookie.split(';')[0]!;
    },
    call(path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      const role = init.role === undefined ? 'admin' : init.role;
      if (role) headers['authorization'] = `Bearer ${TOKENS[role]}`;
      let body: string | Uint8Array | undefined = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(`${url}${path}`, { method: init.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
    },
  };
  return api;
}
