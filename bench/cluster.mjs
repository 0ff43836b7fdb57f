/**
 * The cluster part's Redis: a loopback Redis Cluster (src/support/redis-cluster.ts), a cluster
 * client for the runs (ctx.redis, ctx.redisUrl) and a plain connection to each node for its INFO
 * (ctx.nodes, see run-batch.mjs): commandstats and CPU are per node, and through the cluster
 * client INFO would come from whichever node it picked. Queue names are chosen by the master that
 * serves their hash tag `{queue}` (a sharded queue's: by the masters of its shards' tags,
 * `{queue#i}`); a limit key's by the master of its group's tag (`{limits:<group>}`): the
 * not-binding shape's key `fast` on one master, or keys of several groups chosen on several.
 */
const lib = (path) => import(new URL(`../dist/src/${path}`, import.meta.url).href);
const { startRedisCluster } = await lib('support/redis-cluster.js');
const { createRedisConnection, closeRedis } = await lib('redis/connection.js');
const { limiterKeys, queueMetaKey, shardName } = await lib('redis/keys.js');

/** How many names `queuesOnMasters` tries before it gives up (with 3 masters a few do). */
const MAX_TRIES = 200;

/**
 * Starts the cluster and connects to it and to each node. `close()` (idempotent) disconnects and
 * stops every node, also when the start failed half-way.
 */
export async function startBenchCluster({ masters, replicasPerMaster }) {
  const cluster = await startRedisCluster({ masters, replicasPerMaster });
  const clients = [];
  const connect = (url) => {
    const client = createRedisConnection(url, { name: 'sluice:bench' });
    clients.push(client);
    return client;
  };
  let closing;
  const close = () =>
    (closing ??= (async () => {
      await Promise.allSettled(clients.map((client) => closeRedis(client)));
      await cluster.stop();
    })());
  try {
    const masterPorts = new Set((await cluster.masters()).map((node) => node.port));
    const nodes = cluster.nodes.map((node) => ({
      port: node.port,
      role: masterPorts.has(node.port) ? 'master' : 'replica',
      redis: connect(`redis://127.0.0.1:${node.port}`),
    }));
    /** The master of the not-binding shape's limit key (the target's, `fast`). */
    const limitsMaster = (await cluster.masterOf(limiterKeys.state('fast'))).port;
    const queuePort = async (name) => (await cluster.masterOf(queueMetaKey(name))).port;

    /** `count` limit keys `${base}N` (each its own group) on different masters, none of them one of `avoid` (ports). */
    async function groupsOnMasters(base, count, avoid = []) {
      const taken = new Set(avoid);
      const keys = [];
      for (let n = 0; keys.length < count; n++) {
        if (n === MAX_TRIES) throw new Error(`no ${count} masters for limit keys ${base}N besides ${[...taken].join(', ')}`);
        const { port } = await cluster.masterOf(limiterKeys.state(`${base}${n}`));
        if (taken.has(port)) continue;
        taken.add(port);
        keys.push(`${base}${n}`);
      }
      return keys;
    }

    /** `count` names `${base}-N` whose queues are served by different masters, none of them one of `avoid` (ports). */
    async function queuesOnMasters(base, count, avoid = []) {
      const taken = new Set(avoid);
      const names = [];
      for (let n = 0; names.length < count; n++) {
        if (n === MAX_TRIES) throw new Error(`no ${count} masters for queues ${base}-N besides ${[...taken].join(', ')}`);
        const name = `${base}-${n}`;
        const { port } = await cluster.masterOf(queueMetaKey(name));
        if (taken.has(port)) continue;
        taken.add(port);
        names.push(name);
      }
      return names;
    }

    /**
     * A queue name whose `shards` shards are served by `shards` different masters (a slot's master
     * is the cluster's choice: an operator with as many shards as masters checks the placement
     * with `sluice shards` and moves a slot, or picks a name, as this does).
     */
    async function shardedQueueOnMasters(base, shards) {
      for (let n = 0; n < MAX_TRIES; n++) {
        const name = `${base}-${n}`;
        const ports = await Promise.all(
          Array.from({ length: shards }, async (_, index) => (await cluster.masterOf(queueMetaKey(shardName(name, index)))).port),
        );
        if (new Set(ports).size === shards) return name;
      }
      throw new Error(`no name ${base}-N whose ${shards} shards sit on ${shards} masters`);
    }

    /** The run's node figures, each master labelled with what it served: `queue`, `limits`, both, or nothing. */
    async function labelMasters(run) {
      const queues = (run.queues ?? [run.queue]).flatMap((name) =>
        Array.from({ length: run.shards ?? 1 }, (_, index) => shardName(name, index)),
      );
      const queuePorts = new Set(await Promise.all(queues.map(queuePort)));
      const limitPorts = new Set(
        await Promise.all((run.limitKeys ?? ['fast']).map(async (key) => (await cluster.masterOf(limiterKeys.state(key))).port)),
      );
      const serves = (port) => [queuePorts.has(port) && 'queue', limitPorts.has(port) && 'limits'].filter(Boolean).join('+');
      const nodes = run.redis.nodes.map((node) => (node.role === 'master' ? { ...node, serves: serves(node.port) } : node));
      return { ...run, redis: { ...run.redis, nodes } };
    }

    return {
      url: cluster.url,
      redis: connect(cluster.url),
      nodes,
      limitsMaster,
      queuesOnMasters,
      shardedQueueOnMasters,
      groupsOnMasters,
      queuePort,
      labelMasters,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
