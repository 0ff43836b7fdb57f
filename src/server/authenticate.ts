import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from './api-errors.js';
import { roleAllows, type ApiTokens, type Role } from './api-tokens.js';

/** The dashboard's session cookie: it holds the token the viewer signed in with (HttpOnly, SameSite=Strict). */
export const SESSION_COOKIE = 'sluice_token';

/**
 * Requests authenticated by the cookie that change something must carry this header. A browser
 * only sends a custom header cross-site after a CORS preflight this server never grants, so another
 * site cannot make a signed-in viewer's browser replay or delete (CSRF).
 */
export const CSRF_HEADER = 'x-sluice-request';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The token a request presents, and how. */
export function presentedToken(request: FastifyRequest): { token: string; via: 'header' | 'cookie' } | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('expected the header "Authorization: Bearer <token>"');
    return { token: match[1]!, via: 'header' };
  }
  const cookie = cookieValue(request.headers.cookie, SESSION_COOKIE);
  return cookie === undefined ? undefined : { token: cookie, via: 'cookie' };
}

/** The caller's role, checked against the one a route needs: 401 without a known token, 403 with too small a role. */
export function authenticate(request: FastifyRequest, tokens: ApiTokens, required: Role): Role {
  const presented = presentedToken(request);
  if (!presented) throw unauthorized('missing token: send "Authorization: Bearer <token>" (tokens come from SLUICE_API_TOKENS)');
  const role = tokens.roleOf(presented.token);
  if (!role) throw unauthorized('unknown token');
  if (!roleAllows(role, required)) throw forbidden(`this needs the ${required} role; the token has ${role}`);
  if (presented.via === 'cookie' && !SAFE_METHODS.has(request.method) && request.headers[CSRF_HEADER] === undefined) {
    throw forbidden(`requests signed in by cookie that change something must send the ${CSRF_HEADER} header`);
  }
  return role;
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
