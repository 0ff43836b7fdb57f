/**
 * The `cursor` of a listing: an opaque string for clients, the position of the last item of the
 * page for the server (its time score and id), so a walk is stable while items are added.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { IndexPosition } from '../outcomes/newest-first.js';

/** Base64url of JSON `[score, id]`; ids are at most 300 characters (dead letter ids, batch ids less). */
const CURSOR_TEXT = /^[A-Za-z0-9_-]{1,1200}$/;

export function encodeCursor(position: IndexPosition): string {
  return Buffer.from(JSON.stringify([position.score, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor holds; undefined for text this server did not give out. */
export function decodeCursor(text: string): IndexPosition | undefined {
  if (!CURSOR_TEXT.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [score, id] = value as unknown[];
  if (typeof score !== 'number' || !Number.isFinite(score) || typeof id !== 'string' || id.length === 0 || id.length > 300)
    return undefined;
  return { score, id };
}

/** The `cursor` query parameter: checked and decoded with the rest of the query (a 400 names `query.cursor`). */
export const cursorParamSchema = z
  .string()
  .transform((text, ctx) => {
    const position = decodeCursor(text);
    if (position) return position;
    ctx.addIssue({ code: 'custom', message: "not a cursor this API gave out: pass the previous page's nextCursor unchanged" });
    return z.NEVER;
  })
  .describe("the previous page's nextCursor; omitted: the first page");

/**
 * The next page's cursor for the body, and an RFC 8288 `Link: <…>; rel="next"` header: this
 * request's path and query with `cursor` set (so its filters and limit carry over).
 */
export function nextPage(request: FastifyRequest, reply: FastifyReply, next: IndexPosition | null): string | null {
  if (!next) return null;
  const cursor = encodeCursor(next);
  const url = new URL(request.url, 'http://placeholder');
  url.searchParams.set('cursor', cursor);
  void reply.header('link', `<${url.pathname}${url.search}>; rel="next"`);
  return cursor;
}
