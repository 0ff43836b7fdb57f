import { readFileSync, readdirSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Only our own script and style; no inline code, no framing. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** assets/, next to this module in src/ and in dist/src/ (the build copies it there). */
const ASSETS = new URL('./assets/', import.meta.url);

function readAsset(name: string): string {
  return readFileSync(new URL(name, ASSETS), 'utf8');
}

/**
 * The script's modules: every `.js` file in assets/ (app.js and the modules it imports), by name. Each
 * becomes one route of its own, so only these names are served; a name that would not be a plain path
 * segment is refused rather than turned into a route pattern.
 */
function scriptModules(): string[] {
  const names = readdirSync(ASSETS, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
    .map((entry) => entry.name)
    .sort();
  for (const name of names) if (!/^[a-z0-9][a-z0-9-]*\.js$/.test(name)) throw new Error(`dashboard asset ${name}: name it like app.js`);
  return names;
}

/**
 * sluice's own dashboard at `/`: one static HTML page, its style sheet and its script (app.js and the
 * modules it imports, each at /assets/<name>.js), read once from assets/ when the routes are registered
 * (no build step, nothing fetched from elsewhere).
 */
export function registerDashboardPage(app: FastifyInstance): void {
  const serve = (body: string, type: string, cacheControl: string) => async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': cacheControl })
      .type(type)
      .send(body);
  app.get('/', serve(readAsset('index.html'), 'text/html; charset=utf-8', 'no-store'));
  for (const name of scriptModules()) app.get(`/assets/${name}`, serve(readAsset(name), 'text/javascript; charset=utf-8', 'no-cache'));
  app.get('/assets/app.css', serve(readAsset('app.css'), 'text/css; charset=utf-8', 'no-cache'));
  // Browsers ask for it; an empty answer keeps 404s out of the log.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());
}
