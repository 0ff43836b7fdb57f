import { answerWithin, isRedisUnavailable } from '../redis/unavailable.js';
import { sleep } from '../support/sleep.js';
import type { BatchStatus, Batches } from './batches.js';

export interface WaitOptions {
  /** Give up after this long; resolves with `timedOut: true`. Default: never. */
  timeoutMs?: number;
  /** How often counters are read. Default 500 ms. */
  intervalMs?: number;
  /** Called with every reading. */
  onUpdate?: (status: BatchStatus) => void;
  signal?: AbortSignal;
  /**
   * Called when a reading fails because Redis is not answering (down, restarting, failing over, or
   * silent for `readTimeoutMs`), with how long it has not answered. Given it, the wait rides the
   * outage out, reading again every second or so, until Redis answers, the timeout passes or the
   * outage lasts `outageLimitMs` (then `unreachable: true`). Without it, that error is thrown.
   */
  onUnavailable?: (error: unknown, downForMs: number) => void;
  /** Called with the first good reading after an outage. */
  onRecovered?: (downForMs: number) => void;
  /** The longest outage ridden out. Default: until the timeout. */
  outageLimitMs?: number;
  /** A reading Redis does not answer within this long counts as an outage. Default 10,000 ms. */
  readTimeoutMs?: number;
}

export interface WaitResult {
  /** The last reading; undefined when there is no such batch (or Redis never answered). */
  status: BatchStatus | undefined;
  timedOut: boolean;
  /** The wait ended because Redis did not answer (only with `onUnavailable`). */
  unreachable: boolean;
}

const DEFAULT_READ_TIMEOUT_MS = 10_000;
/** Readings during an outage are at least this far apart: each failed one already took a while. */
const OUTAGE_RETRY_MS = 1_000;

/**
 * Polls a batch until nothing is pending and no producer is still adding to it (or the timeout).
 * Two reads per interval, whatever the batch size (and one more per further shard of a queue spread over several).
 */
export async function waitForBatch(batches: Pick<Batches, 'status'>, batchId: string, options: WaitOptions = {}): Promise<WaitResult> {
  const interval = options.intervalMs ?? 500;
  const readTimeout = options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  const outageLimit = options.outageLimitMs ?? Number.POSITIVE_INFINITY;
  let last: BatchStatus | undefined;
  let downSince: number | undefined;
  for (;;) {
    let status: BatchStatus | undefined;
    try {
      // Near the deadline a reading still gets a second: a short --timeout must show the counters.
      status = await answerWithin(batches.status(batchId), Math.min(readTimeout, Math.max(deadline - Date.now(), OUTAGE_RETRY_MS)));
    } catch (error) {
      if (!options.onUnavailable || !isRedisUnavailable(error)) throw error;
      downSince ??= Date.now();
      const downFor = Date.now() - downSince;
      options.onUnavailable(error, downFor);
      const timedOut = Date.now() >= deadline;
      if (timedOut || downFor >= outageLimit || options.signal?.aborted) return { status: last, timedOut, unreachable: true };
      await sleep(Math.max(0, Math.min(Math.max(interval, OUTAGE_RETRY_MS), deadline - Date.now(), outageLimit - downFor)));
      continue;
    }
    if (downSince !== undefined) options.onRecovered?.(Date.now() - downSince);
    downSince = undefined;
    last = status;
    if (!status) return { status, timedOut: false, unreachable: false };
    options.onUpdate?.(status);
    if (status.pending === 0 && !status.enqueuing) return { status, timedOut: false, unreachable: false };
    if (Date.now() >= deadline || options.signal?.aborted) return { status, timedOut: true, unreachable: false };
    await sleep(Math.max(0, Math.min(interval, deadline - Date.now())));
  }
}
