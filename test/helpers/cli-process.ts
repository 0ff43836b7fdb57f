/**
 * Runs the built `sluice` command (`node bin/sluice.js`, which loads `dist/`) as child processes
 * for end-to-end tests: collects stdout/stderr, parses pino log lines, waits for exit with a
 * timeout, and makes sure every process it started is gone when its test (or file) ends.
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { packageRoot } from '../../src/support/package-root.js';

export const SLUICE_BIN = join(packageRoot(), 'bin', 'sluice.js');
const BUILT_ENTRY = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

let staleWarned = false;

/**
 * The e2e tests run the compiled CLI; say so plainly when it is not there, and warn (once) when a
 * source file is newer than the build, since the tests would then run yesterday's code.
 */
export function assertBuilt(): void {
  if (!existsSync(BUILT_ENTRY)) {
    throw new Error(
      `the e2e tests run the built CLI, but ${BUILT_ENTRY} does not exist: run \`npm run build\` first (\`npm test\` builds before it tests)`,
    );
  }
  if (staleWarned) return;
  staleWarned = true;
  const builtAt = statSync(BUILT_ENTRY).mtimeMs;
  const sources = join(packageRoot(), 'src');
  const newer = readdirSync(sources, { recursive: true, encoding: 'utf8' }).filter(
    (file) => file.endsWith('.ts') && statSync(join(sources, file)).mtimeMs > builtAt,
  );
  if (newer.length > 0) {
    console.warn(
      `e2e: dist/ is older than src/${newer[0]}${newer.length > 1 ? ` and ${newer.length - 1} more` : ''}: these tests run the built CLI; run \`npm run build\` (or \`npm test\`)`,
    );
  }
}

/** The clock of `test/helpers/target-server.ts` (`startedAt`/`endedAt`), so times compare. */
export const now = (): number => performance.timeOrigin + performance.now();

/** One pino JSON line from a child's stdout. */
export interface LogLine {
  msg?: string;
  level?: number;
  pid?: number;
  [field: string]: unknown;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to (and overriding) the harness's base environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  input?: string;
  /** Default: the harness's temporary directory. */
  cwd?: string;
  /**
   * Close the reading end of stdout once this many lines came, as `| head -n N` does (0: at once,
   * as `| true` does); the process's next write to it fails with EPIPE.
   */
  closeStdoutAfterLines?: number;
}

export interface CliProcess {
  readonly args: readonly string[];
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** stdout lines that are JSON objects (pino logs), in order. */
  logs(): LogLine[];
  /** False once the process has exited. */
  running(): boolean;
  /** When it exited, on the `now()` clock. */
  exitedAt(): number | undefined;
  /** Resolves once it exited and its pipes closed; never rejects. */
  readonly closed: Promise<CliResult>;
  /** Waits for the exit; past the timeout it kills the process group and throws with the output. */
  waitForExit(timeoutMs?: number): Promise<CliResult>;
  /** The first log line (seen so far or later) whose `msg` equals `match`, or that `match` accepts. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal to this process only. */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL to its whole process group (the demo starts workers of its own); waits until closed. */
  kill(): Promise<CliResult>;
}

// Processes started here and not yet closed: stopped by the test or file that started them, and
// SIGKILLed by an exit hook should the test process end first.
const live = new Set<CliProcess>();
let exitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const proc of live) if (proc.running()) killGroup(proc.pid);
  });
}

const INHERITED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'SYSTEMROOT'];

/** Only what a shell user would have: no SLUICE_*, REDIS_URL or NODE_OPTIONS leaking in from the runner. */
function childEnv(...layers: (Record<string, string | undefined> | undefined)[]): Record<string, string> {
  const merged: Record<string, string | undefined> = {};
  for (const name of INHERITED_ENV) merged[name] = process.env[name];
  for (const layer of layers) Object.assign(merged, layer);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(merged)) if (value !== undefined) out[name] = value;
  return out;
}

function tail(text: string, max = 3_000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** Spawns `node bin/sluice.js ...args` in its own process group. */
export function spawnCli(args: readonly string[], options: CliOptions & { cwd: string }): CliProcess {
  assertBuilt();
  installExitHook();
  const child: ChildProcess = spawnChild(process.execPath, [SLUICE_BIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not spawn sluice ${args.join(' ')}`);
  const pid = child.pid;

  let stdout = '';
  let stderr = '';
  let partial = '';
  let exitedAt: number | undefined;
  const logs: LogLine[] = [];
  const logWaiters = new Set<{ accepts: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();

  const describe = (): string => `sluice ${args.join(' ')} (pid ${pid})\n--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`;

  child.stdin?.on('error', () => undefined);
  if (options.input !== undefined) child.stdin?.write(options.input);
  child.stdin?.end();
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  const closeAfter = options.closeStdoutAfterLines;
  if (closeAfter === 0) child.stdout?.destroy();
  child.stdout?.on('data', (chunk: string) => {
    stdout += chunk;
    if (closeAfter !== undefined && stdout.split('\n').length > closeAfter) child.stdout?.destroy();
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const waiter of logWaiters) if (waiter.accepts(line)) waiter.resolve(line);
    }
  });
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.once('exit', () => {
    exitedAt = now();
  });
  const closed = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });

  const proc: CliProcess = {
    args,
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => [...logs],
    running: () => exitedAt === undefined && child.exitCode === null && child.signalCode === null,
    exitedAt: () => exitedAt,
    closed,
    async waitForExit(timeoutMs = 20_000) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([closed, timedOut]);
      clearTimeout(timer);
      if (outcome !== 'timeout') return outcome;
      killGroup(pid);
      await closed;
      throw new Error(`did not exit within ${timeoutMs} ms (killed): ${describe()}`);
    },
    waitForLog(match, timeoutMs = 20_000) {
      const accepts = typeof match === 'string' ? (line: LogLine) => line.msg === match : match;
      const seen = logs.find(accepts);
      if (seen) return Promise.resolve(seen);
      const what = typeof match === 'string' ? JSON.stringify(match) : 'a matching line';
      return new Promise<LogLine>((resolve, reject) => {
        const waiter = {
          accepts,
          resolve: (line: LogLine) => {
            finish();
            resolve(line);
          },
        };
        const finish = (): void => {
          clearTimeout(timer);
          logWaiters.delete(waiter);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no log line ${what} within ${timeoutMs} ms: ${describe()}`));
        }, timeoutMs);
        logWaiters.add(waiter);
        closed.then(
          () => {
            if (!logWaiters.has(waiter)) return;
            finish();
            reject(new Error(`exited before logging ${what}: ${describe()}`));
          },
          () => undefined,
        );
      });
    },
    signal(signal) {
      child.kill(signal);
    },
    async kill() {
      killGroup(pid);
      return closed;
    },
  };
  live.add(proc);
  return proc;
}

/** Stops a leftover process: SIGTERM (a worker shuts down cleanly), SIGKILL to its group after 5 s. */
async function stop(proc: CliProcess): Promise<void> {
  if (proc.running()) {
    proc.signal('SIGTERM');
    const timer = setTimeout(() => killGroup(proc.pid), 5_000);
    await proc.closed;
    clearTimeout(timer);
  }
  await proc.closed;
}

export interface CliHarness {
  /** This file's temporary working directory (removed in afterAll). */
  dir(): string;
  /** Writes a file into `dir()` and returns its absolute path. */
  file(name: string, content: string): Promise<string>;
  /** Starts the CLI and returns at once. */
  spawn(args: readonly string[], options?: CliOptions): CliProcess;
  /** Runs the CLI to its exit (default timeout 20 s). */
  run(args: readonly string[], options?: CliOptions & { timeoutMs?: number }): Promise<CliResult>;
  /** Starts `count` × `sluice worker` and resolves once each has logged "worker started". */
  startWorkers(count: number, options?: CliOptions & { concurrency?: number; args?: string[] }): Promise<CliProcess[]>;
  /**
   * Lets operations call these loopback servers: a target per URL with `allowPrivateAddresses`, in
   * a config file every later spawn gets as SLUICE_CONFIG (unless a test gives its own; merge
   * `localTargets()` into that).
   */
  allowLocal(...urls: string[]): Promise<void>;
  /** The targets allowLocal() made so far. */
  localTargets(): Record<string, { baseUrl: string; allowPrivateAddresses: true }>;
}

/**
 * For a test file: `const cli = useCli(() => ({ REDIS_URL: redis().url }))`. The base environment
 * is read at each spawn (LOG_LEVEL defaults to info). A process started inside a test is stopped
 * when that test finishes; one started in a hook, when the file ends. Call it after
 * `useRedisServer()` so processes stop before their Redis does.
 */
export function useCli(baseEnv: () => Record<string, string | undefined> = () => ({})): CliHarness {
  let dir: string | undefined;
  const mine = new Set<CliProcess>();
  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
  });
  afterAll(async () => {
    await Promise.all([...mine].map(stop));
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const workDir = (): string => {
    if (!dir) throw new Error('useCli(): use the harness inside a test or hook');
    return dir;
  };

  const local: Record<string, { baseUrl: string; allowPrivateAddresses: true }> = {};
  let localConfig: string | undefined;

  const spawn = (args: readonly string[], options: CliOptions = {}): CliProcess => {
    const env = { LOG_LEVEL: 'info', ...(localConfig ? { SLUICE_CONFIG: localConfig } : {}), ...baseEnv(), ...options.env };
    const proc = spawnCli(args, { ...options, cwd: options.cwd ?? workDir(), env });
    mine.add(proc);
    void proc.closed.then(() => mine.delete(proc));
    try {
      onTestFinished(() => stop(proc));
    } catch {
      // Started in a hook, outside any test: afterAll stops it.
    }
    return proc;
  };

  return {
    dir: workDir,
    async file(name, content) {
      const path = join(workDir(), name);
      await writeFile(path, content);
      return path;
    },
    spawn,
    run(args, options = {}) {
      return spawn(args, options).waitForExit(options.timeoutMs);
    },
    async startWorkers(count, options = {}) {
      const args = [
        'worker',
        ...(options.concurrency === undefined ? [] : ['--concurrency', String(options.concurrency)]),
        ...(options.args ?? []),
      ];
      const workers = Array.from({ length: count }, () => spawn(args, options));
      await Promise.all(workers.map((worker) => worker.waitForLog('worker started')));
      return workers;
    },
    async allowLocal(...urls) {
      for (const url of urls) local[`local-${new URL(url).port}`] = { baseUrl: url, allowPrivateAddresses: true };
      localConfig = join(workDir(), 'local-targets.config.json');
      await writeFile(localConfig, JSON.stringify({ targets: local }));
    },
    localTargets: () => ({ ...local }),
  };
}
