/**
 * The soak's figures (`figures.soak` of bench/results/soak-*.json), its table on stdout and its
 * section of BENCHMARKS.md. Every number printed comes from the run record `bench/soak.mjs` keeps.
 */
import { machineText, median, SOAK_BEGIN, SOAK_END } from './report.mjs';

const sum = (values) => values.reduce((a, b) => a + b, 0);
const round1 = (n) => Math.round(n * 10) / 10;
const s = (ms) => round1(ms / 1000);

/**
 * Why a key was sent again after its final answer, from the run's events: its worker was SIGKILLed
 * before it could record the outcome (`workerKill`), Redis lost the outcome in the SIGKILL
 * (`redisKill`) or was restarting when it was recorded (`redisRestart`); else `unexplained`.
 */
function causeOf(repeat, run) {
  const answered = repeat.finalAt;
  const kill = run.workers.kills.find((k) => k.id === repeat.finalWorker && answered >= k.at - 5_000 && answered <= k.at + 500);
  if (kill) return 'workerKill';
  for (const restart of run.redis.restarts) {
    if (restart.how === 'sigkill' && answered >= restart.killedAt - 3_000 && answered <= restart.upAt + 500) return 'redisKill';
    if (restart.how === 'clean' && answered >= restart.at - 5_000 && answered <= restart.upAt + 500) return 'redisRestart';
  }
  return 'unexplained';
}

/**
 * Per wobbly outage, from what the target saw of each operation (`seenOf(op)`: its record at the
 * target, or undefined): the backlog (wobbly operations enqueued before it came back and answered
 * after), when the last of them was answered, when its circuit was seen closing, and the wobbly
 * target's first requests per second in the 30 s after that close (cut at the next outage): how
 * fast the backlog went once the circuit let it.
 */
export function outageFigures(run, seenOf) {
  const wobbly = run.batches
    .filter((b) => b.ackAt !== undefined)
    .flatMap((b) => b.ops.filter((op) => op.target === 'wobbly').map((op) => ({ op, ackAt: b.ackAt })));
  const outages = run.wobbly.outages;
  outages.forEach((outage, i) => {
    if (outage.upAt === undefined) return;
    const finals = [];
    for (const { op, ackAt } of wobbly) {
      const seen = ackAt < outage.upAt ? seenOf(op) : undefined;
      if (seen && seen.finalAt >= outage.upAt) finals.push(seen.finalAt);
    }
    outage.backlog = finals.length;
    outage.backlogServedAt = finals.length ? Math.round(Math.max(...finals)) : undefined;
    const closedAt = run.circuits.observed.find((o) => o.key === 'wobbly' && o.to === 'closed' && o.at >= outage.downAt)?.at;
    outage.circuitClosedAt = closedAt;
    if (closedAt === undefined) return;
    const until = Math.min(closedAt + 30_000, outages[i + 1]?.downAt ?? Infinity);
    const firsts = wobbly.filter(({ op }) => {
      const seen = seenOf(op);
      return seen !== undefined && seen.firstAt >= closedAt && seen.firstAt < until;
    }).length;
    if (until > closedAt) outage.requestsPerSAfterClose = round1(firsts / ((until - closedAt) / 1000));
  });
}

export function soakFigures(run) {
  const a = run.accounting;
  const killed = run.redis.restarts.find((r) => r.how === 'sigkill');
  const inKillWindow = (op) => killed !== undefined && op.ackAt >= killed.killedAt - 3_000 && op.ackAt <= killed.killedAt;
  const lostByCounters = sum(a.perBatch.map((b) => b.lostByCounters));
  const lostByResults = a.lostOps.length;
  const lostInWindow = a.lostOps.filter(inKillWindow).length;
  const stillQueued = {};
  for (const op of a.lostOps) if (op.state !== 'unknown') stillQueued[op.state] = (stillQueued[op.state] ?? 0) + 1;

  const perTarget = {};
  const byCause = { workerKill: 0, redisKill: 0, redisRestart: 0, unexplained: 0 };
  // A few of each cause, all the unexplained ones up to 20: what to look at first.
  const examples = { workerKill: [], redisKill: [], redisRestart: [], unexplained: [] };
  for (const [name, t] of Object.entries(run.targets)) {
    const causes = { workerKill: 0, redisKill: 0, redisRestart: 0, unexplained: 0 };
    for (const repeat of t.repeatsAfterFinal) {
      const cause = causeOf(repeat, run);
      causes[cause] += 1;
      byCause[cause] += 1;
      if (examples[cause].length < (cause === 'unexplained' ? 20 : 3)) examples[cause].push({ target: name, ...repeat });
    }
    perTarget[name] = {
      requests: t.requests,
      byStatus: t.byStatus,
      keys: t.keysSeen,
      extraRequests: t.extraRequests,
      afterFinal: t.repeatsAfterFinal.length,
      afterFinalByCause: causes,
      concurrent: t.concurrent,
      unanswered: t.unanswered,
      withoutKey: t.withoutKey,
    };
  }
  const targets = Object.values(perTarget);

  const warm = run.rss.afterWarmup?.rssMb;
  const end = run.rss.endOfLoad?.rssMb;
  // One sample is noisy (a GC just before it, or not): the medians of the minute after the warm-up
  // and of the last minute of load are compared too.
  const window = run.params.rssWindowMs;
  const samples = (from, to) => run.rss.series.filter((x) => x.at >= from && x.at <= to && x.rssMb !== undefined).map((x) => x.rssMb);
  const firstMedian = run.rss.afterWarmup ? median(samples(run.rss.afterWarmup.at, run.rss.afterWarmup.at + window)) : undefined;
  const lastMedian = run.rss.endOfLoad ? median(samples(run.rss.endOfLoad.at - window, run.rss.endOfLoad.at)) : undefined;
  const circuits = {};
  for (const [key, final] of Object.entries(run.circuits.final ?? {})) {
    const seen = run.circuits.observed.filter((o) => o.key === key);
    circuits[key] = {
      opened: final.opened,
      closed: final.closed,
      state: final.state,
      observedOpen: seen.filter((o) => o.to === 'open').length,
      observedClosed: seen.filter((o) => o.to === 'closed').length,
    };
  }
  const counterMismatches = a.perBatch
    .filter((b) => b.ackAt !== undefined && b.total !== b.ops)
    .map((b) => ({ batch: b.no, ops: b.ops, total: b.total }));

  return {
    when: run.startedAt,
    minutes: run.params.minutes,
    mode: run.params.mode,
    seed: run.params.seed,
    durationS: s(run.durationMs),
    machine: run.machine,
    operations: {
      batches: run.batches.length,
      enqueued: a.acked,
      notAcknowledged: a.notAcked,
      batchesEnqueuedAgain: run.batches.filter((b) => b.attempts > 1).length,
      succeeded: a.succeeded,
      deadLettered: a.deadLettered,
      deadLetteredByReason: a.deadLetters,
      deadLettersPlanned: a.rejectsPlanned,
      deadLettersUnplanned: a.unexpectedDeadLetters,
      resultLines: a.resultLines,
    },
    lost: {
      byCounters: lostByCounters,
      byResults: lostByResults,
      inRedisKillWindow: lostInWindow,
      unexplained: Math.max(0, Math.max(lostByCounters, lostByResults) - lostInWindow),
      stillQueued,
      examples: a.lostOps.slice(0, 20),
    },
    counterMismatches,
    duplicates: {
      extraRequests: sum(targets.map((t) => t.extraRequests)),
      afterFinal: sum(targets.map((t) => t.afterFinal)),
      byCause,
      concurrent: sum(targets.map((t) => t.concurrent)),
      examples,
    },
    targets: perTarget,
    rss: {
      afterWarmupMb: warm,
      endMb: end,
      growthPct: warm && end ? round1(((end - warm) / warm) * 100) : undefined,
      firstMinuteMedianMb: firstMedian,
      lastMinuteMedianMb: lastMedian,
      medianGrowthPct: firstMedian && lastMedian ? round1(((lastMedian - firstMedian) / firstMedian) * 100) : undefined,
      afterDrainMb: run.rss.afterDrain?.rssMb,
      peakMb: run.rss.afterDrain?.peakMb ?? run.rss.endOfLoad?.peakMb,
      warmupS: s(run.params.rssWarmupMs),
      residentReplaced: Boolean(run.rss.residentReplaced),
    },
    workers: {
      processes: run.params.workers,
      concurrency: run.params.concurrency,
      kills: run.workers.kills.length,
      spawned: run.workers.spawned.length,
      unexpectedExits: run.workers.unexpectedExits.length,
      logs: Object.fromEntries(Object.entries(run.workers.logs).map(([msg, t]) => [msg, t.count])),
    },
    redis: {
      restartsClean: run.redis.restarts.filter((r) => r.how === 'clean').length,
      restartsKilled: run.redis.restarts.filter((r) => r.how === 'sigkill').length,
      downMs: run.redis.restarts.map((r) => r.downMs),
      killCheck: run.redis.killCheck ? { checked: run.redis.killCheck.checked, missing: run.redis.killCheck.missing } : undefined,
      killCost: killed
        ? {
            lostEnqueues: lostInWindow,
            sentAgain: byCause.redisKill,
          }
        : undefined,
    },
    circuits,
    wobbly: run.wobbly.outages.map((o) => ({
      downS: s(o.downAt),
      upS: o.upAt === undefined ? undefined : s(o.upAt),
      circuitClosedS: o.circuitClosedAt === undefined ? undefined : s(o.circuitClosedAt),
      backlog: o.backlog,
      backlogServedS: o.backlogServedAt === undefined ? undefined : s(o.backlogServedAt),
      requestsPerSAfterClose: o.requestsPerSAfterClose,
    })),
    drain: { s: s(run.drain.ms), timedOut: run.drain.timedOut, left: run.drain.jobCounts },
    loadavg: run.loadavg,
  };
}

const counts = (object) =>
  Object.entries(object ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/** [figure, value] pairs, shared by the terminal table and BENCHMARKS.md. */
function rows(f) {
  const d = f.duplicates;
  const r = f.rss;
  return [
    ['Run', `${f.minutes} min (${f.mode} periods, seed ${f.seed}); took ${f.durationS} s with the drain`],
    [
      'Operations enqueued',
      `${f.operations.enqueued} in ${f.operations.batches} batches${f.operations.notAcknowledged ? `; ${f.operations.notAcknowledged} never acknowledged` : ''}${f.operations.batchesEnqueuedAgain ? `; ${f.operations.batchesEnqueuedAgain} batches enqueued again after an error` : ''}`,
    ],
    ['Succeeded', String(f.operations.succeeded)],
    [
      'Dead-lettered',
      `${f.operations.deadLettered} (${counts(f.operations.deadLetteredByReason)}); planned ${f.operations.deadLettersPlanned}, unplanned ${f.operations.deadLettersUnplanned}`,
    ],
    [
      '**Lost** (enqueued − finished)',
      `${f.lost.unexplained} — by batch counters ${f.lost.byCounters}, by result lines ${f.lost.byResults}${f.lost.inRedisKillWindow ? `, of which ${f.lost.inRedisKillWindow} in the Redis SIGKILL's AOF window` : ''}${Object.keys(f.lost.stillQueued).length ? `; still queued: ${counts(f.lost.stillQueued)}` : ''}`,
    ],
    [
      'Batch totals ≠ operations enqueued',
      f.counterMismatches.length ? f.counterMismatches.map((m) => `batch ${m.batch}: ${m.total} of ${m.ops}`).join(', ') : 'none',
    ],
    [
      '**Duplicates**: requests for a key after its final answer',
      `${d.afterFinal} (worker SIGKILL ${d.byCause.workerKill}, Redis SIGKILL ${d.byCause.redisKill}, Redis restart ${d.byCause.redisRestart}, unexplained ${d.byCause.unexplained}); while another was in flight: ${d.concurrent}`,
    ],
    ...Object.entries(f.targets).map(([name, t]) => [
      `Target ${name}`,
      `${t.requests} requests for ${t.keys} keys (${counts(t.byStatus)}); beyond the first per key ${t.extraRequests}, after the final answer ${t.afterFinal}`,
    ]),
    [
      'Resident worker RSS',
      r.afterWarmupMb === undefined
        ? 'not sampled (run shorter than the warm-up)'
        : `${r.afterWarmupMb} MB after ${r.warmupS} s → ${r.endMb} MB at the end (${r.growthPct > 0 ? '+' : ''}${r.growthPct} %); medians of the first and last minute ${r.firstMinuteMedianMb} → ${r.lastMinuteMedianMb} MB (${r.medianGrowthPct > 0 ? '+' : ''}${r.medianGrowthPct} %); ${r.afterDrainMb} MB after the drain, peak ${r.peakMb} MB${r.residentReplaced ? ' — the resident exited and was REPLACED' : ''}`,
    ],
    [
      'Workers',
      `${f.workers.processes} × ${f.workers.concurrency}; ${f.workers.kills} SIGKILLed and replaced, ${f.workers.unexpectedExits} exited by themselves`,
    ],
    ['Redis restarts', `${f.redis.restartsClean} clean (SIGTERM), ${f.redis.restartsKilled} SIGKILL; down ${f.redis.downMs.join(', ')} ms`],
    ...(f.redis.killCost
      ? [
          [
            'Cost of the Redis SIGKILL',
            `acknowledged enqueues lost ${f.redis.killCost.lostEnqueues} (right after the restart: ${f.redis.killCheck?.missing} of the ${f.redis.killCheck?.checked} acknowledged in the 5 s before missing); keys sent again ${f.redis.killCost.sentAgain}`,
          ],
        ]
      : []),
    [
      'Circuit transitions',
      Object.entries(f.circuits)
        .map(([key, c]) => `${key} opened ${c.opened}, closed ${c.closed}${c.state === 'open' ? ' (OPEN at the end)' : ''}`)
        .join('; ') || 'none',
    ],
    [
      'Wobbly outages',
      f.wobbly
        .map(
          (o) =>
            `down ${o.downS}–${o.upS ?? '?'} s, circuit seen closing at ${o.circuitClosedS ?? '?'} s (then ${o.requestsPerSAfterClose ?? '?'} requests/s for 30 s), its backlog of ${o.backlog ?? '?'} answered by ${o.backlogServedS ?? '?'} s`,
        )
        .join('; ') || 'none',
    ],
    ['Drain after the last batch', `${f.drain.s} s${f.drain.timedOut ? ' — TIMED OUT' : ''}`],
    ['Worker warn/error log lines', counts(f.workers.logs)],
    ['Machine', machineText(f.machine)],
  ];
}

export function soakText(f) {
  const table = rows(f).map(([k, v]) => [k.replace(/\*\*/g, ''), v]);
  const width = Math.max(...table.map(([k]) => k.length));
  return table.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function soakMarkdown(f, resultFile) {
  const table = ['| Figure | Value |', '|---|---|', ...rows(f).map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`)].join('\n');
  return `${SOAK_BEGIN}
## Soak

Written by \`npm run soak -- --minutes ${f.minutes}${f.mode === 'fast' ? ' --fast' : ''}\` (\`bench/soak.mjs\`); \`npm run bench\` keeps this section.

- When: ${f.when}, ${f.minutes} minute${f.minutes === 1 ? '' : 's'} of load (**${f.mode} periods**), seed ${f.seed}
- Raw results: \`bench/results/${resultFile}\` (git-ignored)

${table}

What the run does: a private \`redis-server\` with AOF (\`appendfsync everysec\`), restarted cleanly every
${f.mode === 'fast' ? 'minute' : '10 minutes'} and once by SIGKILL mid-run; three \`sluice worker\` processes × ${f.workers.concurrency}, one of them (the
*resident*) never killed, one of the others SIGKILLed every ${f.mode === 'fast' ? '20 s' : 'minute'} and replaced; a batch of 200–500
operations every 10–20 s to four targets that count requests per \`Idempotency-Key\`: \`steady\` (201; 2 % of
its operations go to a path answering 422, dead-lettered on purpose), \`flaky\` (20 % 503), \`limited\` (a
strict 12/s limiter, the config's limit 10/s) and \`wobbly\` (refusing connections ${f.mode === 'fast' ? '35–45 s every 100 s' : '60–90 s every 5 minutes'}).
*Lost*: an operation whose enqueue was acknowledged and that has no result line (and its batch's
counters agree) after the drain. *Duplicates*: requests for a key the target had already answered
finally (2xx, or the planned 422); retries after a 503, 429 or refused connection are not
duplicates. A SIGKILLed worker's answered-but-unrecorded requests are sent again: that is what the
idempotency key is for.
${SOAK_END}`;
}
