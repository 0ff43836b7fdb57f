import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BOARD_PATH } from './bull-board.js';
import { PAGE_SCRIPT } from './page-script.js';
import { PAGE_STYLE } from './page-style.js';

/**
 * sluice's own dashboard at `/`: one static HTML page, its style sheet and its script, all served
 * from strings compiled into dist/ (no build step, nothing fetched from elsewhere). The page needs
 * no token to load; its data comes from `/v1/overview` with the viewer's cookie, and when there is
 * none it shows a sign-in form that posts to `/login`.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice</title>
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<header class="top">
  <h1>sluice</h1>
  <nav aria-label="More">
    <a href="${BOARD_PATH}">Jobs (bull-board)</a>
    <a href="/openapi.json">API (OpenAPI)</a>
  </nav>
  <div class="session" id="session" hidden>
    <span id="role" data-testid="viewer-role"></span>
    <button id="logout" type="button">Sign out</button>
  </div>
</header>
<main>
  <p id="loading" class="muted">Loading…</p>
  <section id="signin" hidden aria-labelledby="signin-title">
    <h2 id="signin-title">Sign in</h2>
    <form id="signin-form">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required>
      <button type="submit">Sign in</button>
      <p id="signin-error" role="alert"></p>
      <p class="muted">A token from <code>SLUICE_API_TOKENS</code>: <code>read</code> watches; <code>admin</code> may also replay dead letters.</p>
    </form>
  </section>
  <div id="error" class="error" role="alert" data-testid="error" hidden></div>
  <div id="content" hidden>
    <p class="status"><span id="updated" data-testid="updated"></span></p>
    <p id="notice" role="status" data-testid="notice"></p>
    <section aria-labelledby="queues-title">
      <h2 id="queues-title">Queues</h2>
      <div id="queues"></div>
    </section>
    <section aria-labelledby="limits-title">
      <h2 id="limits-title">Limit keys</h2>
      <div id="limits"></div>
    </section>
  </div>
</main>
</body>
</html>
`;

/** Only our own script and style; no inline code, no framing. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function registerDashboardPage(app: FastifyInstance): void {
  const serve = (body: string, type: string, cacheControl: string) => async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': cacheControl })
      .type(type)
      .send(body);
  app.get('/', serve(PAGE_HTML, 'text/html; charset=utf-8', 'no-store'));
  app.get('/assets/app.js', serve(PAGE_SCRIPT, 'text/javascript; charset=utf-8', 'no-cache'));
  app.get('/assets/app.css', serve(PAGE_STYLE, 'text/css; charset=utf-8', 'no-cache'));
  // Browsers ask for it; an empty answer keeps 404s out of the log.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());
}
