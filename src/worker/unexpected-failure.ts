import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { WorkerMetrics } from '../observability/metrics.js';
import { deadLetterOutcome } from '../outcomes/dead-letter.js';
import type { OutcomeStore } from '../outcomes/outcome-store.js';
import { foreignIdempotencyKey, readEnvelope } from '../queue/job-data.js';

export interface UnexpectedFailureDeps {
  queue: string;
  outcomes: OutcomeStore;
  metrics: WorkerMetrics | undefined;
  logger: Logger;
}

/** Whether an error is one a job ends with on purpose (its dead letter is recorded): BullMQ's UnrecoverableError. */
export function isDeadLettered(error: unknown): boolean {
  return error instanceof Error && error.name === 'UnrecoverableError';
}

/**
 * Safety net: an operation that failed for any reason other than our own dead-lettering (a bug)
 * still ends as a dead letter, so nothing disappears from a batch. (Redis failures while a job ends
 * are retried by the processor itself: see durable-write.ts.) Resolves once it is recorded, or not.
 */
export async function deadLetterUnexpectedFailure(
  deps: UnexpectedFailureDeps,
  job: { id?: string | undefined; data: unknown; timestamp: number },
  error: Error,
): Promise<void> {
  if (isDeadLettered(error)) return;
  const { queue, logger } = deps;
  const id = job.id!;
  const envelope = readEnvelope(job.data, id, () => foreignIdempotencyKey(queue, id, job.timestamp));
  const details = {
    reason: 'internal-error' as const,
    message: `internal error: ${errorMessage(error)}`,
    attempts: envelope.attempts ?? [],
  };
  logger.error({ err: error, jobId: id, outcome: 'dead-lettered', reason: 'internal-error' }, 'job failed unexpectedly');
  try {
    // Not written: the outcome was recorded before it failed (BullMQ could not complete it).
    const written = await deps.outcomes.record(deadLetterOutcome(queue, { id, timestamp: job.timestamp }, envelope, details));
    if (written) deps.metrics?.deadLetter(details.reason);
  } catch (recordError) {
    logger.error({ err: recordError, jobId: id }, 'could not dead-letter a failed job');
  }
}
