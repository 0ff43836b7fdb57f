/**
 * figures.cluster: the not-binding shape on a loopback Redis Cluster beside the single
 * redis-server (issue 16), each pair measured back to back in the same bench run, and the scaling
 * model drawn from it. See bench/run.mjs for the runs (clusterSingle, clusterOne, clusterGroups,
 * clusterSingleSharded, clusterSharded) and bench/cluster.mjs for the cluster.
 */
import { med, median } from './figure-math.mjs';
import { round } from './redis-stats.mjs';

/** Operations per second the scaling model sizes a cluster for. */
const SCALE_TARGETS = [10_000, 100_000, 1_000_000];

const jps = (run) => run.jobsPerSecond;
const masterNodes = (run) => run.redis.nodes.filter((node) => node.role === 'master');
/** A run's masters, busiest (most Redis CPU per operation) first. */
const byLoad = (run) => masterNodes(run).sort((a, b) => b.cpuUsPerOp - a.cpuUsPerOp);

/** figures.cluster, or undefined when the run had no cluster runs. */
export function clusterFigure(R) {
  const out = {};
  // The same workload (one queue of one shard) on the single server, against: one queue of one
  // shard on the cluster; one queue of three shards on the cluster's three masters (S = 3).
  for (const [name, singleName, clusterName] of [
    ['oneQueue', 'clusterSingle', 'clusterOne'],
    ['sharded', 'clusterSingle', 'clusterSharded'],
  ]) {
    const single = R[singleName];
    const clustered = R[clusterName];
    if (!single?.length || !clustered?.length) continue;
    out[name] = layoutFigure(single, clustered);
  }
  // Three shards on the single server: what the shards cost without a cluster.
  if (R.clusterSingle?.length && R.clusterSingleSharded?.length) {
    const pairs = R.clusterSingle
      .map((run, i) => (R.clusterSingleSharded[i] ? round(jps(R.clusterSingleSharded[i]) / jps(run), 3) : undefined))
      .filter(Boolean);
    out.shardsOnSingle = {
      shards: R.clusterSingleSharded[0].shards ?? 1,
      jobsPerSecond: { oneShard: med(R.clusterSingle, jps), shards: med(R.clusterSingleSharded, jps) },
      ratio: median(pairs),
      pairRatios: pairs,
      redisCpuUsPerOp: {
        oneShard: med(R.clusterSingle, (run) => run.redis.cpuUsPerOp),
        shards: med(R.clusterSingleSharded, (run) => run.redis.cpuUsPerOp),
      },
      commandsPerOp: {
        oneShard: med(R.clusterSingle, (run) => run.redis.callsPerOp),
        shards: med(R.clusterSingleSharded, (run) => run.redis.callsPerOp),
      },
    };
  }
  if (out.oneQueue) out.scaling = scaling(R.clusterSingle, R.clusterOne, R.clusterSharded);
  if (R.clusterOne?.length && R.clusterGroups?.length) out.limiterGroups = limiterGroups(R.clusterOne, R.clusterGroups);
  return Object.keys(out).length ? out : undefined;
}

/** A run's masters that served a limit key's group (and no queue): their commands per operation, busiest first. */
const limiterMasterCalls = (run) =>
  byLoad(run)
    .filter((node) => node.serves === 'limits')
    .map((node) => node.callsPerOp);

/** A run's masters that served a limit key's group (and no queue): their Redis CPU per operation, busiest first. */
const limiterMasters = (run) =>
  byLoad(run)
    .filter((node) => node.serves === 'limits')
    .map((node) => node.cpuUsPerOp);

/**
 * The limiter's work by master: one queue whose operations name one key (`one`: its group's master
 * does all limiter work) against the same queue whose operations name keys of two groups on two
 * other masters (`grouped`), run back to back.
 */
function limiterGroups(one, grouped) {
  const oneKeyUsPerOp = med(one, (run) => limiterMasters(run)[0]);
  const groups = limiterMasters(grouped[0]).length;
  const mastersUsPerOp = Array.from({ length: groups }, (_, rank) => med(grouped, (run) => limiterMasters(run)[rank]));
  const summed = round(
    mastersUsPerOp.reduce((a, b) => a + b, 0),
    1,
  );
  const pairs = one.map((run, i) => (grouped[i] ? round(jps(grouped[i]) / jps(run), 3) : undefined)).filter(Boolean);
  // A master's own background (cron, cluster bus, replication pings) is paid per second, not per
  // operation: the master that served nothing in the one-key runs measures it at this rate.
  const idleUsPerOp = med(one, (run) => masterNodes(run).find((node) => !node.serves)?.cpuUsPerOp ?? 0);
  const net = (us) => round(us - idleUsPerOp, 1);
  return {
    groups,
    /** Each group's master, busiest first: Redis CPU per operation of the run (each served about 1/groups of them). */
    mastersUsPerOp,
    summedUsPerOp: summed,
    /** One key's master, all limiter work on it. */
    oneKeyUsPerOp,
    /** Limited operations/s before the busiest limiter master is at one core: one group, then these groups. */
    limitedOpsPerSecond: { oneGroup: Math.floor(1e6 / oneKeyUsPerOp), groups: Math.floor(1e6 / mastersUsPerOp[0]) },
    gain: round(oneKeyUsPerOp / mastersUsPerOp[0], 2),
    /** Limiter calls per operation on each group's master, and on the one key's. */
    callsPerOp: {
      groups: Array.from({ length: groups }, (_, rank) => med(grouped, (run) => limiterMasterCalls(run)[rank])),
      oneKey: med(one, (run) => limiterMasterCalls(run)[0]),
    },
    /** Less the background of an idle master at the same rate: the limiter's own work. */
    idleUsPerOp,
    netUsPerOp: { groups: mastersUsPerOp.map(net), oneKey: net(oneKeyUsPerOp) },
    netGain: round(net(oneKeyUsPerOp) / net(mastersUsPerOp[0]), 2),
    jobsPerSecond: { oneGroup: med(one, jps), groups: med(grouped, jps) },
    ratio: median(pairs),
    pairRatios: pairs,
  };
}

/** One layout (one queue, or three) on the single server and on the cluster. */
function layoutFigure(single, clustered) {
  const pairs = single.map((run, i) => (clustered[i] ? round(jps(clustered[i]) / jps(run), 3) : undefined)).filter(Boolean);
  const both = (pick) => ({ single: med(single, pick), cluster: med(clustered, pick) });
  const extra = {};
  for (const name of new Set(clustered.flatMap((run) => Object.keys(run.redis.workerCallsPerOpByCommand)))) {
    const diff = both((run) => run.redis.workerCallsPerOpByCommand[name] ?? 0);
    if (Math.abs(diff.cluster - diff.single) >= 0.05) extra[name] = round(diff.cluster - diff.single, 2);
  }
  const ranks = masterNodes(clustered[0]).map((_, rank) => med(clustered, (run) => byLoad(run)[rank].cpuUsPerOp));
  const total = ranks.reduce((a, b) => a + b, 0);
  return {
    queues: clustered[0].queues?.length ?? 1,
    shards: clustered[0].shards ?? 1,
    processesPerQueue: clustered[0].processes,
    concurrency: clustered[0].concurrency,
    operations: clustered[0].operations,
    jobsPerSecond: both(jps),
    /** Cluster ÷ single server, jobs/s of runs measured back to back. */
    ratio: median(pairs),
    pairRatios: pairs,
    /** Run + enqueue, summed over the masters. */
    commandsPerOp: both((run) => run.redis.callsPerOp),
    /** The run's commands per operation the cluster adds (− fewer), by command. */
    extraCommandsPerOp: Object.fromEntries(Object.entries(extra).sort(([, x], [, y]) => Math.abs(y) - Math.abs(x))),
    redisCpuUsPerOp: {
      single: med(single, (run) => run.redis.cpuUsPerOp),
      /** Summed over the masters. */
      masters: med(clustered, (run) => run.redis.cpuUsPerOp),
      replicas: med(clustered, (run) => run.redis.replicaCpuUsPerOp),
    },
    /** Each master's Redis CPU per operation of the run, busiest first (median of each rank over the runs). */
    mastersUsPerOp: ranks,
    /** What the busiest master served in each run (queue, limits, both). */
    busiestServes: clustered.map((run) => byLoad(run)[0].serves),
    /** Each rank's share of the masters' CPU. */
    shares: ranks.map((us) => round(us / total, 3)),
    /** The busiest master's CPU ÷ the masters' mean (1 = even; the number of masters = all on one). */
    maxToMean: med(clustered, (run) => {
      const cpu = masterNodes(run).map((node) => node.cpuUsPerOp);
      return round(Math.max(...cpu) / (cpu.reduce((a, b) => a + b, 0) / cpu.length), 2);
    }),
    otherLoadCores: [...single, ...clustered].map((run) => run.otherLoadCores),
  };
}

/**
 * From the one-queue cluster runs, where one master serves every operation's queue and another the
 * limiter: the busiest master's Redis CPU per operation, what one master carries at 100 % of its
 * core, masters for SCALE_TARGETS; the limiter's master bounds every limited operation whatever the
 * number of masters (its keys share one slot).
 */
function scaling(single, clustered, sharded) {
  const busiestUsPerOp = med(clustered, (run) => byLoad(run)[0].cpuUsPerOp);
  // One queue over three masters: its busiest master bounds it, at a fraction of one master's work.
  const shardedBusiestUsPerOp = sharded?.length ? med(sharded, (run) => byLoad(run)[0].cpuUsPerOp) : undefined;
  const limitsUsPerOp = med(clustered, (run) => masterNodes(run).find((node) => node.serves?.includes('limits'))?.cpuUsPerOp);
  const idleUsPerOp = med(clustered, (run) => masterNodes(run).find((node) => !node.serves)?.cpuUsPerOp);
  const singleUsPerOp = med(single, (run) => run.redis.cpuUsPerOp);
  const perMaster = Math.floor(1e6 / busiestUsPerOp);
  return {
    busiestUsPerOp,
    busiestServes: clustered.map((run) => byLoad(run)[0].serves),
    opsPerSecondPerMaster: perMaster,
    mastersFor: Object.fromEntries(SCALE_TARGETS.map((target) => [target, Math.ceil(target / perMaster)])),
    limitsUsPerOp,
    limitedOpsPerSecondMax: limitsUsPerOp ? Math.floor(1e6 / limitsUsPerOp) : undefined,
    /** The master that served neither: its cron, cluster bus and replication pings, per operation of the run. */
    idleUsPerOp,
    singleUsPerOp,
    singleOpsPerSecond: Math.floor(1e6 / singleUsPerOp),
    /** One queue of three shards on three masters: its busiest master's µs/op, and the queue's ceiling at one core per master. */
    shardedBusiestUsPerOp,
    shardedQueueOpsPerSecond: shardedBusiestUsPerOp ? Math.floor(1e6 / shardedBusiestUsPerOp) : undefined,
    /** How much more one queue carries spread over three masters than on one. */
    shardedGain: shardedBusiestUsPerOp ? round(busiestUsPerOp / shardedBusiestUsPerOp, 2) : undefined,
  };
}

const thousands = (n) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

/** The report's rows for figures.cluster (figure 15). */
export function clusterRows(c) {
  if (!c) return [];
  const rows = [];
  for (const x of [c.oneQueue, c.sharded]) {
    if (!x) continue;
    const layout = x.shards > 1 ? `one queue of ${x.shards} shards on ${x.shards} masters` : 'one queue of one shard';
    const shape = `${layout}, ${x.processesPerQueue} process${x.processesPerQueue > 1 ? 'es' : ''} × ${x.concurrency}, ${x.operations} ops`;
    rows.push([
      `15. Redis Cluster / single redis-server, limit not binding, ${shape}: jobs/s`,
      `${x.ratio} = ${x.jobsPerSecond.cluster} / ${x.jobsPerSecond.single} (pairs ${x.pairRatios.join(', ')})`,
      '',
      '',
    ]);
    const r = x.redisCpuUsPerOp;
    const served = x.busiestServes.join(', ');
    rows.push([
      `15. Redis CPU µs/op, ${layout}: single; cluster masters (each, busiest first); replicas`,
      `${r.single}; ${r.masters} (${x.mastersUsPerOp.join(' / ')}; busiest served ${served}; max/mean ${x.maxToMean}); ${r.replicas}`,
      '',
      '',
    ]);
    const extra = Object.entries(x.extraCommandsPerOp)
      .slice(0, 5)
      .map(([name, n]) => `${name} ${n > 0 ? '+' : ''}${n}`)
      .join(', ');
    rows.push([
      `15. Redis commands per op (run + enqueue, masters summed), ${layout}: single / cluster`,
      `${x.commandsPerOp.single} / ${x.commandsPerOp.cluster}${extra ? `; the cluster's run adds ${extra}` : ''}`,
      '',
      '',
    ]);
  }
  const o = c.shardsOnSingle;
  if (o)
    rows.push([
      `15. ${o.shards} shards / one shard, both on the single redis-server: jobs/s; Redis CPU µs/op; commands/op`,
      `${o.ratio} = ${o.jobsPerSecond.shards} / ${o.jobsPerSecond.oneShard} (pairs ${o.pairRatios.join(', ')}); ${o.redisCpuUsPerOp.shards} / ${o.redisCpuUsPerOp.oneShard}; ${o.commandsPerOp.shards} / ${o.commandsPerOp.oneShard}`,
      '',
      '',
    ]);
  const g = c.limiterGroups;
  if (g)
    rows.push([
      `15. Limiter by master, one queue: ${g.groups} limit groups on ${g.groups} masters (each, busiest first) / one key on one master, Redis CPU µs/op → limited ops/s at one core`,
      `${g.mastersUsPerOp.join(' / ')} (sum ${g.summedUsPerOp}) / ${g.oneKeyUsPerOp} → ${g.limitedOpsPerSecond.groups} / ${g.limitedOpsPerSecond.oneGroup}/s (${g.gain}×; less an idle master's ${g.idleUsPerOp}: ${g.netUsPerOp.groups.join(' / ')} / ${g.netUsPerOp.oneKey}, ${g.netGain}×); commands/op ${g.callsPerOp.groups.join(' + ')} / ${g.callsPerOp.oneKey}; jobs/s ${g.ratio} (pairs ${g.pairRatios.join(', ')})`,
      '',
      '',
    ]);
  const s = c.scaling;
  if (s?.shardedQueueOpsPerSecond)
    rows.push([
      "15. One queue over 3 masters: busiest master µs/op → the queue's ops/s at one core per master; gain over one master",
      `${s.shardedBusiestUsPerOp} µs → ${s.shardedQueueOpsPerSecond}/s; ${s.shardedGain}× (one master: ${s.busiestUsPerOp} µs → ${s.opsPerSecondPerMaster}/s)`,
      '',
      '',
    ]);
  if (s)
    rows.push([
      '15. Scaling model: busiest master µs/op → ops/s per master → masters for 10k / 100k / 1M ops/s; limiter master per group',
      `${s.busiestUsPerOp} µs → ${s.opsPerSecondPerMaster}/s → ${SCALE_TARGETS.map((t) => s.mastersFor[t]).join(' / ')}; limiter ${s.limitsUsPerOp} µs → at most ${s.limitedOpsPerSecondMax} limited ops/s per limit group`,
      '',
      '',
    ]);
  return rows;
}

/** BENCHMARKS.md's section on the cluster: what was measured and the scaling model, with this run's numbers. */
export function clusterSection(c, results) {
  const s = c?.scaling;
  if (!s) return '';
  const p = results.params.cluster;
  const lines = SCALE_TARGETS.map((t) => `| ${thousands(t)} | ${s.mastersFor[t]} | ${Math.ceil(t / s.limitedOpsPerSecondMax)} |`);
  return `
## Redis Cluster: what it costs here, and the scaling model

Figure 15 runs the not-binding shape of (3) on a loopback Redis Cluster of ${p.masters} masters + ${p.masters * p.replicasPerMaster} replicas and
on the single redis-server, back to back. **On this ${results.machine.cpus}-core machine the cluster cannot be faster**:
its ${p.masters * (1 + p.replicasPerMaster)} redis-server processes (each master also feeding its replica) share the cores with the
workers and the single server's one, so the ratio shows the cluster's overhead, not what it scales to. The scaling model below uses Redis CPU per operation, which does not depend on how
many cores there were.

A queue's keys share one hash tag per shard (\`{queue}\`, \`{queue#1}\`, …: one slot, one master
each), and a limit key's its group's (\`{limits:<group>}\`, the key's name before its first \`:\`).
In the one-queue run (one shard) its master is not its limit key's: the busiest master (what it served, by run: ${s.busiestServes.join(', ')})
spends **${s.busiestUsPerOp} µs** of Redis CPU per operation, so one master at 100 % of one core carries
about **${s.opsPerSecondPerMaster} operations/s** (1e6 ÷ µs; the single redis-server, which does the queue's
and the limiter's work, ${s.singleUsPerOp} µs → ${s.singleOpsPerSecond}/s). With the work spread evenly over at least as many
shards (of one queue or of several) as masters:

| operations/s | masters (busiest master's µs/op) | limit groups at least, if every operation is limited |
|---|---|---|
${lines.join('\n')}
${
  s.shardedQueueOpsPerSecond
    ? `
One queue spread over 3 shards on the 3 masters (\`sluice shards 3\`) puts that work on three
masters: its busiest master spends **${s.shardedBusiestUsPerOp} µs** per operation of the queue, so the one queue
carries about **${s.shardedQueueOpsPerSecond} operations/s** at one core per master, ${s.shardedGain}× what it carries on one
master. A queue of S shards on M ≥ S masters scales so, as long as its shards sit on different
masters (check with \`sluice shards\`).
`
    : ''
}
A limit group's master spends ${s.limitsUsPerOp} µs per operation through a configured limit: one group carries
about ${s.limitedOpsPerSecondMax} limited operations/s, and groups on different masters share the work${groupsText(c.limiterGroups)}.
A single key, or keys that one operation names together (one group), stays on one master.
Per-operation CPU includes each node's own background (cron, cluster bus, replication pings: the
master that served neither spent ${s.idleUsPerOp} µs per operation of the run), spread over fewer operations
when the run is slow, and Redis on ${results.machine.cpus} shared cores; a real deployment needs headroom (a master
near 100 % answers late). Read the counts as orders of magnitude.
`;
}

/** The measured split of the limiter's work over groups, in words (BENCHMARKS.md). */
function groupsText(g) {
  if (!g) return '';
  const calls = g.callsPerOp.groups.reduce((a, b) => a + b, 0);
  const perCall = (us, n) => (n > 0 ? round(us / n, 1) : '?');
  const groupsNet = g.netUsPerOp.groups.reduce((a, b) => a + b, 0);
  return (
    ` (measured: the same queue's operations over ${g.groups} groups on ${g.groups} masters cost them ${g.mastersUsPerOp.join(' and ')} µs per ` +
    `operation against ${g.oneKeyUsPerOp} on one key's master: ${g.gain}× the limited operations/s of one group, ${g.netGain}× less each ` +
    `master's background, not ${g.groups}×. The groups took ${round(calls, 2)} limiter commands per operation against ${g.callsPerOp.oneKey} ` +
    `for one key (each key keeps its own stock of slots, refilled on its own), at ${perCall(groupsNet, calls)} µs each against ` +
    `${perCall(g.netUsPerOp.oneKey, g.callsPerOp.oneKey)} (less the background; likely fewer commands per wake-up on each master))`
  );
}
