import { z } from 'zod';
import { relativeFilePathSchema } from './file-fields.js';

/**
 * `paginate` on a GET operation: how to walk every page, where the items are, when to stop, and
 * where the items go (a JSONL file under files.downloadDir, or one child operation per item).
 */

const dotPath = z.string().regex(/^$|^[^.\s]+(\.[^.\s]+)*$/, 'expected a dot path such as data.items (empty: the body itself)');
const param = z.string().min(1).max(128);
export const paginateSchema = z
  .strictObject({
    style: z.enum(['page', 'offset', 'cursor', 'link'], { error: 'expected style page, offset, cursor or link' }),
    /** Where the page's array of items is in the JSON body ('' = the body is the array). */
    itemsPath: dotPath.default(''),
    /** page style: the page number parameter and the first page. */
    pageParam: param.default('page'),
    startPage: z.number().int().min(0).default(1),
    /** page style: the page size parameter (sent when `size` is given); offset style: see limitParam. */
    sizeParam: param.default('per_page'),
    /** Items per page asked for (page style: optional; offset style: required). */
    size: z.number().int().positive().max(100_000).optional(),
    /** offset style: parameter names. */
    offsetParam: param.default('offset'),
    limitParam: param.default('limit'),
    /** cursor style: where the next cursor is in the body, and the parameter that sends it back... */
    cursorPath: dotPath.optional(),
    cursorParam: param.default('cursor'),
    /** ...or where the next page's URL is in the body. */
    nextUrlPath: dotPath.optional(),
    /** Stop after this many pages / items. */
    maxPages: z.number().int().positive().max(1_000_000).default(10_000),
    maxItems: z.number().int().positive().optional(),
    /** The items file, relative to files.downloadDir. Default `<job id>.items.jsonl`. */
    output: z.strictObject({ path: relativeFilePathSchema }).optional(),
    /** An operation template: one child operation per item, `{{item.field}}` substituted. */
    forEach: z.record(z.string(), z.unknown(), { error: 'expected an operation template object' }).optional(),
  })
  .superRefine((paginate, ctx) => {
    if (paginate.style === 'offset' && paginate.size === undefined) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: 'offset pagination needs size (items per page)' });
    }
    if (paginate.style === 'cursor' && (paginate.cursorPath === undefined) === (paginate.nextUrlPath === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['cursorPath'], message: 'cursor pagination needs cursorPath or nextUrlPath (one of them)' });
    }
    if (paginate.forEach !== undefined && paginate.output !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['output'], message: 'give forEach or output, not both' });
    }
  });

export type Paginate = z.output<typeof paginateSchema>;

/** Where the next page is: by number, by offset, by cursor, or by URL (from the body or a Link header). */
export interface NextPage {
  page?: number;
  offset?: number;
  cursor?: string;
  url?: string;
}

export interface PagingState {
  /** Pages read so far. */
  pages: number;
  /** Items taken so far (after maxItems). */
  items: number;
  /** The page to read next; absent before the first. */
  next?: NextPage;
  /** Bytes of the items file after the pages read (a resumed walk cuts it back to this). */
  fileBytes?: number;
  /** The last cursors / next URLs followed, to stop a walk that goes round in a circle. */
  recent?: string[];
}

/** Reads `data.items` out of a JSON value ('' = the value itself); undefined when absent. */
export function atPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  let current = value;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = Array.isArray(current) && /^\d+$/.test(part) ? current[Number(part)] : (current as Record<string, unknown>)[part];
  }
  return current;
}
