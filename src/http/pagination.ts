import { atPath, type NextPage, type Paginate, type PagingState } from '../operation/paginate-schema.js';
import type { HttpResponseSummary } from './http-client.js';
import { parseLinkHeader, relationsOf } from './link-header.js';
import type { RequestSpec } from './request-spec.js';

/**
 * Walking pages, one request at a time: which request is the next page, and what a page said.
 * The walk's progress (`PagingState`) is kept in the job, so a failed page is retried from that
 * page, by a worker that may not be the one that fetched the previous pages.
 */

export type PageResult = { ok: true; items: unknown[]; next: NextPage | undefined } | { ok: false; message: string };

/** The request for the page `state` points at (the first page when there is no state yet). */
export function pageRequest(spec: RequestSpec, paginate: Paginate, state: PagingState | undefined): RequestSpec {
  const next = state?.next;
  const url = new URL(next?.url ?? spec.url);
  if (next?.url === undefined) {
    switch (paginate.style) {
      case 'page':
        url.searchParams.set(paginate.pageParam, String(next?.page ?? paginate.startPage));
        if (paginate.size !== undefined) url.searchParams.set(paginate.sizeParam, String(paginate.size));
        break;
      case 'offset':
        url.searchParams.set(paginate.offsetParam, String(next?.offset ?? 0));
        url.searchParams.set(paginate.limitParam, String(paginate.size));
        break;
      case 'cursor':
        if (next?.cursor !== undefined) url.searchParams.set(paginate.cursorParam, next.cursor);
        break;
      case 'link':
        break;
    }
  }
  return { ...spec, url, keepBodyText: true };
}

/** Reads one page: its items and where the next one is (undefined: this was the last page). */
export function readPage(response: HttpResponseSummary, paginate: Paginate, state: PagingState | undefined, requestUrl: URL): PageResult {
  const pageNumber = (state?.pages ?? 0) + 1;
  const text = response.body.text ?? '';
  if (text.trim() === '') return { ok: true, items: [], next: undefined };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // The path only: a query string may hold a credential the caller put there.
    return { ok: false, message: `page ${pageNumber} (${requestUrl.pathname}) is not JSON` };
  }
  const items = atPath(body, paginate.itemsPath);
  if (!Array.isArray(items)) {
    const where = paginate.itemsPath === '' ? 'the body' : `paginate.itemsPath ${JSON.stringify(paginate.itemsPath)}`;
    return { ok: false, message: `page ${pageNumber}: ${where} is not an array (got ${describe(items)})` };
  }
  if (items.length === 0 || pageNumber >= paginate.maxPages) return { ok: true, items, next: undefined };
  return nextOf(body, items, response, paginate, state, requestUrl);
}

function nextOf(
  body: unknown,
  items: unknown[],
  response: HttpResponseSummary,
  paginate: Paginate,
  state: PagingState | undefined,
  requestUrl: URL,
): PageResult {
  const short = paginate.size !== undefined && items.length < paginate.size;
  switch (paginate.style) {
    case 'page':
      return { ok: true, items, next: short ? undefined : { page: (state?.next?.page ?? paginate.startPage) + 1 } };
    case 'offset':
      return { ok: true, items, next: short ? undefined : { offset: (state?.next?.offset ?? 0) + items.length } };
    case 'cursor': {
      if (paginate.nextUrlPath !== undefined) return nextUrl(atPath(body, paginate.nextUrlPath), items, requestUrl, state);
      const cursor = atPath(body, paginate.cursorPath!);
      if (cursor === undefined || cursor === null || cursor === '' || cursor === false) return { ok: true, items, next: undefined };
      if (typeof cursor !== 'string' && typeof cursor !== 'number') {
        return {
          ok: false,
          message: `paginate.cursorPath ${JSON.stringify(paginate.cursorPath)} is not a string or number (got ${describe(cursor)})`,
        };
      }
      if (String(cursor) === state?.next?.cursor || state?.recent?.includes(String(cursor))) {
        return {
          ok: false,
          message: `the target returned the cursor ${JSON.stringify(String(cursor))} again; stopping rather than going round in a circle`,
        };
      }
      return { ok: true, items, next: { cursor: String(cursor) } };
    }
    case 'link': {
      const link = nextLinkOf(response.headers.link);
      if ('unreadable' in link) return { ok: false, message: `page ${(state?.pages ?? 0) + 1}: ${link.unreadable}` };
      return nextUrl(link.next, items, requestUrl, state);
    }
  }
}

function nextUrl(value: unknown, items: unknown[], requestUrl: URL, state: PagingState | undefined): PageResult {
  if (value === undefined || value === null || value === '') return { ok: true, items, next: undefined };
  if (typeof value !== 'string' || !URL.canParse(value, requestUrl.href))
    return { ok: false, message: `the next page's URL is not a URL (got ${describe(value)})` };
  const url = new URL(value, requestUrl);
  if (url.href === requestUrl.href || state?.recent?.includes(url.href)) {
    return { ok: false, message: `the next page's URL ${url.pathname} was read before; stopping rather than going round in a circle` };
  }
  return { ok: true, items, next: { url: url.href } };
}

/**
 * The `rel="next"` target of an RFC 8288 Link header (the first, when several say next); none when
 * the header lists no next link, so this was the last page. A header that is not Link syntax and
 * names no readable next is `unreadable`: ending the walk there would call a maybe-partial walk
 * a success. The message names the place, never the header's text (its URLs may carry credentials).
 */
export function nextLinkOf(header: string | undefined): { next: string | undefined } | { unreadable: string } {
  if (!header) return { next: undefined };
  const { links, problem } = parseLinkHeader(header);
  const next = links.find((link) => relationsOf(link).includes('next'))?.target;
  if (next !== undefined || !problem) return { next };
  return {
    unreadable: `the Link header cannot be read (at character ${problem.at + 1} of ${header.length}: expected ${problem.expected}); stopping rather than taking this page for the last`,
  };
}

/** The `rel="next"` target of a Link header, if one can be read. */
export function nextLink(header: string | undefined): string | undefined {
  const link = nextLinkOf(header);
  return 'next' in link ? link.next : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
