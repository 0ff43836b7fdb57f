import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Only our own script and style; no inline code, no framing. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** A file of assets/, next to this module in src/ and in dist/src/ (the build copies it there). */
function readAsset(name: 'index.html' | 'app.js' | 'app.css'): string {
  return readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
}

/**
 * sluice's own dashboard at `/`: one static HTML page, its style sheet and its script, read once
 * from assets/ when the routes are registered (no build step, nothing fetched from elsewhere).
 */
export function registerDashboardPage(app: FastifyInstance): void {
  const serve = (body: string, type: string, cacheControl: string) => async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': cacheControl })
      .type(type)
      .send(body);
  app.get('/', serve(readAsset('index.html'), 'text/html; charset=utf-8', 'no-store'));
  app.get('/assets/app.js', serve(readAsset('app.js'), 'text/javascript; charset=utf-8', 'no-cache'));
  app.get('/assets/app.css', serve(readAsset('app.css'), 'text/css; charset=utf-8', 'no-cache'));
  // Browsers ask for it; an empty answer keeps 404s out of the log.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());
}
