import { randomInt } from 'node:crypto';
import type { Circuit } from '../config/circuit-schema.js';
import type { Logger } from '../observability/logger.js';
import { limiterKeys } from '../redis/keys.js';
import type { KeyState } from './key-state.js';
import type { LimitIndex } from './limit-index.js';

/** How a request ended, as circuits count it: an answer's status, or a failure to get one. */
export type RequestOutcome = { status: number } | { failure: 'network' | 'timeout' };

/** A circuit opened or closed, by this process's report. */
export interface CircuitTransition {
  key: string;
  to: 'opened' | 'closed';
  /** Attempts and failures in the window when it opened. */
  attempts: number;
  failures: number;
}

export interface CircuitReporter {
  /**
   * Counts a request's outcome on its keys (undefined: it was never sent, or failed before the
   * target could answer for itself, and counts for nothing). `probes`: the keys it probed.
   */
  record(keys: readonly string[], outcome: RequestOutcome | undefined, probes: readonly string[]): void;
  /** Sends what is still counted here, and stops. */
  close(): Promise<void>;
}

interface Pending {
  attempts: number;
  failures: number;
  probe: '' | 'success' | 'failure' | 'abandoned';
}

/** Successes alone are sent this often; failures and probes at once (failures open a circuit). */
const SUCCESS_FLUSH_MS = 1_000;

export interface CircuitReporterDeps {
  /** The report script (redis/lua/circuit-report.lua). */
  reportScript: (...args: (string | number)[]) => Promise<unknown>;
  keyState: KeyState;
  /** Bumped on a transition, so every worker notices it. */
  index: LimitIndex;
  logger: Logger;
  /** Told of every transition this process's reports made (log, metrics, waking the waiters). */
  onTransition: (transition: CircuitTransition) => void;
  /** Told when a key's circuit is open, as a report found it: its slots taken ahead are dropped. */
  onOpen: (key: string) => void;
}

/**
 * Each process counts its requests' outcomes per key and reports them to the key's shared window in
 * Redis: at once when something failed or a probe ended, else once a second, one call per key.
 */
export function createCircuitReporter(deps: CircuitReporterDeps): CircuitReporter {
  const { keyState, logger } = deps;
  const pending = new Map<string, Pending>();
  const sending = new Map<string, Promise<void>>();
  let soon: NodeJS.Immediate | undefined;
  const timer = setInterval(() => void flush(), SUCCESS_FLUSH_MS);
  timer.unref();

  function count(key: string, circuit: Circuit, outcome: RequestOutcome | undefined, probe: boolean): boolean {
    const entry = pending.get(key) ?? { attempts: 0, failures: 0, probe: '' };
    pending.set(key, entry);
    const failed = outcome !== undefined && circuit.failOn.includes('status' in outcome ? outcome.status : outcome.failure);
    if (outcome) entry.attempts += 1;
    if (failed) entry.failures += 1;
    if (probe) entry.probe = outcome === undefined ? 'abandoned' : failed ? 'failure' : 'success';
    return failed || probe;
  }

  async function send(key: string): Promise<void> {
    const entry = pending.get(key);
    const circuit = keyState.circuitOf(key);
    if (!entry || !circuit || sending.has(key)) return;
    pending.delete(key);
    const call = deps
      .reportScript(
        ...[2, limiterKeys.state(key), limiterKeys.circuitWindow(key)],
        ...[entry.attempts, entry.failures, circuit.failureRatio, circuit.minAttempts, circuit.windowMs],
        ...[circuit.probeIntervalMs, circuit.maxProbeIntervalMs, entry.probe, randomInt(1_000_000) / 1_000_000],
      )
      .then(async (reply) => {
        const [state, transition, attempts, failures] = reply as [string, string, number, number];
        if (state === 'open') deps.onOpen(key);
        if (transition === 'opened' || transition === 'closed') {
          deps.onTransition({ key, to: transition, attempts, failures });
          // Other workers learn of it at their next refresh after the bump (this one knows already).
          await deps.index
            .changed([key])
            .catch((error: unknown) => logger.warn({ err: error, limitKey: key }, 'could not tell the fleet of the circuit transition'));
        }
      })
      .catch((error: unknown) => logger.warn({ err: error, limitKey: key }, 'could not report to the circuit breaker'))
      .finally(() => {
        sending.delete(key);
        // What came in meanwhile and cannot wait (a failure, a probe) goes now.
        const next = pending.get(key);
        if (next && (next.failures > 0 || next.probe !== '')) void send(key);
      });
    sending.set(key, call);
    await call;
  }

  async function flush(): Promise<void> {
    await Promise.all([...pending.keys()].map((key) => send(key)));
  }

  return {
    record(keys, outcome, probes) {
      let urgent = false;
      for (const key of keys) {
        const circuit = keyState.circuitOf(key);
        if (circuit && count(key, circuit, outcome, probes.includes(key))) urgent = true;
      }
      if (urgent && !soon) {
        soon = setImmediate(() => {
          soon = undefined;
          void flush();
        });
      }
    },
    async close() {
      clearInterval(timer);
      if (soon) clearImmediate(soon);
      await Promise.all(sending.values());
      await flush();
      await Promise.all(sending.values());
    },
  };
}
