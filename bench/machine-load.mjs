/**
 * How busy the whole machine was during a run, from Linux `/proc/stat` (undefined elsewhere). The
 * bench subtracts the CPU of its own processes (itself, the workers, redis-server) to show how much
 * other software competed for the cores: a run with a high figure measured a shared machine.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc/stat; 100 on every mainstream Linux. */
const CLOCK_TICKS = 100;

/** Busy CPU time of all cores so far, in ms; undefined where /proc/stat is not available. */
export function machineBusyMs() {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...fields] = first.trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
    return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** This process's CPU time (user + system) so far, in ms. */
export function ownCpuMs() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/**
 * Other software's load over a span: call `stop(knownCpuMs)` with the CPU time of the bench's child
 * processes and Redis over the span; returns the cores the rest of the machine used on average
 * (undefined where /proc/stat is not available).
 */
export function startLoadMeter() {
  const machine = machineBusyMs();
  const own = ownCpuMs();
  const startedAt = performance.now();
  return (knownCpuMs) => {
    const busy = machineBusyMs();
    if (busy === undefined || machine === undefined) return undefined;
    return (busy - machine - (ownCpuMs() - own) - knownCpuMs) / (performance.now() - startedAt);
  };
}

/** The machine a run measured, as its results record it. */
export function describeMachine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${platform()} ${release()}`,
    node: process.version,
    redis: redisVersion(),
  };
}

function redisVersion() {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'redis-server not found';
  }
}
