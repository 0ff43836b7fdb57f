/**
 * Turns the runs into figures (medians, targets PASS/MISS), a text table for the terminal and
 * BENCHMARKS.md. Every number printed comes from the results object.
 */
import { round } from './redis-stats.mjs';

export const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const list = (values, digits = 0) => values.map((v) => (typeof v === 'number' ? v.toFixed(digits) : String(v))).join(', ');
const verdict = (ok) => (ok === undefined ? '' : ok ? 'PASS' : 'MISS');

/** The figures of a whole bench run. */
export function summarise(results) {
  const figures = {};
  const { throughput, accuracy } = results;
  if (throughput) {
    const a = throughput.filter((run) => run.variant === 'A');
    const b = throughput.filter((run) => run.variant === 'B');
    const aJps = median(a.map((run) => run.jobsPerSecond));
    const bJps = median(b.map((run) => run.jobsPerSecond));
    const pairs = a.map((runA, i) => (b[i] ? round(b[i].jobsPerSecond / runA.jobsPerSecond, 3) : undefined)).filter(Boolean);
    const perOp = (runs, pick) => median(runs.map(pick));
    const limiterByCommand = {};
    for (const name of new Set([...b, ...a].flatMap((run) => Object.keys(run.redis.workerCallsPerOpByCommand)))) {
      const diff = (perOp(b, (run) => run.redis.workerCallsPerOpByCommand[name] ?? 0) ?? 0) - (perOp(a, (run) => run.redis.workerCallsPerOpByCommand[name] ?? 0) ?? 0);
      if (Math.abs(diff) >= 0.005) limiterByCommand[name] = round(diff, 3);
    }
    figures.throughput = {
      aJobsPerSecond: aJps,
      bJobsPerSecond: bJps,
      aRuns: a.map((run) => run.jobsPerSecond),
      bRuns: b.map((run) => run.jobsPerSecond),
      ratio: round(bJps / aJps, 3),
      pairRatios: pairs,
      target: 0.9,
      pass: bJps / aJps >= 0.9,
      workerCpuUsPerOp: { A: perOp(a, (run) => run.workerCpuUsPerOp), B: perOp(b, (run) => run.workerCpuUsPerOp) },
    };
    figures.redisCost = {
      A: redisCost(a),
      B: redisCost(b),
      limiterCallsPerOp: round(perOp(b, (run) => run.redis.workerCallsPerOp) - perOp(a, (run) => run.redis.workerCallsPerOp), 2),
      limiterCallsPerOpByCommand: Object.fromEntries(Object.entries(limiterByCommand).sort(([, x], [, y]) => Math.abs(y) - Math.abs(x))),
    };
  }
  if (accuracy) {
    const limit = accuracy[0].rate + accuracy[0].burst;
    const ratios = accuracy.map((run) => run.achievedRatio);
    const maxStarts = accuracy.map((run) => run.maxStartsIn1s);
    const rejected = accuracy.map((run) => run.rejected);
    figures.accuracy = {
      rate: accuracy[0].rate,
      burst: accuracy[0].burst,
      achievedRatio: median(ratios),
      achievedRatioRuns: ratios,
      achievedPerSecond: median(accuracy.map((run) => run.achievedPerSecond)),
      ratioPass: median(ratios) >= 0.95,
      maxStartsIn1s: { median: median(maxStarts), worst: Math.max(...maxStarts), runs: maxStarts, bound: limit, pass: Math.max(...maxStarts) <= limit },
      rejected: { median: median(rejected), worst: Math.max(...rejected), runs: rejected, pass: Math.max(...rejected) === 0 },
      redisCallsPerOp: median(accuracy.map((run) => run.redis.workerCallsPerOp)),
      evalshaPerOp: median(accuracy.map((run) => run.redis.evalshaPerOp)),
      deadLettered: accuracy.reduce((sum, run) => sum + run.deadLettered, 0),
      retries: accuracy.reduce((sum, run) => sum + run.retries, 0),
    };
  }
  return figures;
}

function redisCost(runs) {
  return {
    callsPerOp: median(runs.map((run) => run.redis.callsPerOp)),
    workerCallsPerOp: median(runs.map((run) => run.redis.workerCallsPerOp)),
    enqueueCallsPerOp: median(runs.map((run) => run.redis.enqueueCallsPerOp)),
    evalshaPerOp: median(runs.map((run) => run.redis.evalshaPerOp)),
    cpuUsPerOp: median(runs.map((run) => run.redis.cpuUsPerOp)),
  };
}

/** Rows of [figure, value, target, verdict]. */
export function rows(results, figures) {
  const out = [];
  const t = figures.throughput;
  const { params } = results;
  if (t) {
    const shape = `${params.throughputOps} POSTs, 1 worker × ${params.throughputConcurrency}`;
    out.push([`1. Throughput A, no limits (${shape}), jobs/s`, `${t.aJobsPerSecond.toFixed(0)} (runs ${list(t.aRuns)})`, '', '']);
    out.push([`1. Throughput B, limit not binding (1e6/s burst 1000), jobs/s`, `${t.bJobsPerSecond.toFixed(0)} (runs ${list(t.bRuns)})`, '', '']);
    out.push(['1. Ratio B/A', `${t.ratio.toFixed(3)} (pairs ${list(t.pairRatios, 3)})`, '>= 0.90', verdict(t.pass)]);
  }
  const a = figures.accuracy;
  if (a) {
    const shape = `${params.accuracyOps} ops, ${params.accuracyProcesses} workers × ${params.accuracyConcurrency}, ${a.rate}/s burst ${a.burst}`;
    out.push([`2. Achieved / limit (${shape})`, `${a.achievedRatio.toFixed(3)} = ${a.achievedPerSecond.toFixed(2)}/s (runs ${list(a.achievedRatioRuns, 3)})`, '>= 0.95', verdict(a.ratioPass)]);
    out.push(['2. Max starts in any 1 s window (worst run)', `${a.maxStartsIn1s.worst} (runs ${list(a.maxStartsIn1s.runs)})`, `<= ${a.maxStartsIn1s.bound}`, verdict(a.maxStartsIn1s.pass)]);
    out.push(['2. Requests the strict limiter rejected (worst run)', `${a.rejected.worst} (runs ${list(a.rejected.runs)})`, '0', verdict(a.rejected.pass)]);
    out.push(['2. Redis commands per op at the binding limit', `${a.redisCallsPerOp} (EVALSHA ${a.evalshaPerOp})`, '', '']);
  }
  const r = figures.redisCost;
  if (r) {
    for (const variant of ['A', 'B']) {
      const c = r[variant];
      out.push([`3. Redis commands per op, ${variant} (worker + enqueue)`, `${c.callsPerOp} = ${c.workerCallsPerOp} + ${c.enqueueCallsPerOp}; EVALSHA ${c.evalshaPerOp}; Redis CPU ${c.cpuUsPerOp} µs`, '', '']);
    }
    const top = Object.entries(r.limiterCallsPerOpByCommand).slice(0, 8).map(([name, n]) => `${name} ${n > 0 ? '+' : ''}${n}`).join(', ');
    out.push(['3. Limiter cost B − A, worker commands per op', `${r.limiterCallsPerOp > 0 ? '+' : ''}${r.limiterCallsPerOp} (${top || 'none'})`, '', '']);
    out.push(['   Worker CPU per op, A / B', `${t.workerCpuUsPerOp.A ?? 'n/a'} / ${t.workerCpuUsPerOp.B ?? 'n/a'} µs`, '', '']);
  }
  return out;
}

export function textTable(results, figures) {
  const body = rows(results, figures);
  const header = ['Figure', 'Value (median unless noted)', 'Target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function machineText(machine) {
  return `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.platform}, Node ${machine.node}, ${machine.redis}`;
}

export function markdown(results, figures, resultFile) {
  const table = [
    '| Figure | Value (median unless noted) | Target | |',
    '|---|---|---|---|',
    ...rows(results, figures).map((row) => `| ${row.map((cell) => cell.trim().replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');
  const p = results.params;
  return `# Benchmarks

Written by \`npm run bench\` (\`bench/run.mjs\`); do not edit by hand — run it again.

## Latest run

- When: ${results.startedAt} (${results.mode} mode: each scenario ${p.repeats} time${p.repeats > 1 ? 's' : ''}, A/B interleaved ${p.order.join(' ')}; took ${Math.round(results.durationMs / 1000)} s)
- Machine: ${machineText(results.machine)}
- Raw results: \`bench/results/${resultFile}\` (git-ignored)

${table}

## How to reproduce

\`\`\`sh
npm ci
npm run bench              # default: 3 runs of each scenario, medians (about 5 minutes)
npm run bench -- --quick   # 1 run each, smaller (under 2 minutes)
npm run bench -- --cpu-prof   # also writes a .cpuprofile per worker process to bench/results/
\`\`\`

It needs \`redis-server\` on PATH. The bench builds the library, starts its own \`redis-server\`
(persistence off) on a free port and its targets on 127.0.0.1, spawns real \`node bin/sluice.js
worker\` processes (\`LOG_LEVEL=warn\`), and stops all of them when it ends, also on errors. Each run
gets a flushed Redis, a fresh target and its own queue. The operations are enqueued with
\`createProducer\` *before* the workers start, so the timings measure the workers; completion is
read from the batch counters (\`createBatches(...).status\`, polled every 20 ms for throughput).

## What the figures mean

1. **Throughput** — ${p.throughputOps} \`POST\`s to a local \`node:http\` server that answers
   \`200 {"ok":true}\` at once, by one worker process at concurrency ${p.throughputConcurrency}.
   jobs/s = operations ÷ (batch done − first request at the target), so process start-up is left
   out. **A** has no limit configured for the key (the limiter never calls Redis); **B** is the same
   workload with the key limited to 1,000,000/s, burst 1,000, a limit that never binds, so every job
   pays the limiter's Redis round trip and nothing else. **B/A** is the price of a configured
   limit; target ≥ 0.90. Pairs are the B/A ratios of the interleaved runs. The bench process itself
   hosts the target, so on a small machine it competes with the worker and Redis for the same cores.
2. **Accuracy with a binding limit** — ${p.accuracyProcesses} worker processes at concurrency
   ${p.accuracyConcurrency} share one key limited to ${figures.accuracy?.rate ?? '?'}/s, burst ${figures.accuracy?.burst ?? '?'}, and POST ${p.accuracyOps} records to the demo API
   (\`src/demo/demo-api.ts\`, latency 2–10 ms, no injected failures) whose strict GCRA limiter
   has the same rate and burst and answers 429 to anything faster.
   *Achieved / limit* = (operations − 1) ÷ (last arrival − first arrival) ÷ limit, the rate the
   target saw; target ≥ 0.95 (median). *Max starts in any 1 s window* counts every arrival at the
   target (also rejected ones) in the busiest sliding second; bound: limit + burst, judged on the
   worst run. *Rejected* is the strict limiter's 429 count; target 0 in every run.
3. **Redis cost** — \`INFO commandstats\` call counts (reset with \`CONFIG RESETSTAT\`; commands that
   Lua scripts run count under their own names, so one EVALSHA of the limiter counts as 1 plus the
   commands inside it) divided by the number of operations, for the A and B runs of (1). *worker*
   is the run itself (the bench's own status polls are subtracted), *enqueue* is \`createProducer\`
   writing the batch. *B − A* is what the limiter adds per job, by command. Redis CPU is
   \`used_cpu_user + used_cpu_sys\` over the worker phase; worker CPU is the worker process's
   user + system time (Linux \`/proc\`) per job.
`;
}
