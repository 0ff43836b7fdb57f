/**
 * What Redis did during a run: `INFO commandstats` call counts (commands that Lua scripts run are
 * counted too, under their own names) and the server's CPU time from `INFO cpu`. Of one server, or
 * of each node of a cluster (`…Of(nodes)`: a plain connection to each node, as INFO is per node).
 */

/** Zeroes the command counters (`CONFIG RESETSTAT`). */
export async function resetStats(redis) {
  await redis.config('RESETSTAT');
}

/**
 * Calls and time (µs inside Redis) per command since the last reset, without the bench's own
 * bookkeeping: the INFO that reads them, the CONFIG RESETSTAT that started the window. A script's
 * time includes the commands it ran (which also count on their own lines).
 * @returns {Promise<{ calls: Record<string, number>, usec: Record<string, number> }>}
 */
export async function commandStats(redis) {
  const info = await redis.info('commandstats');
  const calls = {};
  const usec = {};
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (!match) continue;
    calls[match[1]] = Number(match[2]);
    usec[match[1]] = Number(match[3]);
  }
  subtract(calls, 'info', 1);
  subtract(calls, 'config|resetstat', 1);
  return { calls, usec };
}

/** Redis CPU time (user + system, all threads) in ms since it started. */
export async function redisCpuMs(redis) {
  const info = await redis.info('cpu');
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}

/** `resetStats` on each of `nodes` ({ redis }). */
export const resetStatsOf = (nodes) => Promise.all(nodes.map((node) => resetStats(node.redis)));

/** `commandStats` of each of `nodes`, in their order. */
export const commandStatsOf = (nodes) => Promise.all(nodes.map((node) => commandStats(node.redis)));

/** `redisCpuMs` of each of `nodes`, in their order. */
export const redisCpuMsOf = (nodes) => Promise.all(nodes.map((node) => redisCpuMs(node.redis)));

/** Calls and time per command summed over several `commandStats` readings (one reading as it is). */
export function sumStats(readings) {
  if (readings.length === 1) return readings[0];
  const calls = {};
  const usec = {};
  for (const reading of readings) {
    for (const [name, n] of Object.entries(reading.calls)) calls[name] = (calls[name] ?? 0) + n;
    for (const [name, n] of Object.entries(reading.usec)) usec[name] = (usec[name] ?? 0) + n;
  }
  return { calls, usec };
}

export function subtract(calls, name, count) {
  if (calls[name] === undefined) return;
  calls[name] -= count;
  if (calls[name] <= 0) delete calls[name];
}

export const totalCalls = (calls) => Object.values(calls).reduce((sum, n) => sum + n, 0);

/** Calls per operation, largest first. */
export function perOperation(calls, operations) {
  return Object.fromEntries(
    Object.entries(calls)
      .sort(([, a], [, b]) => b - a)
      .map(([name, n]) => [name, round(n / operations, 3)]),
  );
}

export const round = (value, digits = 2) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value);
