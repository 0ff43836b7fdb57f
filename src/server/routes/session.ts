import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../api-errors.js';
import { errorSchema } from '../api-schemas.js';
import type { ApiTokens } from '../api-tokens.js';
import type { AuthFailures } from '../auth-failures.js';
import { CSRF_HEADER, LEGACY_TOKEN_COOKIE, SESSION_COOKIE, sessionIdOf } from '../authenticate.js';
import type { SessionStore } from '../sessions.js';
import { route, type AnyRoute } from '../route.js';

/** A sign-in body holds one token (at most 1 KiB): nothing larger is read before a token is checked. */
export const SIGN_IN_BODY_LIMIT = 4_096;

/**
 * Whether the browser reached us over https: our own TLS, or a proxy's that says so. The proxy
 * headers are believed because they can only add `Secure`: a forged one makes a browser keep the
 * cookie to https, it never sends the cookie anywhere new.
 */
export function cameOverHttps(request: FastifyRequest): boolean {
  if (request.protocol === 'https') return true;
  const forwardedProto = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwardedProto) ? forwardedProto[0] : forwardedProto)?.split(',')[0]?.trim().toLowerCase();
  if (first === 'https') return true;
  return /(?:^|[;,\s])proto="?https"?(?:[;,\s]|$)/i.test(request.headers['forwarded'] ?? '');
}

function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

export interface SessionRoutesOptions {
  tokens: ApiTokens;
  sessions: SessionStore;
  failures: AuthFailures;
  signInTimeoutMs: number;
}

/**
 * Signing in and out of the dashboard: a session in Redis, its random id in an HttpOnly cookie the
 * API accepts. Failed sign-ins count towards the address's limit (see auth-failures.ts).
 */
export function sessionRoutes(options: SessionRoutesOptions): AnyRoute[] {
  const { tokens, sessions, failures } = options;
  const login = route({
    method: 'POST',
    url: '/login',
    operationId: 'signIn',
    role: null,
    tag: 'dashboard',
    summary: `Sign the dashboard in: checks the token, opens a session and sets its id as the ${SESSION_COOKIE} cookie (HttpOnly, SameSite=Strict, Secure over https).`,
    body: z.strictObject({ token: z.string().min(1).max(1_024) }),
    bodyLimitBytes: SIGN_IN_BODY_LIMIT,
    bodyTimeoutMs: options.signInTimeoutMs,
    // An address with too many failures is refused before its body is read.
    beforeBody: (request) => failures.check(request.ip),
    responses: {
      200: { description: 'signed in', schema: z.object({ role: z.enum(['read', 'enqueue', 'admin']) }) },
      401: { description: 'unknown token', schema: errorSchema },
      408: { description: `the body did not arrive within ${options.signInTimeoutMs} ms`, schema: errorSchema },
      413: { description: `the body is larger than ${SIGN_IN_BODY_LIMIT} bytes`, schema: errorSchema },
      429: { description: 'too many failed sign-ins or tokens from this address (see Retry-After)', schema: errorSchema },
    },
    async handler(request, reply, { body }) {
      const role = tokens.roleOf(body.token);
      if (!role) {
        await failures.record(request.ip);
        throw unauthorized('unknown token');
      }
      const sessionId = await sessions.open(body.token, role);
      const secure = cameOverHttps(request);
      void reply
        .header('set-cookie', [cookie(SESSION_COOKIE, sessionId, sessions.maxSeconds, secure), cookie(LEGACY_TOKEN_COOKIE, '', 0, secure)])
        .header('cache-control', 'no-store');
      return { role };
    },
  });

  const logout = route({
    method: 'POST',
    url: '/logout',
    operationId: 'signOut',
    role: null,
    tag: 'dashboard',
    summary: `Sign the dashboard out: ends the session (for every server replica) and clears the ${SESSION_COOKIE} cookie. Send the ${CSRF_HEADER} header.`,
    responses: {
      200: { description: 'signed out', schema: z.object({ signedOut: z.literal(true) }) },
      403: { description: `no ${CSRF_HEADER} header`, schema: errorSchema },
    },
    async handler(request, reply) {
      // Another site cannot send this header (no CORS), so it cannot sign a viewer out either.
      if (request.headers[CSRF_HEADER] === undefined) throw forbidden(`send the ${CSRF_HEADER} header to sign out`);
      const sessionId = sessionIdOf(request);
      if (sessionId !== undefined) await sessions.revoke(sessionId);
      const secure = cameOverHttps(request);
      void reply
        .header('set-cookie', [cookie(SESSION_COOKIE, '', 0, secure), cookie(LEGACY_TOKEN_COOKIE, '', 0, secure)])
        .header('cache-control', 'no-store');
      return { signedOut: true };
    },
  });

  return [login, logout];
}
