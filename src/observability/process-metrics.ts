import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client's default metrics of this process — `process_*` (CPU, memory, file descriptors,
 * start time) and `nodejs_*` (heap, event-loop delay, GC, handles, version) — unprefixed, as every
 * Node exporter names them, so stock dashboards and alerts find them.
 *
 * One registry per process, made on first use (importing this does nothing): collecting starts an
 * event-loop delay monitor and a GC observer, which belong to the process, not to each worker in
 * it. A worker publishes these with its own metrics; `sluice server` adds its own, unlabelled.
 */
let shared: Registry | undefined;

export function processMetricsRegistry(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
