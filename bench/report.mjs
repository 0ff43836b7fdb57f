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

const ratios = (xs, ys, pick) => xs.map((x, i) => (ys?.[i] ? round(pick(ys[i]) / pick(x), 3) : undefined)).filter((v) => v !== undefined);
const med = (runs, pick) => (runs?.length ? median(runs.map(pick)) : undefined);
const worst = (runs, pick) => Math.max(...runs.map(pick));

/** The figures of a whole bench run: medians over the repeats; ratios of runs measured back to back. */
export function summarise(results) {
  const R = results.runs;
  const f = {};
  const jps = (run) => run.jobsPerSecond;
  if (R.http) f.http = { jobsPerSecond: med(R.http, jps), runs: R.http.map(jps) };
  for (const p of [1, 2]) {
    const queue = R[`queue${p}`];
    const sluice = R[`sluice${p}`];
    if (!queue || !sluice) continue;
    const pairs = ratios(queue, sluice, jps);
    f[`throughput${p}`] = {
      queue: med(queue, jps),
      queueRuns: queue.map(jps),
      sluice: med(sluice, jps),
      sluiceRuns: sluice.map(jps),
      ratio: median(pairs),
      pairRatios: pairs,
      pass: median(pairs) >= 0.9,
      queueOfHttp: f.http ? round(med(queue, jps) / f.http.jobsPerSecond, 3) : undefined,
      workerCpuUsPerOp: { queue: med(queue, (run) => run.workerCpuUsPerOp), sluice: med(sluice, (run) => run.workerCpuUsPerOp) },
      redisCpuUsPerOp: { queue: med(queue, (run) => run.redis.cpuUsPerOp), sluice: med(sluice, (run) => run.redis.cpuUsPerOp) },
    };
  }
  if (R.sluiceNoLimit)
    f.noLimit = {
      jobsPerSecond: med(R.sluiceNoLimit, jps),
      runs: R.sluiceNoLimit.map(jps),
      workerCallsPerOp: med(R.sluiceNoLimit, (run) => run.redis.workerCallsPerOp),
    };
  for (const name of ['binding', 'accuracy50', 'cold50']) {
    const runs = R[name];
    if (!runs) continue;
    const bound = runs[0].rate + runs[0].burst;
    f[name] = {
      rate: runs[0].rate,
      burst: runs[0].burst,
      processes: runs[0].processes,
      achievedRatio: med(runs, (run) => run.achievedRatio),
      achievedRuns: runs.map((run) => run.achievedRatio),
      achievedPerSecond: med(runs, (run) => run.achievedPerSecond),
      ratioPass: med(runs, (run) => run.achievedRatio) >= (name === 'binding' ? 0.97 : 0.95),
      maxStartsIn1s: {
        worst: worst(runs, (run) => run.maxStartsIn1s),
        runs: runs.map((run) => run.maxStartsIn1s),
        bound,
        pass: worst(runs, (run) => run.maxStartsIn1s) <= bound,
      },
      rejected: {
        worst: worst(runs, (run) => run.rejected),
        runs: runs.map((run) => run.rejected),
        pass: worst(runs, (run) => run.rejected) === 0,
      },
      redisCallsPerOp: med(runs, (run) => run.redis.workerCallsPerOp),
      workerCpuUsPerOp: med(runs, (run) => run.workerCpuUsPerOp),
      /** BullMQ moves a job to active with RPOPLPUSH: how often each job was fetched (delayed and back). */
      fetchesPerOp: med(runs, (run) => run.redis.workerCallsPerOpByCommand.rpoplpush ?? 0),
      limiterCallsPerOp: med(runs, (run) => run.redis.limiterScriptCallsPerOp),
    };
  }
  if (R.fairAlone && R.fairMixed) {
    const pick = (run) => run.fastPerSecond;
    const pairs = ratios(R.fairAlone, R.fairMixed, pick);
    f.fairness = {
      alone: med(R.fairAlone, pick),
      mixed: med(R.fairMixed, pick),
      ratio: median(pairs),
      pairRatios: pairs,
      pass: median(pairs) >= 0.8,
      /** What the 2/s key got meanwhile: requests, and what 2/s over the same span would be. */
      slowRequests: R.fairMixed.map((run) => run.slowRequests),
      slowFair: R.fairMixed.map((run) => Math.floor((run.fastOps / run.fastPerSecond) * 2) + 1),
    };
  }
  if (R.enqueueRaw && R.enqueueSluice) {
    const pick = (run) => run.opsPerSecond;
    const pairs = ratios(R.enqueueRaw, R.enqueueSluice, pick);
    const rss = worst(R.enqueueSluice, (run) => run.peakRssMb);
    f.enqueue = {
      lines: R.enqueueSluice[0].lines,
      raw: med(R.enqueueRaw, pick),
      sluice: med(R.enqueueSluice, pick),
      ratio: median(pairs),
      pairRatios: pairs,
      pass: median(pairs) >= 0.75,
      peakRssMb: { sluice: rss, raw: worst(R.enqueueRaw, (run) => run.peakRssMb), pass: rss < 200 },
    };
  }
  if (R.latency) {
    const p50 = med(R.latency, (run) => run.p50Ms);
    const p99 = med(R.latency, (run) => run.p99Ms);
    f.latency = {
      p50Ms: p50,
      p99Ms: p99,
      p50Runs: R.latency.map((run) => run.p50Ms),
      p99Runs: R.latency.map((run) => run.p99Ms),
      maxMs: worst(R.latency, (run) => run.maxMs),
      p50Pass: p50 <= 5,
      p99Pass: p99 <= 25,
    };
  }
  if (R.memory) {
    const rss = worst(R.memory, (run) => run.workerPeakRssMb);
    f.memory = {
      peakRssMb: rss,
      runs: R.memory.map((run) => run.workerPeakRssMb),
      jobsPerSecond: med(R.memory, jps),
      pass: rss < 150,
      queueCeilingPeakRssMb: R.memoryQueue ? worst(R.memoryQueue, (run) => run.workerPeakRssMb) : undefined,
    };
  }
  if (R.queue1 && R.sluice1) {
    const cost = (runs) => ({
      callsPerOp: med(runs, (run) => run.redis.callsPerOp),
      workerCallsPerOp: med(runs, (run) => run.redis.workerCallsPerOp),
      enqueueCallsPerOp: med(runs, (run) => run.redis.enqueueCallsPerOp),
      cpuUsPerOp: med(runs, (run) => run.redis.cpuUsPerOp),
    });
    const extra = {};
    for (const name of new Set([...R.sluice1, ...R.queue1].flatMap((run) => Object.keys(run.redis.workerCallsPerOpByCommand)))) {
      const diff =
        med(R.sluice1, (run) => run.redis.workerCallsPerOpByCommand[name] ?? 0) -
        med(R.queue1, (run) => run.redis.workerCallsPerOpByCommand[name] ?? 0);
      if (Math.abs(diff) >= 0.05) extra[name] = round(diff, 2);
    }
    f.redisCost = {
      sluice: cost(R.sluice1),
      queue: cost(R.queue1),
      sluiceExtraByCommand: Object.fromEntries(Object.entries(extra).sort(([, x], [, y]) => Math.abs(y) - Math.abs(x))),
    };
  }
  const all = Object.values(R).flat();
  const loads = all.map((run) => run.otherLoadCores).filter((v) => typeof v === 'number');
  if (loads.length)
    f.otherLoadCores = {
      median: round(median(loads), 2),
      max: round(Math.max(...loads), 2),
      worstRun: all.find((run) => run.otherLoadCores === Math.max(...loads))?.label,
    };
  return f;
}

/** Rows of [figure, value, target, verdict]. */
export function rows(results, f) {
  const out = [];
  const { params } = results;
  const c = params.concurrency;
  const n = params.throughputOps;
  if (f.http)
    out.push([
      `1. HTTP ceiling: undici alone, ${n} POSTs at ${c}, requests/s`,
      `${f.http.jobsPerSecond.toFixed(0)} (runs ${list(f.http.runs)})`,
      '',
      '',
    ]);
  for (const p of [1, 2]) {
    const t = f[`throughput${p}`];
    if (!t) continue;
    out.push([
      `2. Queue ceiling: minimal BullMQ worker, ${p} process${p > 1 ? 'es' : ''} × ${c}, jobs/s`,
      `${t.queue.toFixed(0)} (runs ${list(t.queueRuns)}${t.queueOfHttp ? `; ${t.queueOfHttp} of HTTP` : ''})`,
      '',
      '',
    ]);
    out.push([
      `3. sluice, limit not binding, ${p} process${p > 1 ? 'es' : ''} × ${c}, jobs/s`,
      `${t.sluice.toFixed(0)} (runs ${list(t.sluiceRuns)})`,
      '',
      '',
    ]);
    out.push([
      `3. sluice / queue ceiling, ${p} process${p > 1 ? 'es' : ''}`,
      `${t.ratio.toFixed(3)} (pairs ${list(t.pairRatios, 3)})`,
      '>= 0.90',
      verdict(t.pass),
    ]);
    out.push([
      `   worker CPU per job, queue ceiling / sluice (${p})`,
      `${t.workerCpuUsPerOp.queue} / ${t.workerCpuUsPerOp.sluice} µs; Redis CPU ${t.redisCpuUsPerOp.queue} / ${t.redisCpuUsPerOp.sluice} µs`,
      '',
      '',
    ]);
  }
  if (f.noLimit)
    out.push([
      '   sluice, no limit configured, 1 process, jobs/s',
      `${f.noLimit.jobsPerSecond.toFixed(0)} (runs ${list(f.noLimit.runs)}); ${f.noLimit.workerCallsPerOp} Redis commands/op`,
      '',
      '',
    ]);
  const b = f.binding;
  if (b) {
    const shape = `${params.binding.processes} processes × ${params.binding.concurrency}, ${b.rate}/s burst ${b.burst}, ${params.binding.operations} ops`;
    out.push([
      `4. Binding limit (${shape}): achieved / limit`,
      `${b.achievedRatio.toFixed(3)} = ${b.achievedPerSecond.toFixed(1)}/s (runs ${list(b.achievedRuns, 3)})`,
      '>= 0.97',
      verdict(b.ratioPass),
    ]);
    out.push([
      '4. Max starts in any 1 s window (worst run)',
      `${b.maxStartsIn1s.worst} (runs ${list(b.maxStartsIn1s.runs)})`,
      `<= ${b.maxStartsIn1s.bound}`,
      verdict(b.maxStartsIn1s.pass),
    ]);
    out.push([
      '4. Starts a strict limiter rejected (worst run)',
      `${b.rejected.worst} (runs ${list(b.rejected.runs)})`,
      '0',
      verdict(b.rejected.pass),
    ]);
  }
  for (const [name, title] of [
    ['accuracy50', 'Extra: 50/s burst 5, workers running'],
    ['cold50', 'Extra: 50/s burst 5, cold start (backlog before the workers)'],
  ]) {
    const a = f[name];
    if (a)
      out.push([
        `   ${title}`,
        `achieved / limit ${list(a.achievedRuns, 3)}; max starts in 1 s ${list(a.maxStartsIn1s.runs)} (<= ${a.maxStartsIn1s.bound}); rejected ${list(a.rejected.runs)}`,
        '',
        verdict(a.maxStartsIn1s.pass && a.rejected.pass),
      ]);
  }
  const fa = f.fairness;
  if (fa) {
    out.push([
      `5. Fairness: unlimited key beside a saturated 2/s key / alone`,
      `${fa.ratio.toFixed(3)} = ${fa.mixed.toFixed(0)} / ${fa.alone.toFixed(0)} jobs/s (pairs ${list(fa.pairRatios, 3)})`,
      '>= 0.80',
      verdict(fa.pass),
    ]);
    out.push(['   meanwhile the 2/s key started (at 2/s it would have)', `${list(fa.slowRequests)} (${list(fa.slowFair)})`, '', '']);
  }
  const e = f.enqueue;
  if (e) {
    out.push([
      `6. Enqueue ${e.lines} lines: sluice enqueue / raw addBulk, ops/s`,
      `${e.ratio.toFixed(3)} = ${e.sluice.toFixed(0)} / ${e.raw.toFixed(0)} (pairs ${list(e.pairRatios, 3)})`,
      '>= 0.75',
      verdict(e.pass),
    ]);
    out.push([
      '6. Peak RSS of sluice enqueue (worst run)',
      `${e.peakRssMb.sluice} MB (raw addBulk ${e.peakRssMb.raw} MB)`,
      '< 200 MB',
      verdict(e.peakRssMb.pass),
    ]);
  }
  const l = f.latency;
  if (l) {
    out.push([
      `7. Latency enqueue → request at the target, p50 (idle, ${params.latency.operations} single ops)`,
      `${l.p50Ms} ms (runs ${list(l.p50Runs, 2)})`,
      '<= 5 ms',
      verdict(l.p50Pass),
    ]);
    out.push(['7. Latency p99', `${l.p99Ms} ms (runs ${list(l.p99Runs, 2)}; max ${l.maxMs} ms)`, '<= 25 ms', verdict(l.p99Pass)]);
  }
  const m = f.memory;
  if (m)
    out.push([
      `8. Worker peak RSS at ${params.memory.concurrency}, ${params.memory.bodyBytes} B responses, ${params.memory.operations} ops (worst run)`,
      `${m.peakRssMb} MB (runs ${list(m.runs)}; ${m.jobsPerSecond.toFixed(0)} jobs/s; minimal BullMQ worker ${m.queueCeilingPeakRssMb ?? 'n/a'} MB)`,
      '< 150 MB',
      verdict(m.pass),
    ]);
  const r = f.redisCost;
  if (r) {
    for (const [name, v] of [
      ['sluice', r.sluice],
      ['queue ceiling', r.queue],
    ]) {
      out.push([
        `9. Redis commands per op, ${name} (run + enqueue)`,
        `${v.callsPerOp} = ${v.workerCallsPerOp} + ${v.enqueueCallsPerOp}; Redis CPU ${v.cpuUsPerOp} µs/op`,
        '',
        '',
      ]);
    }
    const top = Object.entries(r.sluiceExtraByCommand)
      .slice(0, 8)
      .map(([name, x]) => `${name} ${signed(x)}`)
      .join(', ');
    out.push(['9. sluice − queue ceiling, run commands per op', top || 'none', '', '']);
  }
  if (f.otherLoadCores) {
    const o = f.otherLoadCores;
    out.push([
      "Other software's CPU load during the sluice runs, cores",
      `median ${o.median}, max ${o.max} (${o.worstRun}; of ${results.machine.cpus})`,
      '',
      '',
    ]);
  }
  return out;
}

export function textTable(results, figures) {
  const body = rows(results, figures);
  const header = ['Figure', 'Value (median unless noted)', 'Target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The markers of the section `npm run soak` writes into BENCHMARKS.md; a bench run carries it over. */
export const SOAK_BEGIN = '<!-- soak -->';
export const SOAK_END = '<!-- /soak -->';

/** The soak section of a BENCHMARKS.md text, markers included; undefined when it has none. */
export function soakSectionOf(text) {
  const start = text.indexOf(SOAK_BEGIN);
  const end = start < 0 ? -1 : text.indexOf(SOAK_END, start);
  return end < 0 ? undefined : text.slice(start, end + SOAK_END.length);
}

/** `text` with its soak section replaced by `section` (appended when it has none); unchanged without a section. */
export function withSoakSection(text, section) {
  if (!section) return text;
  const old = soakSectionOf(text);
  if (old) return text.replace(old, () => section);
  return `${text.trimEnd()}\n\n${section}\n`;
}

export function machineText(machine) {
  return `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.platform}, Node ${machine.node}, ${machine.redis}`;
}

function sharedWarning(figures) {
  const load = figures.otherLoadCores;
  if (!load || load.median < 0.2) return '';
  return `\n**This run shared the machine**: other software used ${load.median} cores (median, up to ${load.max}) while it
measured. Throughput figures are the most affected; the JSON keeps every attempt and its load.\n`;
}

/** One line per missed target, from the figures measured beside it. */
export function misses(f) {
  const out = [];
  for (const p of [1, 2]) {
    const t = f[`throughput${p}`];
    if (t && !t.pass) {
      out.push(
        `- sluice / queue ceiling (${p} process${p > 1 ? 'es' : ''}) ${t.ratio}: worker CPU ${t.workerCpuUsPerOp.sluice} µs per job vs ${t.workerCpuUsPerOp.queue} for the minimal BullMQ worker, Redis CPU ${t.redisCpuUsPerOp.sluice} vs ${t.redisCpuUsPerOp.queue} µs; the cores are saturated, so throughput follows CPU per job.`,
      );
    }
  }
  if (f.redisCost && f.throughput1 && !f.throughput1.pass) {
    const r = f.redisCost;
    out.push(
      `- Redis commands per job: sluice ${r.sluice.workerCallsPerOp} vs ${r.queue.workerCallsPerOp} (run), ${r.sluice.enqueueCallsPerOp} vs ${r.queue.enqueueCallsPerOp} (enqueue); the extra ones: ${Object.entries(
        r.sluiceExtraByCommand,
      )
        .map(([n, x]) => `${n} ${signed(x)}`)
        .join(', ')}.`,
    );
  }
  const b = f.binding;
  if (b && !b.ratioPass) {
    out.push(
      `- Binding limit: achieved ${b.achievedRatio} of ${b.rate}/s (0 rejected): each job was fetched ${b.fetchesPerOp} times (delayed in the queue and fetched again) and booked ${b.limiterCallsPerOp} limiter slots, ${b.redisCallsPerOp} Redis commands and ${b.workerCpuUsPerOp} µs of worker CPU per job (vs ${f.throughput1?.workerCpuUsPerOp.sluice ?? '?'} µs unthrottled): at ${b.rate}/s that is about ${round((b.rate * b.workerCpuUsPerOp) / 1e6, 2)} cores, so the ${b.processes ?? 4} workers starve (they log "event loop lags all the time") and give slots back.`,
    );
  }
  const e = f.enqueue;
  if (e && !e.pass)
    out.push(
      `- Enqueue: sluice ${e.sluice} ops/s vs raw addBulk ${e.raw}: \`sluice enqueue\` reads the file twice (validates every line first, then enqueues) and keeps batch counters and deduplication keys in Redis.`,
    );
  if (e && !e.peakRssMb.pass) out.push(`- Enqueue peak RSS ${e.peakRssMb.sluice} MB (raw addBulk ${e.peakRssMb.raw} MB).`);
  const m = f.memory;
  if (m && !m.pass)
    out.push(
      `- Worker RSS ${m.peakRssMb} MB at concurrency 500 vs ${m.queueCeilingPeakRssMb ?? '?'} MB for the minimal BullMQ worker at the same concurrency and body size.`,
    );
  const l = f.latency;
  if (l && !(l.p50Pass && l.p99Pass)) out.push(`- Latency p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms.`);
  const fa = f.fairness;
  if (fa && !fa.pass) out.push(`- Fairness ${fa.ratio}.`);
  if (fa && fa.slowRequests.some((n, i) => n < fa.slowFair[i] / 2)) {
    out.push(
      `- Not a target, but seen: beside the unlimited key's backlog the 2/s key started only ${list(fa.slowRequests)} requests where 2/s gives ${list(fa.slowFair)}: its limiter calls show the slots booked; the likely cause is that its jobs, delayed until their slot, come back behind the whole backlog, miss the slot and book a new one (not yet confirmed with a trace).`,
    );
  }
  return out;
}

export function markdown(results, figures, resultFile) {
  const table = [
    '| Figure | Value (median unless noted) | Target | |',
    '|---|---|---|---|',
    ...rows(results, figures).map((row) => `| ${row.map((cell) => cell.trim().replace(/\|/g, '\\|')).join(' | ')} |`),
  ].join('\n');
  const p = results.params;
  const missed = misses(figures);
  return `# Benchmarks

Written by \`npm run bench\` (\`bench/run.mjs\`); do not edit by hand — run it again. The *Soak*
section at the end, when there is one, is written by \`npm run soak\` (\`bench/soak.mjs\`) and kept as it was.

## Latest run

- When: ${results.startedAt} (**${results.mode} mode**: each scenario ${p.repeats} time${p.repeats > 1 ? 's' : ''}; took ${Math.round(results.durationMs / 1000)} s)
- Machine: ${machineText(results.machine)}
- Raw results: \`bench/results/${resultFile}\` (git-ignored)

${table}
${sharedWarning(figures)}${missed.length ? `\n## Where the time goes (targets missed) and what else was seen\n\nMeasured in the same run:\n\n${missed.join('\n')}\n` : ''}
## How to reproduce

\`\`\`sh
npm ci
npm run bench              # default: 3 repeats of every scenario, medians
npm run bench -- --quick   # 1 repeat, smaller batches (under 2 minutes)
npm run bench -- --cpu-prof   # also writes a .cpuprofile per worker process to bench/results/
node bench/run.mjs --only throughput,latency   # parts only; BENCHMARKS.md is left alone
npm run soak -- --minutes 30   # the soak: 30 minutes under worker kills, Redis restarts and a target's outages
npm run soak -- --minutes 3 --fast   # the same trouble, periods scaled down to fit a short try
\`\`\`

The soak (\`bench/soak.mjs\`) runs a private \`redis-server\` with AOF on (\`appendfsync everysec\`),
restarted every 10 minutes (SIGTERM) and once by SIGKILL; three \`sluice worker\` processes, one of
which is SIGKILLed and replaced every minute while another (the *resident*) runs throughout; and a
batch of 200–500 operations every 10–20 s to four counting targets (steady, 20 % 503, a strict rate
limit, and one that refuses connections for 60–90 s every 5 minutes). At the end it waits for every
batch and accounts for every operation: lost (exit code 1 if any), dead-lettered, requests sent
again after a final answer and why, the resident worker's RSS growth, circuit transitions. It writes
\`bench/results/soak-<timestamp>.json\` and the soak section of this file.

It needs \`redis-server\` on PATH. The bench builds the library, starts its own \`redis-server\`
(persistence off) on a free port and its targets (\`node:http\` servers answering \`200\` with a small
JSON body at once) on 127.0.0.1 inside the bench process, spawns real \`node bin/sluice.js worker\`
processes (\`LOG_LEVEL=warn\`), and stops all of them when it ends, also on errors. Each run gets a
flushed Redis, a fresh target and its own queue. The ceilings run in their own processes too
(\`bench/minimal-process.mjs\`), so every ratio compares like with like.

## What the figures mean

Every sluice figure is a ratio to a ceiling measured in the same run, because absolute numbers on
a shared 2-core machine drift. A group of runs that are compared (ceiling and sluice) runs back to
back; if other software used more than ${p.quietLoadCores} cores meanwhile, the group runs again (up to ${p.attempts}
attempts; the least disturbed is kept, the JSON keeps all).

1. **HTTP ceiling** — undici alone (one \`Agent\`, ${p.concurrency} connections) sends ${p.throughputOps} POSTs, ${p.concurrency} at a time.
2. **Queue ceiling** — the least BullMQ worker that does the job: \`new Worker\` at concurrency
   ${p.concurrency}, one undici POST per job, the same \`removeOnComplete\` as sluice; ${p.throughputOps} jobs added with raw
   \`addBulk\` before the worker starts; done when BullMQ's completed set holds them all.
3. **sluice, limit not binding** — the same ${p.throughputOps} POSTs through \`sluice worker\` (1, then 2 processes
   × ${p.concurrency}), enqueued with \`createProducer\` before the workers start, the key limited to
   ${p.notBinding.requestsPerSecond}/s (every job pays the limiter's Redis round trip). jobs/s = operations ÷ (done −
   first request at the target), so process start-up is left out. Target: ≥ 0.90 of (2) with as
   many processes. *No limit configured* is shown for the limiter's cost.
4. **Binding limit** — ${p.binding.processes} worker processes × ${p.binding.concurrency} share one key limited to ${p.binding.rate}/s, burst ${p.binding.burst}, and
   POST ${p.binding.operations} records to the demo API (\`src/demo/demo-api.ts\`, latency 2–10 ms) whose strict GCRA
   limiter has the same rate and burst and answers 429 to anything faster; the batch is enqueued by
   \`sluice enqueue\` once the workers run. *Achieved / limit* = (operations − 1) ÷ (last − first
   arrival) ÷ limit (≥ 0.97); *max starts in any 1 s window* counts every arrival (≤ limit + burst,
   worst run); *rejected* = the strict limiter's 429s (0 in every run). In default mode the 50/s,
   burst 5 shape of the limits issue runs too, warm and cold (batch enqueued before the workers).
5. **Fairness** — one worker × ${p.concurrency}, a backlog of ${p.fairness.fastOps} POSTs to an unlimited key with ${p.fairness.slowOps} POSTs
   to a key limited to 2/s spread among them, against the same backlog without the slow key: the
   unlimited key's rate (first to last arrival) with ÷ without (≥ 0.80). The slow key's starts
   meanwhile are shown beside what 2/s would give.
6. **Enqueue** — a ${p.enqueueLines}-line JSONL file: \`sluice enqueue FILE\` vs a process that streams the same lines
   into raw \`addBulk\` (500 per call), each from spawn to exit (ops/s ratio ≥ 0.75); peak RSS
   (VmHWM, sampled every 50 ms) of the \`sluice enqueue\` process (< 200 MB).
7. **Latency** — one idle, registered worker; ${p.latency.operations} single operations enqueued one at a time
   (\`createProducer().enqueue\`, ${p.latency.gapMs} ms apart, after 10 unmeasured ones) from the bench process; latency = the
   target's arrival stamp − the start of the enqueue call, on one clock (p50 ≤ 5 ms, p99 ≤ 25 ms).
8. **Memory** — peak RSS (VmHWM) of one worker at concurrency ${p.memory.concurrency} running ${p.memory.operations} POSTs whose answers
   carry ${p.memory.bodyBytes} B bodies (< 150 MB, worst run); the minimal BullMQ worker's, same shape, beside it.
9. **Redis cost** — \`INFO commandstats\` calls (reset with \`CONFIG RESETSTAT\`; commands run by Lua
   scripts count under their own names) per operation, for (3) and (2) with 1 process: *run*
   (the bench's own polls subtracted) + *enqueue*, and the commands sluice adds per job. Redis CPU is
   \`used_cpu_user + used_cpu_sys\` over the run; worker CPU is user + system time (\`/proc\`) from
   the first request on.

*Other software's CPU load* is the machine's busy time (\`/proc/stat\`) minus the CPU of the
bench, its workers and its redis-server, averaged over each run. Anything well above 0 means the
machine was shared while it measured (another engineer's tests, say), and the figures are noisier.
`;
}
