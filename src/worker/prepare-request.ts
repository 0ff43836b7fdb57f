import type { SluiceConfig } from '../config/sluice-config.js';
import { RequestError, errorMessage, formatIssues, type Issue } from '../errors.js';
import { pageRequest } from '../http/pagination.js';
import { buildRequestSpec, type RequestSpec } from '../http/request-spec.js';
import { destinationPolicyOf, limitKeysOf, parseOperation, type OperationRules } from '../operation/parse-operation.js';
import type { Operation } from '../operation/schema.js';
import type { JobEnvelope } from '../queue/job-data.js';

/** A job whose worker died this many times while running it is dead-lettered (`stalled`). */
export const MAX_STALLS = 5;

export type PreparedRequest = { ok: true; operation: Operation; limitKeys: string[]; spec: RequestSpec } | Unsendable;

/** Why a job can never be sent; `error` is what BullMQ keeps as the failed job's reason. */
export type Unsendable =
  | { ok: false; reason: 'stalled'; message: string; error: string }
  | { ok: false; reason: 'invalid-operation'; message: string; error: string; issues: Issue[] }
  | { ok: false; reason: 'request-error'; message: string; error: string; operation: Operation; limitKeys: string[] };

/**
 * A job's operation, validated again (jobs may come from other clients or older versions), and the
 * request it sends now; or why it can never be sent.
 */
export function prepareRequest(
  envelope: JobEnvelope,
  config: SluiceConfig,
  job: { id: string; stalledCounter: number },
  rules: OperationRules = {},
): PreparedRequest {
  if (job.stalledCounter >= MAX_STALLS) {
    // Its workers died this many times while running it: a poison operation. Stop here, with a
    // dead letter, rather than let BullMQ fail it silently at its own stall limit.
    const message = `the job's worker stopped ${job.stalledCounter} times while running it (crash or kill); not retried again`;
    return { ok: false, reason: 'stalled', message, error: message };
  }
  const parsed = parseOperation(envelope.op, config, rules);
  if (!parsed.ok) {
    const message = formatIssues(parsed.issues);
    return { ok: false, reason: 'invalid-operation', message, error: `invalid operation: ${message}`, issues: parsed.issues };
  }
  const operation = parsed.operation;
  const limitKeys = limitKeysOf(operation);
  try {
    const target = operation.target ? config.targets[operation.target] : undefined;
    let spec = buildRequestSpec(operation, target, envelope.idempotencyKey, { ...config.files, jobId: job.id });
    // A paginated operation sends the page its progress points at (the first, or where it stopped).
    if (operation.paginate) {
      spec = pageRequest(spec, operation.paginate, envelope.paging);
      // Job data can be written by other clients: a stored next page must pass the same rules.
      const refusal = destinationPolicyOf(config).refuseUrl(spec.url);
      if (refusal) throw new RequestError(`the next page ${spec.url.origin}${spec.url.pathname}: ${refusal}`);
    }
    return { ok: true, operation, limitKeys, spec };
  } catch (error) {
    const message = errorMessage(error);
    return { ok: false, reason: 'request-error', message, error: message, operation, limitKeys };
  }
}
