/**
 * A private `redis-server` child process on a free loopback port, for tests, benchmarks and
 * `sluice demo`. Nothing runs at import time; the caller owns the handle and stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SluiceError } from '../errors.js';

export interface RedisServerOptions {
  /** Port to listen on; default: a free loopback port (retried on a new one if Redis cannot bind). */
  port?: number;
  /** The executable; default `redis-server` from PATH. */
  bin?: string;
  /** Extra arguments, appended after the defaults so they can override them. */
  args?: string[];
  /**
   * A Redis Cluster node (see redis-cluster.ts): cluster mode on, its state in the private
   * directory (kept across `restart()`), its cluster bus on a free port of its own.
   */
  cluster?: { nodeTimeoutMs: number };
}

export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** The pid of the current child (changes on `restart()`). */
  readonly pid: number;
  /** The private working directory (removed by `stop()`). */
  readonly dir: string;
  /** SIGTERM, wait for exit, SIGKILL after 3 s; removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (a crash); `restart()` brings it back. */
  kill(): Promise<void>;
  /** Stops the child if it still runs, starts it again on the same port and waits for PING. */
  restart(): Promise<void>;
}

const NOT_FOUND_MESSAGE =
  'redis-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server; ' +
  'macOS: brew install redis) or set REDIS_URL to a running Redis.';
const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const KILL_AFTER_MS = 3_000;
const START_ATTEMPTS = 5;

/** A spawned child plus what we learn about it while it runs. `done`: it exited or never spawned. */
interface Proc {
  child: ChildProcess;
  done: Promise<void>;
  finished(): boolean;
  spawnError(): NodeJS.ErrnoException | undefined;
  /** The last 4 KiB of its stdout and stderr. */
  output(): string;
}

// Children and directories started by this module and not yet cleaned up. The one process-level
// hook this module installs (lazily, on the first start) is a `process.on('exit')` listener that
// SIGKILLs those children and removes those directories, so that a test run or CLI that exits
// without calling `stop()` never leaves a stray redis-server behind. It is synchronous by nature.
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function killLeftovers(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killLeftovers);
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const bin = options.bin ?? 'redis-server';
  const extraArgs = options.args ?? [];
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-'));
  liveDirs.add(dir);
  // A cluster node's bus port: by default its port + 10000, which may be taken or past 65535.
  let busPort: number | undefined;
  const clusterArgs = async (): Promise<string[]> => {
    if (!options.cluster) return [];
    busPort ??= await findFreePort();
    return [
      ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      ...['--cluster-node-timeout', String(options.cluster.nodeTimeoutMs), '--cluster-port', String(busPort)],
    ];
  };
  let launched = false;
  const launch = async (port: number): Promise<Proc> => {
    try {
      const proc = await launchReady(bin, port, dir, [...(await clusterArgs()), ...extraArgs]);
      launched = true;
      return proc;
    } catch (error) {
      // Before the first start, a bus port that was taken is chosen again; a restart keeps its own.
      if (!launched) busPort = undefined;
      throw error;
    }
  };

  let port: number;
  let proc: Proc;
  try {
    ({ port, proc } = await launchWithRetry(launch, options.port));
  } catch (error) {
    await removeDir(dir);
    throw error;
  }

  let stopping: Promise<void> | undefined;
  let restarting: Promise<void> | undefined;

  const doRestart = async (): Promise<void> => {
    await terminate(proc);
    proc = (await launchWithRetry(launch, port)).proc;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get pid() {
      return proc.child.pid ?? -1;
    },
    stop() {
      stopping ??= (async () => {
        await restarting?.catch(() => undefined);
        await terminate(proc);
        await removeDir(dir);
      })();
      return stopping;
    },
    async kill() {
      proc.child.kill('SIGKILL');
      await proc.done;
    },
    restart() {
      if (stopping) {
        return Promise.reject(new SluiceError('cannot restart a stopped redis-server', { code: 'REDIS_STOPPED' }));
      }
      restarting ??= doRestart().finally(() => {
        restarting = undefined;
      });
      return restarting;
    },
  };
}

/** With a fixed port: a few tries on that port. Without: a fresh free port for each try. */
async function launchWithRetry(
  launch: (port: number) => Promise<Proc>,
  fixedPort: number | undefined,
): Promise<{ port: number; proc: Proc }> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = fixedPort ?? (await findFreePort());
    try {
      return { port, proc: await launch(port) };
    } catch (error) {
      if (!(error instanceof SluiceError && error.code === 'REDIS_PORT_IN_USE')) throw error;
      lastError = error;
      if (fixedPort !== undefined) await delay(100 * attempt);
    }
  }
  throw lastError;
}

async function launchReady(bin: string, port: number, dir: string, extraArgs: string[]): Promise<Proc> {
  const proc = spawnProc(bin, [
    ...['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
    ...['--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--dir', dir, ...extraArgs],
  ]);
  try {
    await waitUntilReady(proc, port);
    return proc;
  } catch (error) {
    await terminate(proc);
    throw error;
  }
}

function spawnProc(bin: string, args: string[]): Proc {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  let spawnError: NodeJS.ErrnoException | undefined;
  let finished = false;
  const collect = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  liveChildren.add(child);
  const done = new Promise<void>((resolve) => {
    const finish = (): void => {
      finished = true;
      liveChildren.delete(child);
      resolve();
    };
    child.once('exit', finish);
    child.once('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
      // A spawn failure emits no 'exit'; any other error is followed by one.
      if (child.pid === undefined) finish();
    });
  });
  return { child, done, finished: () => finished, spawnError: () => spawnError, output: () => tail };
}

async function waitUntilReady(proc: Proc, port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (proc.finished()) throw startFailure(proc, port);
    if ((await ping('127.0.0.1', port, 250)) && !proc.finished()) return;
    if (Date.now() > deadline) {
      const message = `redis-server did not answer PING on port ${port} within ${READY_TIMEOUT_MS} ms${outputSuffix(proc)}`;
      throw new SluiceError(message, { code: 'REDIS_START_TIMEOUT' });
    }
    await Promise.race([delay(POLL_MS), proc.done]);
  }
}

function startFailure(proc: Proc, port: number): SluiceError {
  const spawnError = proc.spawnError();
  if (spawnError?.code === 'ENOENT') return new SluiceError(NOT_FOUND_MESSAGE, { code: 'REDIS_NOT_FOUND', cause: spawnError });
  if (spawnError) {
    return new SluiceError(`could not start redis-server: ${spawnError.message}`, { code: 'REDIS_START_FAILED', cause: spawnError });
  }
  const inUse = /address already in use|could not create server tcp listening socket/i.test(proc.output());
  const how = proc.child.signalCode ?? `code ${proc.child.exitCode}`;
  const message = `redis-server exited (${how}) before answering PING on port ${port}${outputSuffix(proc)}`;
  return new SluiceError(message, { code: inUse ? 'REDIS_PORT_IN_USE' : 'REDIS_START_FAILED' });
}

function outputSuffix(proc: Proc): string {
  const output = proc.output().trim();
  return output ? `; its output ended with:\n${output}` : '';
}

/** SIGTERM, then SIGKILL if the child has not exited after 3 s. */
async function terminate(proc: Proc): Promise<void> {
  if (proc.finished()) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), KILL_AFTER_MS);
  try {
    await proc.done;
  } finally {
    clearTimeout(timer);
  }
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether a Redis answers at `redis://host:port` within `timeoutMs`: a PING answered `+PONG`, or
 * `-NOAUTH` (a Redis that wants a password). False on refusal, timeout or any other answer.
 */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    const message = `redisAnswers: expected a redis://host:port URL, received ${JSON.stringify(url)}`;
    throw new SluiceError(message, { code: 'REDIS_URL_INVALID', cause: error });
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  return ping(host, Number(parsed.port || 6379), timeoutMs);
}

function ping(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = createConnection({ host, port });
    const finish = (result: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (!answer.includes('\r\n') && answer.length < 64) return;
      finish(answer.startsWith('+PONG') || answer.startsWith('-NOAUTH'));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}
