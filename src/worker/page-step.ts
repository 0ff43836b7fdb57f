import type { Credentials } from '../auth/credentials.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { RequestError, ValidationError, errorMessage } from '../errors.js';
import type { HttpResponseSummary } from '../http/http-client.js';
import { readPage } from '../http/pagination.js';
import type { Paginate, PagingState } from '../operation/paginate-schema.js';
import { destinationPolicyOf } from '../operation/parse-operation.js';
import type { Operation } from '../operation/schema.js';
import type { JobEnvelope } from '../queue/job-data.js';
import type { FailedVerdict } from './attempt-record.js';
import type { PageSink, PaginationSummary, WalkContext } from './page-sink.js';

export type PageStep =
  { kind: 'next'; paging: PagingState } | { kind: 'done'; summary: PaginationSummary } | { kind: 'failed'; verdict: FailedVerdict };

/** A paginated operation's walk as this job continues it; undefined for other operations. */
export function walkOf(operation: Operation, envelope: JobEnvelope, jobId: string): (WalkContext & { paginate: Paginate }) | undefined {
  if (!operation.paginate) return undefined;
  return { jobId, opId: envelope.opId, batchId: envelope.batchId, paginate: operation.paginate, state: envelope.paging };
}

export interface PageStepInput {
  config: SluiceConfig;
  credentials: Credentials;
  pages: PageSink;
  /** The operation's target (for the secrets to scrub from a next URL). */
  target: string | undefined;
  /** Where this page was read from (a relative next URL is resolved against it). */
  requestUrl: URL;
  context: WalkContext & { paginate: Paginate };
}

/** One page of a walk: its items to the sink; then the next page, the finished walk, or why the page failed. */
export async function takePage(input: PageStepInput, page: HttpResponseSummary): Promise<PageStep> {
  const { context, credentials, target } = input;
  const { paginate, state } = context;
  const read = readPage(page, paginate, state, input.requestUrl);
  if (!read.ok) return { kind: 'failed', verdict: { kind: 'permanent', code: 'PAGINATION_BAD_PAGE', message: read.message } };
  if (read.next?.url) {
    // Stored in the job: without secrets (authorize puts an apiKey back), and only if it may be called.
    read.next.url = credentials.scrub(target, read.next.url);
    const refusal = destinationPolicyOf(input.config).refuseUrl(new URL(read.next.url));
    if (refusal) {
      return {
        kind: 'failed',
        verdict: { kind: 'permanent', code: 'ADDRESS_REFUSED', message: `the next page ${read.next.url}: ${refusal}` },
      };
    }
  }
  const room = paginate.maxItems === undefined ? Infinity : paginate.maxItems - (state?.items ?? 0);
  const items = read.items.slice(0, Math.max(0, room));
  try {
    const fileBytes = await input.pages.take(context, items);
    const paging: PagingState = {
      pages: (state?.pages ?? 0) + 1,
      items: (state?.items ?? 0) + items.length,
      ...(read.next
        ? {
            next: read.next,
            recent: [...(state?.recent ?? []), read.next.cursor ?? read.next.url ?? ''].filter(Boolean).slice(-20),
          }
        : {}),
      ...(fileBytes !== undefined ? { fileBytes } : {}),
    };
    if (read.next && items.length === read.items.length && paging.items < (paginate.maxItems ?? Infinity)) return { kind: 'next', paging };
    return { kind: 'done', summary: await input.pages.finish(context, paging) };
  } catch (error) {
    // A bad child template or a misplaced file will not get better; Redis or disk trouble may.
    const permanent = error instanceof RequestError || error instanceof ValidationError;
    const code = permanent ? 'PAGINATION_FAILED' : 'PAGINATION_WRITE_FAILED';
    const message = `page ${(state?.pages ?? 0) + 1}: ${errorMessage(error)}`;
    return { kind: 'failed', verdict: permanent ? { kind: 'permanent', code, message } : { kind: 'retry', retryAfterMs: undefined, code } };
  }
}
