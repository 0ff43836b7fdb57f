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
const signed = (n) => `${n > 0 ? '+' : ''}${n}`;
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
    const ratioOfMedians = round(bJps / aJps, 3);
    // Each pair ran back to back, so its ratio is free of the drift between pairs.
    const ratio = median(pairs);
    figures.throughput = {
      aJobsPerSecond: aJps,
      bJobsPerSecond: bJps,
      aRuns: a.map((run) => run.jobsPerSecond),
      bRuns: b.map((run) => run.jobsPerSecond),
      ratio,
      pairRatios: pairs,
      ratioOfMedians,
      pairsRerun: (results.throughputDiscarded ?? []).length / 2,
      otherLoadCores: { A: a.map((run) => run.otherLoadCores), B: b.map((run) => run.otherLoadCores) },
      target: 0.9,
      pass: ratio >= 0.9,
      workerCpuUsPerOp: { A: perOp(a, (run) => run.workerCpuUsPerOp), B: perOp(b, (run) => run.workerCpuUsPerOp) },
    };
    // CPU per job of everything the bench runs (worker, Redis, the target in the bench process). On a
    // machine whose cores are saturated, throughput goes as its inverse: a B/A estimate that other
    // software's load does not move much.
    const cpuPerJob = (runs) => perOp(runs, (run) => (run.workerCpuUsPerOp ?? NaN) + run.redis.cpuUsPerOp + run.benchCpuUsPerOp);
    const cpuA = cpuPerJob(a);
    const cpuB = cpuPerJob(b);
    if (cpuA !== undefined && cpuB !== undefined) {
      figures.throughput.cpuPerJobUs = { A: round(cpuA, 0), B: round(cpuB, 0) };
      figures.throughput.cpuBoundRatio = round(cpuA / cpuB, 3);
    }
    figures.redisCost = {
      A: redisCost(a),
      B: redisCost(b),
      limiterCallsPerOp: round(perOp(b, (run) => run.redis.workerCallsPerOp) - perOp(a, (run) => run.redis.workerCallsPerOp), 2),
      limiterScriptUsPerOp: round(perOp(b, (run) => run.redis.scriptUsPerOp) - perOp(a, (run) => run.redis.scriptUsPerOp), 1),
      limiterCallsPerOpByCommand: Object.fromEntries(Object.entries(limiterByCommand).sort(([, x], [, y]) => Math.abs(y) - Math.abs(x))),
    };
  }
  if (accuracy?.length) {
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
      limiterScriptCallsPerOp: median(accuracy.map((run) => run.redis.limiterScriptCallsPerOp)),
      deadLettered: accuracy.reduce((sum, run) => sum + run.deadLettered, 0),
      retries: accuracy.reduce((sum, run) => sum + run.retries, 0),
    };
  }
  const cold = results.accuracyColdStart;
  if (cold?.length) {
    figures.coldStart = {
      achievedRatioRuns: cold.map((run) => run.achievedRatio),
      achievedRatio: median(cold.map((run) => run.achievedRatio)),
      rejectedRuns: cold.map((run) => run.rejected),
      maxStartsIn1sRuns: cold.map((run) => run.maxStartsIn1s),
    };
  }
  const all = [...(throughput ?? []), ...(accuracy ?? []), ...(cold ?? [])];
  const loads = all.map((run) => run.otherLoadCores).filter((v) => typeof v === 'number');
  if (loads.length) figures.otherLoadCores = { median: round(median(loads), 2), max: round(Math.max(...loads), 2) };
  return figures;
}

function redisCost(runs) {
  return {
    callsPerOp: median(runs.map((run) => run.redis.callsPerOp)),
    workerCallsPerOp: median(runs.map((run) => run.redis.workerCallsPerOp)),
    enqueueCallsPerOp: median(runs.map((run) => run.redis.enqueueCallsPerOp)),
    evalshaPerOp: median(runs.map((run) => run.redis.evalshaPerOp)),
    limiterScriptCallsPerOp: median(runs.map((run) => run.redis.limiterScriptCallsPerOp)),
    cpuUsPerOp: median(runs.map((run) => run.redis.cpuUsPerOp)),
    scriptUsPerOp: median(runs.map((run) => run.redis.scriptUsPerOp)),
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
    const nb = params.notBinding;
    out.push([`1. Throughput B, limit not binding (${nb.requestsPerSecond}/s burst ${nb.burst}), jobs/s`, `${t.bJobsPerSecond.toFixed(0)} (runs ${list(t.bRuns)})`, '', '']);
    out.push(['1. Ratio B/A (median of the interleaved pairs)', `${t.ratio.toFixed(3)} (pairs ${list(t.pairRatios, 3)}; ratio of medians ${t.ratioOfMedians.toFixed(3)}${t.pairsRerun ? `; ${t.pairsRerun} pair attempt(s) discarded for other load` : ''})`, '>= 0.90', verdict(t.pass)]);
  }
  const a = figures.accuracy;
  if (a) {
    const shape = `${params.accuracyOps} ops, ${params.accuracyProcesses} workers × ${params.accuracyConcurrency}, ${a.rate}/s burst ${a.burst}`;
    out.push([`2. Achieved / limit (${shape})`, `${a.achievedRatio.toFixed(3)} = ${a.achievedPerSecond.toFixed(2)}/s (runs ${list(a.achievedRatioRuns, 3)})`, '>= 0.95', verdict(a.ratioPass)]);
    out.push(['2. Max starts in any 1 s window (worst run)', `${a.maxStartsIn1s.worst} (runs ${list(a.maxStartsIn1s.runs)})`, `<= ${a.maxStartsIn1s.bound}`, verdict(a.maxStartsIn1s.pass)]);
    out.push(['2. Requests the strict limiter rejected (worst run)', `${a.rejected.worst} (runs ${list(a.rejected.runs)})`, '0', verdict(a.rejected.pass)]);
    out.push(['2. Redis commands per op at the binding limit (incl. enqueue)', `${a.redisCallsPerOp} (scripts ${a.evalshaPerOp}, of which the limiter's ${a.limiterScriptCallsPerOp})`, '', '']);
  }
  const c = figures.coldStart;
  if (c) {
    out.push([
      `2. Cold start: ${params.accuracyColdOps} ops enqueued before the 4 workers start (same limits)`,
      `rejected ${list(c.rejectedRuns)}; achieved / limit ${list(c.achievedRatioRuns, 3)}; max starts in 1 s ${list(c.maxStartsIn1sRuns)}`,
      '',
      '',
    ]);
  }
  const r = figures.redisCost;
  if (r) {
    for (const variant of ['A', 'B']) {
      const v = r[variant];
      out.push([`3. Redis commands per op, ${variant} (worker + enqueue)`, `${v.callsPerOp} = ${v.workerCallsPerOp} + ${v.enqueueCallsPerOp}; EVALSHA ${v.evalshaPerOp}; Redis CPU ${v.cpuUsPerOp} µs`, '', '']);
    }
    const top = Object.entries(r.limiterCallsPerOpByCommand).slice(0, 8).map(([name, n]) => `${name} ${signed(n)}`).join(', ');
    out.push(['3. Limiter cost B − A, worker commands per op', `${signed(r.limiterCallsPerOp)} (${top || 'none'}); time in scripts ${signed(r.limiterScriptUsPerOp)} µs`, '', '']);
    out.push(['   Worker CPU per op, A / B', `${t.workerCpuUsPerOp.A ?? 'n/a'} / ${t.workerCpuUsPerOp.B ?? 'n/a'} µs`, '', '']);
    if (t.cpuPerJobUs) {
      out.push(['   CPU per job, all processes (worker + Redis + target), A / B', `${t.cpuPerJobUs.A} / ${t.cpuPerJobUs.B} µs → CPU-bound B/A ${t.cpuBoundRatio}`, '', '']);
    }
  }
  if (figures.otherLoadCores) {
    const o = figures.otherLoadCores;
    out.push(['Other software\'s CPU load during the runs, cores', `median ${o.median}, max ${o.max} (of ${results.machine.cpus})`, '', '']);
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

function sharedWarning(figures) {
  const load = figures.otherLoadCores;
  if (!load || load.median < 0.2) return '';
  return `\n**This run shared the machine**: other software used ${load.median} cores (median, up to ${load.max}) while it
measured. Throughput figures are the most affected; compare runs by the CPU-bound B/A and by the
quietest pairs in the JSON.\n`;
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
${sharedWarning(figures)}
## How to reproduce

\`\`\`sh
npm ci
npm run bench              # default: 3 runs of each scenario, medians (about 6 minutes)
npm run bench -- --quick   # 1 run each, smaller (under 2 minutes)
npm run bench -- --cpu-prof   # also writes a .cpuprofile per worker process to bench/results/
\`\`\`

It needs \`redis-server\` on PATH. The bench builds the library, starts its own \`redis-server\`
(persistence off) on a free port and its targets on 127.0.0.1, spawns real \`node bin/sluice.js
worker\` processes (\`LOG_LEVEL=warn\`), and stops all of them when it ends, also on errors. Each run
gets a flushed Redis, a fresh target and its own queue. Operations are enqueued with
\`createProducer\` before the workers start (throughput, cold start) or with \`sluice enqueue\` in its
own process once they run (accuracy); completion is read from the batch counters
(\`createBatches(...).status\`, polled every 20 ms for throughput, 100 ms for accuracy).

Investigating: \`node bench/run.mjs --only throughput\` (or \`accuracy\`) runs one part without
rewriting this file; \`--worker-logs debug\` keeps each worker's log in \`bench/results/\`.

## What the figures mean

1. **Throughput** — ${p.throughputOps} \`POST\`s to a local \`node:http\` server that answers
   \`200 {"ok":true}\` at once, by one worker process at concurrency ${p.throughputConcurrency}.
   jobs/s = operations ÷ (batch done − first request at the target), so process start-up is left
   out. **A** has no limit configured for the key (the limiter never calls Redis); **B** is the same
   workload with the key limited to ${p.notBinding.requestsPerSecond}/s, burst ${p.notBinding.burst}, a limit that never binds, so every job
   pays the limiter's Redis round trip and nothing else. **B/A** is the price of a configured
   limit; target ≥ 0.90, judged on the median of the pair ratios (each pair ran back to back, so
   drift between pairs cancels); the ratio of the medians is shown too. A pair during which other
   software used more than ${p.quietLoadCores} cores (see below) is run again, up to ${p.pairAttempts} attempts, and the
   least disturbed attempt is kept; the JSON keeps every attempt. The bench process itself
   hosts the target, so on a small machine it competes with the worker and Redis for the same cores.
2. **Accuracy with a binding limit** — ${p.accuracyProcesses} worker processes at concurrency
   ${p.accuracyConcurrency} share one key limited to ${figures.accuracy?.rate ?? '?'}/s, burst ${figures.accuracy?.burst ?? '?'}, and POST ${p.accuracyOps} records to the demo API
   (\`src/demo/demo-api.ts\`, latency 2–10 ms, no injected failures) whose strict GCRA limiter
   has the same rate and burst and answers 429 to anything faster.
   *Achieved / limit* = (operations − 1) ÷ (last arrival − first arrival) ÷ limit, the rate the
   target saw; target ≥ 0.95 (median). *Max starts in any 1 s window* counts every arrival at the
   target (also rejected ones) in the busiest sliding second; bound: limit + burst, judged on the
   worst run. *Rejected* is the strict limiter's 429 count; target 0 in every run. In these runs
   the workers are started and registered with BullMQ (idle) before the batch is enqueued, as in a
   running deployment, by \`sluice enqueue\` in its own process: the API runs inside the bench
   process and stamps arrivals there, so CPU work in that process (an in-process enqueue did) would
   stall its event loop, bunch the stamps and fake rejections. The JSON keeps, per run, when the
   rejections happened and when the bench's event loop stalled, to tell the two apart. *Cold start* (no target, shown for what it teaches) enqueues a shorter batch
   *before* the four workers start, so the first slots meet processes that are still loading and
   opening connections.
3. **Redis cost** — \`INFO commandstats\` call counts (reset with \`CONFIG RESETSTAT\`; commands that
   Lua scripts run count under their own names, so one EVALSHA of the limiter counts as 1 plus the
   commands inside it) divided by the number of operations, for the A and B runs of (1). *worker*
   is the run itself (the bench's own status polls are subtracted), *enqueue* is \`createProducer\`
   writing the batch. *B − A* is what the limiter adds per job, by command. Redis CPU is
   \`used_cpu_user + used_cpu_sys\` over the worker phase; worker CPU is the worker process's
   user + system time (Linux \`/proc\`) per job from its first request on (start-up left out).
   *Scripts* counts EVALSHA calls (BullMQ's own commands are scripts too); the limiter's share is
   counted by the Redis \`TIME\` call each limiter script makes (nothing else here calls it).

*CPU per job* adds the worker's, Redis's and the bench process's (the target's) CPU time per job.
When the cores are saturated — they are, on a small machine — throughput goes as its inverse, so
*CPU-bound B/A* = CPU(A) ÷ CPU(B) estimates the ratio in a way that other software's load moves
much less than the measured jobs/s. It is an estimate, not a target.

*Other software's CPU load* is the machine's busy time (\`/proc/stat\`) minus the CPU of the
bench, its workers and its redis-server, averaged over each run. Anything well above 0 means the
machine was shared while it measured, and the figures (throughput most) are noisier than usual.
`;
}
