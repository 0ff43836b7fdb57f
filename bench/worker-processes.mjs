/**
 * Real `sluice` processes (`node bin/sluice.js worker|enqueue …`), as an operator runs them. Each one
 * keeps the tail of its output and its warn/error log lines; `stop()` sends SIGTERM (a graceful
 * shutdown), SIGKILLs after a deadline, and reports the CPU time the process used (Linux /proc).
 * Every process started here is tracked until it exits, so `stopAllWorkers()` in a `finally` (or a
 * signal handler) leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const live = new Set();
const KILL_AFTER_MS = 10_000;
/** Clock ticks per second of /proc/<pid>/stat times; 100 on every mainstream Linux. */
const CLOCK_TICKS = 100;

/**
 * `sluice worker --concurrency N`. `logFile`: also write the process's output there, with the
 * worker logging at `logLevel`.
 * @param {{ root: string, redisUrl: string, queue: string, configPath: string, concurrency: number, nodeArgs?: string[], logLevel?: string, logFile?: string }} options
 */
export function spawnWorker(options) {
  return spawnSluice(options, ['worker', '--concurrency', String(options.concurrency)]);
}

/**
 * `sluice <args>` with the bench's environment (REDIS_URL, SLUICE_QUEUE, SLUICE_CONFIG, LOG_LEVEL;
 * every other SLUICE_* variable of the caller is left out).
 * @param {{ root: string, redisUrl: string, queue: string, configPath: string, nodeArgs?: string[], logLevel?: string, logFile?: string }} options
 * @param {string[]} args
 */
export function spawnSluice(options, args) {
  return spawnNode(options, join(options.root, 'bin', 'sluice.js'), args);
}

/**
 * `node SCRIPT <args>` with the same environment, output capture and tracking as `spawnSluice`
 * (the bench's own minimal processes, bench/minimal-process.mjs).
 * @param {{ root: string, redisUrl: string, queue: string, configPath?: string, nodeArgs?: string[], logLevel?: string, logFile?: string, env?: Record<string, string> }} options
 * @param {string} script
 * @param {string[]} args
 */
export function spawnNode(options, script, args) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_') && name !== 'REDIS_URL' && name !== 'LOG_LEVEL'),
  );
  Object.assign(env, { REDIS_URL: options.redisUrl, SLUICE_QUEUE: options.queue, LOG_LEVEL: options.logLevel ?? 'warn' });
  if (options.configPath) env.SLUICE_CONFIG = options.configPath;
  Object.assign(env, options.env ?? {});
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    cwd: options.root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logFile = options.logFile ? createWriteStream(options.logFile) : undefined;
  if (logFile) {
    child.stdout.pipe(logFile);
    child.stderr.pipe(logFile);
  }
  let tail = '';
  const problems = [];
  let pending = '';
  /** @type {Array<(line: string) => void>} */
  const lineListeners = [];
  child.stdout.on('data', (chunk) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-8_192);
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      for (const listener of lineListeners) listener(line);
      try {
        const entry = JSON.parse(line);
        if (typeof entry.level === 'number' && entry.level >= 40 && problems.length < 50) problems.push(entry);
      } catch {
        // Not a log line.
      }
    }
  });
  child.stderr.on('data', (chunk) => {
    tail = (tail + chunk.toString('utf8')).slice(-8_192);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(handle);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      tail += `\nspawn error: ${error.message}`;
      if (child.pid === undefined) {
        live.delete(handle);
        resolve({ code: null, signal: null });
      }
    });
  });
  let stopping;
  let paused = false;
  const handle = {
    pid: child.pid,
    exited,
    output: () => tail,
    problems: () => [...problems],
    running: () => child.exitCode === null && child.signalCode === null,
    /** Calls `listener` with every line the process prints on stdout from now on. */
    onLine(listener) {
      lineListeners.push(listener);
    },
    /** Resolves with performance.now() when the process prints a line equal to `text` on stdout. */
    line(text) {
      return new Promise((resolve) => lineListeners.push((line) => line.trim() === text && resolve(performance.now())));
    },
    /** Resident memory now and at its peak (VmRSS, VmHWM), in MB; undefined where /proc is not available. */
    memoryMb() {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
        const rss = kb('VmRSS');
        const peak = kb('VmHWM');
        // A process that has exited but is not reaped yet (a zombie) has a status without memory lines.
        if (!Number.isFinite(rss) || !Number.isFinite(peak)) return undefined;
        return { rss: Math.round(rss / 1024), peak: Math.round(peak / 1024) };
      } catch {
        return undefined;
      }
    },
    /** CPU time (user + system) used so far, in ms; undefined where /proc is not available. */
    cpuMs() {
      try {
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
      } catch {
        return undefined;
      }
    },
    /** SIGSTOP: the process is frozen (no timers, no I/O) until `resume()`. */
    pause() {
      if (!handle.running() || stopping) return false;
      paused = true;
      return child.kill('SIGSTOP');
    },
    /** SIGCONT after `pause()`; harmless on a process that is not stopped. */
    resume() {
      paused = false;
      return handle.running() ? child.kill('SIGCONT') : false;
    },
    /** SIGKILL (a crash); resolves when it has exited. */
    kill() {
      if (handle.running()) child.kill('SIGKILL');
      return exited;
    },
    stop() {
      stopping ??= (async () => {
        // A stopped process would not see the SIGTERM until continued.
        if (paused) handle.resume();
        if (handle.running()) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
  live.add(handle);
  return handle;
}

/**
 * Freezes `worker` with SIGSTOP for `stopMs` every `everyMs` (the first time `firstMs` from now),
 * then SIGCONT: a process that stalls now and then (a long GC pause, a VM descheduled, a laptop
 * lid). `stop()` ends the loop and always leaves the process continued; it resolves with what was
 * done: how many stalls and how long each really was (ms).
 * @param {{ pid: number, pause(): boolean, resume(): boolean, running(): boolean }} worker
 * @param {{ everyMs: number, stopMs: number, firstMs?: number }} options
 */
export function startStallLoop(worker, { everyMs, stopMs, firstMs = everyMs }) {
  const lengths = [];
  let timer;
  let stopped = false;
  let pausedAt;
  const resume = () => {
    if (pausedAt === undefined) return;
    worker.resume();
    lengths.push(Math.round(performance.now() - pausedAt));
    pausedAt = undefined;
  };
  const stallAfter = (ms) => {
    timer = setTimeout(() => {
      if (stopped || !worker.running()) return;
      pausedAt = performance.now();
      worker.pause();
      timer = setTimeout(() => {
        resume();
        if (!stopped) stallAfter(Math.max(0, everyMs - stopMs));
      }, stopMs);
    }, ms);
  };
  stallAfter(firstMs);
  // If the bench dies between SIGSTOP and SIGCONT, the worker must not stay frozen.
  const onExit = () => {
    if (pausedAt !== undefined) worker.resume();
  };
  process.once('exit', onExit);
  return {
    pid: worker.pid,
    stop() {
      stopped = true;
      clearTimeout(timer);
      resume();
      process.off('exit', onExit);
      return { stalls: lengths.length, stallMs: [...lengths] };
    },
  };
}

/** Stops every process still running (SIGTERM, then SIGKILL). Never rejects. */
export async function stopAllWorkers() {
  await Promise.allSettled([...live].map((worker) => worker.stop()));
}

/** Last resort on exit of the bench: SIGKILL what is left (synchronous). */
export function killAllWorkersNow() {
  for (const worker of live) {
    try {
      process.kill(worker.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
