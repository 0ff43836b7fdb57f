import { Counter, Histogram, Registry } from 'prom-client';
import { NetworkError, ShutdownAbortError, TimeoutError } from '../errors.js';
import { processMetricsRegistry } from './process-metrics.js';

/**
 * A worker process's own metrics, in a registry of its own (never prom-client's global one).
 * Nothing here is served over HTTP: the worker publishes snapshots of the registry to Redis
 * (worker-snapshots.ts) and `sluice server` renders every live worker's (fleet-metrics.ts).
 *
 * Names follow Prometheus's conventions (docs/metrics.md, "Names"): snake_case labels — the logs'
 * `limitKey` is the label `limit_key` — base units in the name (`_seconds`), `_total` on counters.
 */

/**
 * What became of one HTTP attempt: the response's status class, or why there was none —
 * `timeout`, `network` (refused, reset, DNS), `aborted` (the worker shut down mid-request) or
 * `error` (the request could not be made: credentials, a refused address, an unreadable file).
 */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'timeout' | 'network' | 'aborted' | 'error';

/** One OAuth2 token request: got a token, failed in a way that may pass, or was refused (bad client, no token). */
export type TokenRequestOutcome = 'success' | 'failed' | 'refused';

export interface WorkerMetrics {
  /** The registry every metric below lives in, with the process's default metrics unless turned off (what the worker publishes). */
  readonly registry: Registry;
  /** One HTTP attempt that held its limit slot, and how long it took. */
  request(limitKey: string, statusClass: StatusClass, durationMs: number): void;
  /** A failed attempt whose operation will be tried again; `reason` is the attempt's error code (`HTTP_503`, `TIMEOUT_HEADERS`, …). */
  retry(reason: string): void;
  /** An operation recorded as a dead letter (`reason`: its DeadLetterReason). */
  deadLetter(reason: string): void;
  /** An operation recorded as succeeded. */
  succeeded(): void;
  tokenRequest(target: string, outcome: TokenRequestOutcome): void;
}

export interface WorkerMetricsOptions {
  /**
   * Distinct `limit_key` label values one worker keeps; later keys are counted as `(other)`. Keys
   * default to a URL's host, so without a bound a queue of calls to many hosts would make a
   * series per host. Default 200.
   */
  maxLimitKeys?: number;
  /** Include the process's `process_*` and `nodejs_*` metrics (process-metrics.ts). Default true. */
  processMetrics?: boolean;
}

/** Seconds. From a fast cached answer to the default 60 s total timeout (longer attempts land in +Inf). */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The label value for limit keys past `maxLimitKeys`. */
export const OTHER_LIMIT_KEY = '(other)';

const STATUS_CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The status class (label `status_class`) of an attempt: from its response's status when it had one, else from its error. */
export function statusClassOf(status: number | undefined, error: unknown): StatusClass {
  if (status !== undefined) return STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'error';
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof NetworkError) return 'network';
  if (error instanceof ShutdownAbortError) return 'aborted';
  return 'error';
}

export function createWorkerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const maxLimitKeys = options.maxLimitKeys ?? 200;
  if (!Number.isInteger(maxLimitKeys) || maxLimitKeys < 1) {
    throw new TypeError(`maxLimitKeys: expected a whole number of at least 1, received ${String(maxLimitKeys)}`);
  }
  const own = new Registry();
  const registers = [own];
  const requests = new Counter({
    name: 'sluice_requests_total',
    help: 'HTTP attempts made by this worker, by limit key and status class (1xx-5xx, timeout, network, aborted, error).',
    labelNames: ['limit_key', 'status_class'] as const,
    registers,
  });
  const durations = new Histogram({
    name: 'sluice_request_duration_seconds',
    help: 'Duration of HTTP attempts (from the start of the request to the end of its body), by limit key.',
    labelNames: ['limit_key'] as const,
    buckets: [...REQUEST_DURATION_BUCKETS],
    registers,
  });
  const retries = new Counter({
    name: 'sluice_retries_total',
    help: "Failed attempts whose operation was scheduled to run again, by the attempt's error code (HTTP_429 included).",
    labelNames: ['reason'] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: 'sluice_dead_letters_total',
    help: 'Operations dead-lettered by this worker, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const succeeded = new Counter({
    name: 'sluice_operations_succeeded_total',
    help: 'Operations that succeeded (each counted once, however many attempts or pages it took).',
    registers,
  });
  const tokenRequests = new Counter({
    name: 'sluice_token_requests_total',
    help: 'OAuth2 token requests made by this worker (the first token and every refresh), by target and outcome (success, failed, refused).',
    labelNames: ['target', 'outcome'] as const,
    registers,
  });

  // Keys seen so far: a Set lookup per attempt keeps the label set bounded.
  const limitKeys = new Set<string>();
  const limitKeyLabel = (key: string): string => {
    if (limitKeys.has(key)) return key;
    if (limitKeys.size >= maxLimitKeys) return OTHER_LIMIT_KEY;
    limitKeys.add(key);
    return key;
  };

  return {
    registry: options.processMetrics === false ? own : Registry.merge([own, processMetricsRegistry()]),
    request(limitKey, statusClass, durationMs) {
      const key = limitKeyLabel(limitKey);
      // prom-client keeps the first labels object of each series: fresh objects, never reused ones.
      requests.inc({ limit_key: key, status_class: statusClass });
      durations.observe({ limit_key: key }, durationMs / 1_000);
    },
    retry: (reason) => retries.inc({ reason }),
    deadLetter: (reason) => deadLetters.inc({ reason }),
    succeeded: () => succeeded.inc(),
    tokenRequest: (target, outcome) => tokenRequests.inc({ target, outcome }),
  };
}
