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
}

/**
 * A live bar (done/total, rate, ETA) on a terminal; periodic plain lines on stderr otherwise, so
 * logs of scripted runs stay readable.
 */
export function createProgress(io: CliIo, options: ProgressOptions): Progress {
  if (options.quiet) return { update() {}, stop() {} };
  // The rate counts from the first reading, so work done before we started watching is not in it.
  let first: { at: number; done: number } | undefined;
  const rate = (done: number): string => {
    first ??= { at: Date.now(), done };
    const seconds = (Date.now() - first.at) / 1_000;
    return seconds > 0 ? ((done - first.done) / seconds).toFixed(1) : '0.0';
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
      io.stderr.write(`${options.label}: ${done}/${total} (${pct}%) ${rate(done)}/s${extra.detail ? ` ${extra.detail}` : ''}\n`);
    },
    stop() {
      stopped = true;
    },
  };
}
