/**
 * figures.lanes: the same work with lanes on beside single jobs (issue 15), every pair measured in
 * the same bench run, and the issue's targets. See bench/run.mjs for the runs (lanes1, lanes2,
 * bindingLanes, enqueueLanes, queuedJobs, queuedLanes) and bench/report.mjs for the rest.
 */
import { med, verdict } from './figure-math.mjs';
import { round } from './redis-stats.mjs';

const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 3) : undefined);

export const LANES_TARGETS = {
  ofHttp: 0.7,
  redisCommandsPerOp: 3,
  redisCpuRatio: 0.1,
  workerCpuRatio: 0.5,
  queuedBytesPerOp: 300,
  enqueueToRaw: 3,
  enqueuePeakRssMb: 200,
  bindingRatio: 0.97,
  bindingCpuToNotBinding: 1.5,
};

/** figures.lanes, or undefined when the run had no lane runs. */
export function lanesFigure(R, f) {
  const t = LANES_TARGETS;
  const out = {};
  const jps = (run) => run.jobsPerSecond;
  for (const p of [1, 2]) {
    const single = R[`sluice${p}`];
    const lanes = R[`lanes${p}`];
    if (!single?.length || !lanes?.length) continue;
    const ofHttp = ratio(med(lanes, jps), f.http?.jobsPerSecond);
    out[`throughput${p}`] = {
      single: med(single, jps),
      lanes: med(lanes, jps),
      lanesToSingle: ratio(med(lanes, jps), med(single, jps)),
      /** Lanes ÷ the HTTP ceiling (undici alone) of the same run. */
      ofHttp,
      singleOfHttp: ratio(med(single, jps), f.http?.jobsPerSecond),
      pass: ofHttp === undefined ? undefined : ofHttp >= t.ofHttp,
    };
  }
  if (R.sluice1?.length && R.lanes1?.length) {
    const pair = (get) => ({ single: med(R.sluice1, get), lanes: med(R.lanes1, get) });
    const commands = pair((run) => run.redis.callsPerOp);
    out.redisCommandsPerOp = { ...commands, pass: commands.lanes <= t.redisCommandsPerOp };
    out.redisCommandsPerOpByCommand = Object.fromEntries(
      Object.entries(R.lanes1[0].redis.workerCallsPerOpByCommand ?? {}).filter(([, n]) => n >= 0.02),
    );
    const redisCpu = pair((run) => run.redis.cpuUsPerOp);
    out.redisCpuUsPerOp = { ...redisCpu, ratio: ratio(redisCpu.lanes, redisCpu.single) };
    out.redisCpuUsPerOp.pass = out.redisCpuUsPerOp.ratio <= t.redisCpuRatio;
    const workerCpu = pair((run) => run.workerCpuUsPerOp);
    out.workerCpuUsPerOp = { ...workerCpu, ratio: ratio(workerCpu.lanes, workerCpu.single) };
    // What sending alone costs a process (undici alone, the HTTP ceiling's run): the rest is sluice's own.
    const httpClient = f.http?.clientCpuUsPerOp;
    if (typeof httpClient === 'number') {
      out.workerCpuUsPerOp.httpClient = httpClient;
      out.workerCpuUsPerOp.lanesBeyondHttp = round(workerCpu.lanes - httpClient, 0);
      out.workerCpuUsPerOp.singleBeyondHttp = round(workerCpu.single - httpClient, 0);
    }
    out.workerCpuUsPerOp.pass = out.workerCpuUsPerOp.ratio <= t.workerCpuRatio;
  }
  if (R.queuedJobs?.length && R.queuedLanes?.length) {
    const bytes = (run) => run.bytesPerOp;
    out.queuedBytesPerOp = {
      operations: R.queuedLanes[0].operations,
      single: med(R.queuedJobs, bytes),
      lanes: med(R.queuedLanes, bytes),
      pass: med(R.queuedLanes, bytes) <= t.queuedBytesPerOp,
    };
  }
  if (R.enqueueRaw?.length && R.enqueueLanes?.length) {
    const ops = (run) => run.opsPerSecond;
    const rss = Math.max(...R.enqueueLanes.map((run) => run.peakRssMb).filter((mb) => typeof mb === 'number' && Number.isFinite(mb)));
    out.enqueue = {
      lines: R.enqueueLanes[0].lines,
      raw: med(R.enqueueRaw, ops),
      single: med(R.enqueueSluice, ops),
      lanes: med(R.enqueueLanes, ops),
      lanesToRaw: ratio(med(R.enqueueLanes, ops), med(R.enqueueRaw, ops)),
      peakRssMb: rss,
    };
    if (R.enqueueCheck?.length) {
      // Where the lanes enqueue's time goes: its first pass alone (`--dry-run`), against the whole
      // and against what the target leaves for the whole (raw addBulk's time ÷ the target ratio).
      const ms = (run) => run.ms;
      const lanesMs = med(R.enqueueLanes, ms);
      const checkMs = med(R.enqueueCheck, ms);
      out.enqueue.time = {
        lanesMs,
        checkMs,
        checkShare: ratio(checkMs, lanesMs),
        targetMs: round(med(R.enqueueRaw, ms) / t.enqueueToRaw, 0),
      };
    }
    out.enqueue.pass = out.enqueue.lanesToRaw >= t.enqueueToRaw && rss < t.enqueuePeakRssMb;
  }
  if (R.replayJobs?.length && R.replayLanes?.length) {
    const of = (runs) => ({
      perSecond: med(runs, (run) => run.perSecond),
      jobs: med(runs, (run) => run.jobs),
      redisCommandsPerOp: med(runs, (run) => run.redisCommandsPerOp),
      redisCpuUsPerOp: med(runs, (run) => run.redisCpuUsPerOp),
    });
    const single = of(R.replayJobs);
    const lanes = of(R.replayLanes);
    /** A dead-letter replay (no target in the issue: "the DLQ and replay" see operations). */
    out.replay = {
      deadLetters: R.replayLanes[0].deadLetters,
      single,
      lanes,
      speedup: ratio(lanes.perSecond, single.perSecond),
      redisCpuRatio: ratio(lanes.redisCpuUsPerOp, single.redisCpuUsPerOp),
    };
  }
  const b = R.bindingLanes;
  if (b?.length) {
    const cpu = med(b, (run) => run.workerCpuUsPerOp);
    const notBinding = out.workerCpuUsPerOp?.lanes;
    const achievedRatio = med(b, (run) => run.achievedRatio);
    const rejected = Math.max(...b.map((run) => run.rejected));
    const cpuToNotBinding = ratio(cpu, notBinding);
    const pacedHttpCpu = R.pacedHttp?.length ? med(R.pacedHttp, (run) => run.cpuUsPerOp) : undefined;
    out.binding = {
      rate: b[0].rate,
      burst: b[0].burst,
      processes: b[0].processes,
      operations: b[0].operations,
      achievedRatio,
      achievedRuns: b.map((run) => run.achievedRatio),
      rejected,
      workerCpuUsPerOp: cpu,
      redisCommandsPerOp: med(b, (run) => run.redis?.workerCallsPerOp),
      /** Limiter script calls per operation: a lane books its operations' slots in runs (limit-acquire.lua, "Followers"). */
      limiterCallsPerOp: med(b, (run) => run.redis?.limiterScriptCallsPerOp),
      redisCpuUsPerOp: med(b, (run) => run.redis?.cpuUsPerOp),
      singleJobs: f.binding
        ? {
            achievedRatio: f.binding.achievedRatio,
            workerCpuUsPerOp: f.binding.workerCpuUsPerOp,
            limiterCallsPerOp: f.binding.limiterCallsPerOp,
            redisCommandsPerOp: med(R.binding ?? [], (run) => run.redis?.workerCallsPerOp),
            redisCpuUsPerOp: med(R.binding ?? [], (run) => run.redis?.cpuUsPerOp),
          }
        : undefined,
      /** Worker CPU per operation ÷ the not-binding lane run's. */
      cpuToNotBinding,
      /**
       * undici alone, one process sending at the binding shape's rate per process: CPU per request
       * (the floor of any worker's CPU per operation at that rate), and its ratio to the not-binding
       * lane run's CPU per operation (the floor of cpuToNotBinding).
       */
      pacedHttp:
        pacedHttpCpu !== undefined
          ? {
              rate: R.pacedHttp[0].rate,
              cpuUsPerOp: pacedHttpCpu,
              toNotBinding: ratio(pacedHttpCpu, notBinding),
              lanesToPacedHttp: ratio(cpu, pacedHttpCpu),
            }
          : undefined,
      pass:
        achievedRatio >= t.bindingRatio && rejected === 0 && (cpuToNotBinding === undefined || cpuToNotBinding <= t.bindingCpuToNotBinding),
    };
  }
  if (f.latency) out.latency = { p50Ms: f.latency.p50Ms, p99Ms: f.latency.p99Ms, pass: f.latency.p50Pass && f.latency.p99Pass };
  return Object.keys(out).length ? out : undefined;
}

/** The report's rows for figures.lanes (figure 14). */
export function lanesRows(l) {
  if (!l) return [];
  const t = LANES_TARGETS;
  const rows = [];
  for (const p of [1, 2]) {
    const x = l[`throughput${p}`];
    if (!x) continue;
    rows.push([
      `14. Lanes, limit not binding, ${p} process${p > 1 ? 'es' : ''} × 100: ops/s; lanes / single jobs; of HTTP ceiling`,
      `${x.lanes} vs ${x.single}; ${x.lanesToSingle}×; ${x.ofHttp} of HTTP (single jobs ${x.singleOfHttp})`,
      `>= ${t.ofHttp} of HTTP`,
      verdict(x.pass),
    ]);
  }
  if (l.redisCommandsPerOp) {
    const c = l.redisCommandsPerOp;
    const top = Object.entries(l.redisCommandsPerOpByCommand)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
    rows.push([
      '14. Lanes: Redis commands per operation (run + enqueue)',
      `${c.lanes} (single jobs ${c.single}); ${top}`,
      `<= ${t.redisCommandsPerOp}`,
      verdict(c.pass),
    ]);
    const r = l.redisCpuUsPerOp;
    rows.push([
      '14. Lanes: Redis CPU per operation / single jobs',
      `${r.ratio} = ${r.lanes} / ${r.single} µs`,
      `<= ${t.redisCpuRatio}`,
      verdict(r.pass),
    ]);
    const w = l.workerCpuUsPerOp;
    rows.push([
      '14. Lanes: worker CPU per operation / single jobs',
      `${w.ratio} = ${w.lanes} / ${w.single} µs${w.httpClient === undefined ? '' : `; undici alone ${w.httpClient} µs a request, so sluice's own ${w.lanesBeyondHttp} / ${w.singleBeyondHttp} µs`}`,
      `<= ${t.workerCpuRatio}`,
      verdict(w.pass),
    ]);
  }
  if (l.queuedBytesPerOp) {
    const m = l.queuedBytesPerOp;
    rows.push([
      `14. Lanes: Redis used_memory per queued operation (${m.operations} ops of 138 bytes, no worker)`,
      `${m.lanes} bytes (single jobs ${m.single})`,
      `<= ${t.queuedBytesPerOp}`,
      verdict(m.pass),
    ]);
  }
  if (l.enqueue) {
    const e = l.enqueue;
    rows.push([
      `14. Lanes: sluice enqueue of ${e.lines} lines / raw addBulk; peak RSS`,
      `${e.lanesToRaw}× = ${e.lanes} / ${e.raw} ops/s (single jobs ${e.single}); ${e.peakRssMb} MB`,
      `>= ${t.enqueueToRaw}×; < ${t.enqueuePeakRssMb} MB`,
      verdict(e.pass),
    ]);
    if (e.time) {
      rows.push([
        '14. Lanes enqueue: its time; of which checking every line first (`--dry-run` alone); the time a 3× raw addBulk would allow',
        `${e.time.lanesMs} ms; ${e.time.checkMs} ms (${e.time.checkShare} of it); ${e.time.targetMs} ms`,
        '',
        '',
      ]);
    }
  }
  if (l.replay) {
    const p = l.replay;
    rows.push([
      `14. Lanes: sluice dlq replay of ${p.deadLetters} dead letters (one batch, one key): per second; jobs written; Redis commands, CPU per op`,
      `${p.lanes.perSecond}/s = ${p.speedup}× single jobs (${p.single.perSecond}/s); ${p.lanes.jobs} jobs (${p.single.jobs}); ${p.lanes.redisCommandsPerOp} (${p.single.redisCommandsPerOp}); ${p.lanes.redisCpuUsPerOp} µs (${p.single.redisCpuUsPerOp} µs)`,
      '',
      '',
    ]);
  }
  if (l.binding) {
    const b = l.binding;
    rows.push([
      `14. Lanes, binding limit (${b.rate}/s burst ${b.burst}, ${b.processes} processes, ${b.operations} ops): achieved / limit; rejected; CPU / not binding`,
      `${b.achievedRatio} (runs ${b.achievedRuns.join(', ')}); ${b.rejected} rejected; ${b.workerCpuUsPerOp} µs/op = ${b.cpuToNotBinding}× (single jobs ${b.singleJobs?.achievedRatio ?? '?'}, ${b.singleJobs?.workerCpuUsPerOp ?? '?'} µs)`,
      `>= ${t.bindingRatio}; 0; <= ${t.bindingCpuToNotBinding}×`,
      verdict(b.pass),
    ]);
    if (b.pacedHttp)
      rows.push([
        `   undici alone at ${b.pacedHttp.rate}/s from one process (the binding shape's rate per process): CPU per request; ÷ not-binding lanes; lanes at the binding limit ÷ it`,
        `${b.pacedHttp.cpuUsPerOp} µs; ${b.pacedHttp.toNotBinding}× (the floor of the CPU target); ${b.pacedHttp.lanesToPacedHttp}×`,
        '',
        '',
      ]);
    rows.push([
      '   lanes at the binding limit: limiter script calls, Redis commands and Redis CPU per operation (single jobs)',
      `${b.limiterCallsPerOp ?? '?'} (${b.singleJobs?.limiterCallsPerOp ?? '?'}); ${b.redisCommandsPerOp ?? '?'} (${b.singleJobs?.redisCommandsPerOp ?? '?'}); ${b.redisCpuUsPerOp ?? '?'} µs (${b.singleJobs?.redisCpuUsPerOp ?? '?'} µs)`,
      '',
      '',
    ]);
  }
  return rows;
}
