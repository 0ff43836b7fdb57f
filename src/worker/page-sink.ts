import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, lstat, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { SluiceConfig } from '../config/sluice-config.js';
import { RequestError, ValidationError, errorMessage, type Issue } from '../errors.js';
import { fileNameForJob, prepareDownloadPaths } from '../http/safe-path.js';
import type { Paginate, PagingState } from '../operation/paginate-schema.js';
import { parseOperation, type OperationRules } from '../operation/parse-operation.js';
import { renderTemplate } from '../operation/template.js';
import { isBatchId, sha256 } from '../redis/keys.js';

/** Enqueues child operations, already validated against the worker's config, into a batch (the worker's own producer). */
export type EnqueueChildren = (operations: unknown[], batchId: string) => Promise<{ enqueued: number; duplicates: number }>;

/** Bad children named in the error of a page: the first few are enough to fix the template. */
const MAX_NAMED_CHILDREN = 5;

export interface PageSinkDeps {
  config: SluiceConfig;
  enqueueChildren: EnqueueChildren;
  /** What each child must also satisfy (one limit group on a Redis Cluster). */
  rules?: OperationRules;
}

export interface WalkContext {
  jobId: string;
  opId: string;
  batchId: string | undefined;
  paginate: Paginate;
  /** Progress before this page (undefined on the first). */
  state: PagingState | undefined;
}

/** What the result line says about a finished walk. */
export interface PaginationSummary {
  pages: number;
  items: number;
  /** The JSONL file of items (file output). */
  file?: { path: string; bytes: number; sha256: string };
  /** The batch the child operations went to (forEach). */
  childBatchId?: string;
}

export interface PageSink {
  /** Takes one page's items (already cut to maxItems); returns the items file's size after them, if any. */
  take(context: WalkContext, items: unknown[]): Promise<number | undefined>;
  /** Ends the walk: the items file gets its final name. */
  finish(context: WalkContext, state: PagingState): Promise<PaginationSummary>;
  /** A walk that failed for good: its partial items file is removed. */
  abandon(context: WalkContext): Promise<void>;
}

/**
 * Where a walk's items go. To a JSONL file under files.downloadDir, written as `<name>.part` and
 * renamed when the last page is in; a resumed walk first cuts the file back to the bytes its saved
 * progress counts, so a page is never written twice. Or, with `forEach`, to one child operation
 * per item in the parent's batch, all of a page's children checked before any is enqueued; their
 * idempotency keys (by default `<opId>:item:<n>`) make a page enqueued twice after a crash count once.
 */
export function createPageSink(deps: PageSinkDeps): PageSink {
  /** The items file (the same checks as downloads: inside files.downloadDir, links included) and its `.part`. */
  async function itemsFile(context: WalkContext): Promise<{ path: string; final: string; part: string }> {
    const dir = deps.config.files?.downloadDir;
    if (!dir) throw new RequestError('paginate: files.downloadDir is not configured on this worker');
    const paths = await prepareDownloadPaths(dir, context.paginate.output?.path ?? `${fileNameForJob(context.jobId)}.items.jsonl`);
    // The walk's own .part (two walks naming the same output do not cut each other's file).
    const part = join(
      dirname(paths.realPath),
      `.${basename(paths.realPath).slice(0, 150)}.${fileNameForJob(context.jobId).slice(0, 80)}.part`,
    );
    return { path: paths.path, final: paths.realPath, part };
  }

  return {
    async take(context, items) {
      if (context.paginate.forEach !== undefined) {
        const children = pageChildren(deps, context, context.paginate.forEach, items);
        if (children.length > 0) await deps.enqueueChildren(children, childBatch(context));
        return undefined;
      }
      const { part, final } = await itemsFile(context);
      const kept = context.state?.fileBytes ?? 0;
      const existing = await lstat(part).catch(() => undefined);
      if (existing && !existing.isFile()) throw new RequestError(`paginate: ${part} is not a regular file (a link?); refused`);
      if (!context.state || context.state.pages === 0) {
        await writeFile(part, '');
      } else {
        // The last page again after the walk was finished but not recorded (a crash): take the file back.
        if (!existing) await rename(final, part).catch(() => undefined);
        const size = await stat(part).then(
          (found) => found.size,
          () => -1,
        );
        if (size < kept) {
          throw new RequestError(
            `paginate: the items file ${part} holds ${Math.max(size, 0)} of the ${kept} bytes written so far (is files.downloadDir shared by every worker?)`,
          );
        }
        await truncate(part, kept);
      }
      const text = items.map((item) => `${JSON.stringify(item)}\n`).join('');
      await appendFile(part, text);
      return kept + Buffer.byteLength(text);
    },

    async abandon(context) {
      if (context.paginate.forEach !== undefined || !deps.config.files?.downloadDir) return;
      const { part } = await itemsFile(context);
      await rm(part, { force: true });
    },

    async finish(context, state) {
      const summary: PaginationSummary = { pages: state.pages, items: state.items };
      if (context.paginate.forEach !== undefined) return { ...summary, childBatchId: childBatch(context) };
      const { path, final, part } = await itemsFile(context);
      // Hash first, rename last: a failure before the rename leaves the walk resumable.
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of createReadStream(part)) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).byteLength;
      }
      await rename(part, final);
      return { ...summary, file: { path, bytes, sha256: hash.digest('hex') } };
    },
  };
}

/** The batch of a walk's children: the parent's, else one named after the parent (hashed when its id makes no batch id). */
function childBatch(context: WalkContext): string {
  if (context.batchId !== undefined) return context.batchId;
  const named = `${context.opId}-items`;
  return isBatchId(named) ? named : `items-${sha256(context.opId).slice(0, 32)}`;
}

/**
 * A page's child operations, every one rendered and validated before any is enqueued, so a page
 * adds all its children or none. Child `n` of the walk (its item's index) gets the idempotency key
 * `<opId>:item:<n>` unless the template gives one. A bad child is a ValidationError naming it.
 */
function pageChildren(deps: PageSinkDeps, context: WalkContext, template: unknown, items: unknown[]): Record<string, unknown>[] {
  const seen = context.state?.items ?? 0;
  const children: Record<string, unknown>[] = [];
  const issues: Issue[] = [];
  let bad = 0;
  items.forEach((item, i) => {
    const n = seen + i;
    const found = childOf(deps.config, template, item, `${context.opId}:item:${n}`, deps.rules);
    if ('child' in found) children.push(found.child);
    else if ((bad += 1) <= MAX_NAMED_CHILDREN)
      issues.push(...found.issues.map((issue) => ({ ...issue, path: `items[${n}]${issue.path ? `.${issue.path}` : ''}` })));
  });
  if (bad > 0) {
    const more = bad > MAX_NAMED_CHILDREN ? ` (the first ${MAX_NAMED_CHILDREN} of ${bad} named)` : '';
    throw new ValidationError(`forEach children: none of this page's ${items.length} was enqueued${more}`, issues);
  }
  return children;
}

function childOf(
  config: SluiceConfig,
  template: unknown,
  item: unknown,
  key: string,
  rules: OperationRules = {},
): { child: Record<string, unknown> } | { issues: Issue[] } {
  let rendered: unknown;
  try {
    rendered = renderTemplate(template, { item });
  } catch (error) {
    // A text placeholder writes its value as JSON: an item too deep for JSON.stringify.
    return { issues: [{ path: '', message: `cannot render paginate.forEach for this item: ${errorMessage(error)}` }] };
  }
  const child = { ...(rendered as Record<string, unknown>) };
  child['idempotencyKey'] ??= key;
  const parsed = parseOperation(child, config, rules);
  return parsed.ok ? { child } : { issues: parsed.issues };
}
