import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../api-errors.js';
import { errorSchema } from '../api-schemas.js';
import type { ApiTokens } from '../api-tokens.js';
import { CSRF_HEADER, SESSION_COOKIE } from '../authenticate.js';
import { route, type AnyRoute } from '../route.js';

/** How long a browser keeps the dashboard's cookie. */
const SESSION_SECONDS = 12 * 60 * 60;

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

function cookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

/** Signing in and out of the dashboard: the token goes into an HttpOnly cookie the API accepts. */
export function sessionRoutes(options: { tokens: ApiTokens; signInTimeoutMs: number }): AnyRoute[] {
  const login = route({
    method: 'POST',
    url: '/login',
    role: null,
    tag: 'dashboard',
    summary: `Sign the dashboard in: checks the token and sets it as the ${SESSION_COOKIE} cookie (HttpOnly, SameSite=Strict, Secure over https).`,
    body: z.strictObject({ token: z.string().min(1).max(1_024) }),
    bodyLimitBytes: SIGN_IN_BODY_LIMIT,
    bodyTimeoutMs: options.signInTimeoutMs,
    responses: {
      200: { description: 'signed in', schema: z.object({ role: z.enum(['read', 'enqueue', 'admin']) }) },
      401: { description: 'unknown token', schema: errorSchema },
      408: { description: `the body did not arrive within ${options.signInTimeoutMs} ms`, schema: errorSchema },
      413: { description: `the body is larger than ${SIGN_IN_BODY_LIMIT} bytes`, schema: errorSchema },
    },
    async handler(request, reply, { body }) {
      const role = options.tokens.roleOf(body.token);
      if (!role) throw unauthorized('unknown token');
      void reply.header('set-cookie', cookie(body.token, SESSION_SECONDS, cameOverHttps(request))).header('cache-control', 'no-store');
      return { role };
    },
  });

  const logout = route({
    method: 'POST',
    url: '/logout',
    role: null,
    tag: 'dashboard',
    summary: `Sign the dashboard out: clears the ${SESSION_COOKIE} cookie. Send the ${CSRF_HEADER} header.`,
    responses: { 200: { description: 'signed out', schema: z.object({ signedOut: z.literal(true) }) } },
    async handler(request, reply) {
      // Another site cannot send this header (no CORS), so it cannot sign a viewer out either.
      if (request.headers[CSRF_HEADER] === undefined) throw forbidden(`send the ${CSRF_HEADER} header to sign out`);
      void reply.header('set-cookie', cookie('', 0, cameOverHttps(request))).header('cache-control', 'no-store');
      return { signedOut: true };
    },
  });

  return [login, logout];
}
