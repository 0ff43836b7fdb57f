/**
 * Real `sluice worker` processes (`node bin/sluice.js worker`), as an operator runs them. Each one
 * keeps the tail of its output and its warn/error log lines; `stop()` sends SIGTERM (a graceful
 * shutdown), SIGKILLs after a deadline, and reports the CPU time the process used (Linux /proc).
 * Every process started here is tracked until it exits, so `stopAllWorkers()` in a `finally` (or a
 * signal handler) leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const live = new Set();
const KILL_AFTER_MS = 10_000;
/** Clock ticks per second of /proc/<pid>/stat times; 100 on every mainstream Linux. */
const CLOCK_TICKS = 100;

/**
 * @param {{ root: string, redisUrl: string, queue: string, configPath: string, concurrency: number, nodeArgs?: string[] }} options
 */
export function spawnWorker(options) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_') && name !== 'REDIS_URL' && name !== 'LOG_LEVEL'),
  );
  Object.assign(env, { REDIS_URL: options.redisUrl, SLUICE_QUEUE: options.queue, SLUICE_CONFIG: options.configPath, LOG_LEVEL: 'warn' });
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), join(options.root, 'bin', 'sluice.js'), 'worker', '--concurrency', String(options.concurrency)],
    { cwd: options.root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const problems = [];
  let pending = '';
  child.stdout.on('data', (chunk) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-8_192);
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
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
  const handle = {
    pid: child.pid,
    exited,
    output: () => tail,
    problems: () => [...problems],
    running: () => child.exitCode === null && child.signalCode === null,
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
    stop() {
      stopping ??= (async () => {
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

/** Stops every worker still running (SIGTERM, then SIGKILL). Never rejects. */
export async function stopAllWorkers() {
  await Promise.allSettled([...live].map((worker) => worker.stop()));
}

/** Last resort on process exit: SIGKILL what is left (synchronous). */
export function killAllWorkersNow() {
  for (const worker of live) {
    try {
      process.kill(worker.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
