import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from './api-errors.js';
import { roleAllows, type ApiTokens, type Role } from './api-tokens.js';
import type { AuthFailures } from './auth-failures.js';
import type { SessionStore } from './sessions.js';

/** The dashboard's session cookie: a random session id (HttpOnly, SameSite=Strict); the session is in Redis. */
export const SESSION_COOKIE = 'sluice_session';

/** The cookie of earlier versions, which held the token itself: never read, cleared at sign-in and sign-out. */
export const LEGACY_TOKEN_COOKIE = 'sluice_token';

/**
 * Requests authenticated by the cookie that change something must carry this header. A browser
 * only sends a custom header cross-site after a CORS preflight this server never grants, so another
 * site cannot make a signed-in viewer's browser replay or delete (CSRF).
 */
export const CSRF_HEADER = 'x-sluice-request';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Who a request says it is, and how; `role` is undefined for an unknown token or a session that has ended. */
export interface Identity {
  via: 'header' | 'cookie';
  role: Role | undefined;
}

export interface Authenticator {
  /**
   * The request's identity: undefined when it presents no credential. A bearer token is checked
   * against the per-address failure limit first (429), and counted when it is unknown.
   */
  identify(request: FastifyRequest): Promise<Identity | undefined>;
  /** The caller's role, checked against the one a route needs: 401 without a known credential, 403 with too small a role. */
  authenticate(request: FastifyRequest, required: Role): Promise<Role>;
}

export function createAuthenticator(options: { tokens: ApiTokens; sessions: SessionStore; failures: AuthFailures }): Authenticator {
  const { tokens, sessions, failures } = options;

  async function identify(request: FastifyRequest): Promise<Identity | undefined> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      await failures.check(request.ip);
      const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      const role = token === undefined ? undefined : tokens.roleOf(token);
      if (role) return { via: 'header', role };
      await failures.record(request.ip);
      if (token === undefined) throw unauthorized('expected the header "Authorization: Bearer <token>"');
      return { via: 'header', role: undefined };
    }
    // Session ids are 256 random bits: unknown ones are not counted (a browser whose session ended sends one).
    const sessionId = sessionIdOf(request);
    return sessionId === undefined ? undefined : { via: 'cookie', role: await sessions.roleOf(sessionId) };
  }

  async function authenticate(request: FastifyRequest, required: Role): Promise<Role> {
    const identity = await identify(request);
    if (!identity) throw unauthorized('missing token: send "Authorization: Bearer <token>" (tokens come from SLUICE_API_TOKENS)');
    const { role, via } = identity;
    if (!role) {
      throw unauthorized(
        via === 'header' ? 'unknown token' : 'the session has ended (signed out, unused too long, or its token was removed): sign in again',
      );
    }
    if (!roleAllows(role, required)) throw forbidden(`this needs the ${required} role; the token has ${role}`);
    if (via === 'cookie' && !SAFE_METHODS.has(request.method) && request.headers[CSRF_HEADER] === undefined) {
      throw forbidden(`requests signed in by cookie that change something must send the ${CSRF_HEADER} header`);
    }
    return role;
  }

  return { identify, authenticate };
}

/** The session id in the request's cookie, if any. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  return cookieValue(request.headers.cookie, SESSION_COOKIE);
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
