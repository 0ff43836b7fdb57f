import type { FastifyInstance } from 'fastify';
import Router from 'find-my-way';
import { ApiError, handleError, notFound } from './api-errors.js';

/**
 * Which methods a path takes, for a `405` with `Allow` when a request uses another. Fastify sends
 * a wrong method to its not-found handler; this index holds every route the app registers (fed by
 * an `onRoute` hook) in fastify's own router, with the app's router options, so it matches paths
 * exactly as fastify does.
 */
export interface AllowedMethods {
  add(method: string | readonly string[], url: string): void;
  /** The methods that `path` (no query string) takes, sorted; empty for a path no route has. */
  of(path: string): string[];
}

export function createAllowedMethods(options: { ignoreTrailingSlash: boolean; maxParamLength: number }): AllowedMethods {
  const router = Router(options);
  const methods = new Set<Router.HTTPMethod>();
  const noop = () => undefined;
  return {
    add(method, url) {
      for (const one of typeof method === 'string' ? [method] : method) {
        const name = one.toUpperCase() as Router.HTTPMethod;
        // Fastify may register a HEAD route itself and then the same one again: keep the first.
        if (router.hasRoute(name, url)) continue;
        router.on(name, url, noop);
        methods.add(name);
      }
    },
    of(path) {
      return [...methods].filter((method) => router.find(method, path) !== null).sort();
    },
  };
}

/**
 * The app's not-found handler: a known path asked with another method is a 405 whose `Allow` names
 * the methods it takes; any other request, a 404. Call it before any route is registered.
 */
export function answerUnroutedRequests(
  app: FastifyInstance,
  routerOptions: { ignoreTrailingSlash: boolean; maxParamLength: number },
): void {
  const allowedMethods = createAllowedMethods(routerOptions);
  app.addHook('onRoute', (options) => allowedMethods.add(options.method, options.url ?? options.path));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods.of(path);
    if (allowed.length === 0) return handleError(notFound(`no route ${request.method} ${path}`), request, reply);
    const allow = allowed.join(', ');
    return handleError(
      new ApiError(405, 'METHOD_NOT_ALLOWED', `${path} does not take ${request.method}: it takes ${allow}`, undefined, { allow }),
      request,
      reply,
    );
  });
}
