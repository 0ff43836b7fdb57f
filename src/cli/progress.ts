import cliProgress from 'cli-progress';
import type { CliIo } from './context.js';

export interface Progress {
  update(done: number, extra?: { total?: number; detail?: string }): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Print nothing (e.g. with --json). */
  quiet?: boolean;
  /** Without a terminal: one plain line at most this often. Default 5,000 ms. */
  plainIntervalMs?: number;
  /** What is counted: items (default) or bytes (shown as KB, MB, GB). */
  unit?: 'items' | 'bytes';
}

/** 1536 → `1.5 KB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A live bar (done/total, rate, ETA) on a terminal; periodic plain lines on stderr otherwise, so
 * logs of scripted runs stay readable.
 */
export function createProgress(io: CliIo, options: ProgressOptions): Progress {
  if (options.quiet) return { update() {}, stop() {} };
  // The rate counts from the first reading, so work done before we started watching is not in it.
  let first: { at: number; done: number } | undefined;
  const bytes = options.unit === 'bytes';
  const count = (n: number): string => (bytes ? formatBytes(n) : String(n));
  const rate = (done: number): string => {
    first ??= { at: Date.now(), done };
    const seconds = (Date.now() - first.at) / 1_000;
    const perSecond = seconds > 0 ? (done - first.done) / seconds : 0;
    return bytes ? formatBytes(perSecond) : perSecond.toFixed(1);
  };
  let total = options.total;
  let stopped = false;

  if (io.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: io.stderr,
        format: `${options.label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted} {detail}`,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
        ...(bytes
          ? {
              formatValue: (value: number, _options: unknown, type: string) => (type === 'percentage' ? String(value) : formatBytes(value)),
            }
          : {}),
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0.0', detail: '' });
    return {
      update(done, extra = {}) {
        if (stopped) return;
        if (extra.total !== undefined && extra.total !== total) {
          total = extra.total;
          bar.setTotal(total);
        }
        bar.update(done, { rate: rate(done), detail: extra.detail ?? '' });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }

  const interval = options.plainIntervalMs ?? 5_000;
  let lastPrinted = 0;
  let last = -1;
  return {
    update(done, extra = {}) {
      if (stopped) return;
      if (extra.total !== undefined) total = extra.total;
      const now = Date.now();
      if (now - lastPrinted < interval && done < total) return;
      if (done === last && done >= total) return;
      lastPrinted = now;
      last = done;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      io.stderr.write(
        `${options.label}: ${count(done)}/${count(total)} (${pct}%) ${rate(done)}/s${extra.detail ? ` ${extra.detail}` : ''}\n`,
      );
    },
    stop() {
      stopped = true;
    },
  };
}
