/**
 * A private Redis Cluster on loopback, for tests and benchmarks: `masters` redis-server processes
 * in cluster mode, each with `replicasPerMaster` replicas, joined with `redis-cli --cluster
 * create`. Nothing runs at import time; the caller owns the handle and stops it.
 *
 * Measured on a 2-core machine with Redis 7.0: all slots are served about a second after `create`;
 * a master killed once its replica has attached is replaced ~3 s later with a node timeout of 2 s;
 * killed before its replica synced, it may never be (so `start` waits for every replica's link).
 */
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { SluiceError } from '../errors.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';

const run = promisify(execFile);

export interface RedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a master may be silent before its replica takes over. */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node (e.g. `--appendonly yes`, so a node restarted keeps its data). */
  args?: string[];
}

export interface ClusterNode {
  server: RedisServerHandle;
  port: number;
}

export interface RedisClusterHandle {
  /** `redis+cluster://127.0.0.1:P1,…` with every node as a seed. */
  readonly url: string;
  readonly nodes: readonly ClusterNode[];
  /** The node that serves `key`'s slot now (asked of a live node). */
  masterOf(key: string): Promise<ClusterNode>;
  /** The masters now, by port. */
  masters(): Promise<ClusterNode[]>;
  /** Until every slot is served and every live master has a replica attached (or `timeoutMs`). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Moves `key`'s slot (with its keys) to the master `to`, as `redis-cli --cluster reshard` does. */
  moveSlotOf(key: string, to: ClusterNode): Promise<void>;
  /** Stops every node and removes their directories. Idempotent. */
  stop(): Promise<void>;
}

const HEALTHY_TIMEOUT_MS = 30_000;

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const servers: RedisServerHandle[] = [];
  const stopAll = () => Promise.all(servers.map((server) => server.stop().catch(() => undefined)));
  try {
    for (let i = 0; i < masters * (1 + replicas); i++)
      servers.push(await startRedisServer({ cluster: { nodeTimeoutMs }, ...(options.args ? { args: options.args } : {}) }));
  } catch (error) {
    await stopAll();
    throw error;
  }
  const nodes: ClusterNode[] = servers.map((server) => ({ server, port: server.port }));
  const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);

  async function waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await healthy(nodes, replicas > 0).catch(() => false)) return;
      if (Date.now() > deadline)
        throw new SluiceError(`the cluster did not become healthy within ${timeoutMs} ms`, { code: 'REDIS_START_FAILED' });
      await delay(100);
    }
  }

  try {
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitHealthy();
  } catch (error) {
    await stopAll();
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis+cluster://${addresses.join(',')}`,
    nodes,
    masterOf: (key) => masterOf(nodes, key),
    masters: () => liveMasters(nodes),
    waitHealthy,
    moveSlotOf: (key, to) => moveSlotOf(nodes, key, to),
    stop() {
      stopping ??= stopAll().then(() => undefined);
      return stopping;
    },
  };
}

/** A short-lived plain connection to one node (cluster commands name the node they ask). */
async function ask<T>(node: ClusterNode, command: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(node.port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}

/** Asks the nodes in turn until a live one answers. */
async function askAny<T>(nodes: readonly ClusterNode[], command: (redis: Redis) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (const node of nodes) {
    try {
      return await ask(node, command);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

interface NodeEntry {
  id: string;
  port: number;
  flags: string[];
  masterId: string;
  connected: boolean;
  /** Slot ranges it serves: `from-to` or one slot. */
  slots: string[];
}

/** CLUSTER NODES as a live node sees it. */
async function nodeTable(nodes: readonly ClusterNode[]): Promise<NodeEntry[]> {
  const text = await askAny(nodes, (redis) => redis.call('CLUSTER', 'NODES') as Promise<string>);
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId, , , , link, ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        flags: flags!.split(','),
        masterId: masterId!,
        connected: link === 'connected',
        slots: slots.filter((slot) => /^\d/.test(slot)),
      };
    });
}

function byPort(nodes: readonly ClusterNode[], port: number): ClusterNode {
  const node = nodes.find((candidate) => candidate.port === port);
  if (!node) throw new Error(`no node of this cluster on port ${port}`);
  return node;
}

const isLiveMaster = (entry: NodeEntry) => entry.flags.includes('master') && !entry.flags.includes('fail');

async function slotOf(nodes: readonly ClusterNode[], key: string): Promise<number> {
  return Number(await askAny(nodes, (redis) => redis.call('CLUSTER', 'KEYSLOT', key)));
}

async function masterOf(nodes: readonly ClusterNode[], key: string): Promise<ClusterNode> {
  const slot = await slotOf(nodes, key);
  for (const entry of (await nodeTable(nodes)).filter(isLiveMaster)) {
    for (const range of entry.slots) {
      const [from, to = from] = range.split('-').map(Number);
      if (slot >= from! && slot <= to!) return byPort(nodes, entry.port);
    }
  }
  throw new Error(`no live master serves slot ${slot} (of ${JSON.stringify(key)})`);
}

async function liveMasters(nodes: readonly ClusterNode[]): Promise<ClusterNode[]> {
  return (await nodeTable(nodes)).filter(isLiveMaster).map((entry) => byPort(nodes, entry.port));
}

/** Every master that serves slots says the cluster is ok and, when replicas are wanted, has one attached. */
async function healthy(nodes: readonly ClusterNode[], withReplicas: boolean): Promise<boolean> {
  const entries = await nodeTable(nodes);
  const live = entries.filter((entry) => !entry.flags.includes('fail') && !entry.flags.includes('fail?'));
  const serving = live.filter((entry) => entry.flags.includes('master') && entry.slots.length > 0);
  for (const master of serving) {
    const ok = await ask(byPort(nodes, master.port), async (redis) =>
      /cluster_state:ok/.test((await redis.call('CLUSTER', 'INFO')) as string),
    );
    if (!ok) return false;
    if (!withReplicas) continue;
    const replica = live.find((entry) => entry.masterId === master.id && entry.connected);
    if (!replica) return false;
    const up = await ask(byPort(nodes, replica.port), async (redis) => /master_link_status:up/.test(await redis.info('replication')));
    if (!up) return false;
  }
  return serving.length > 0;
}

/** As redis-cli --cluster reshard moves one slot: importing, migrating, its keys moved in rounds, then owned. */
async function moveSlotOf(nodes: readonly ClusterNode[], key: string, to: ClusterNode): Promise<void> {
  const from = await masterOf(nodes, key);
  if (from.port === to.port) return;
  const slot = await slotOf(nodes, key);
  const [fromId, toId] = await Promise.all(
    [from, to].map((node) => ask(node, (redis) => redis.call('CLUSTER', 'MYID') as Promise<string>)),
  );
  await ask(to, (redis) => redis.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId!));
  await ask(from, (redis) => redis.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId!));
  for (;;) {
    const keys = (await ask(from, (redis) => redis.call('CLUSTER', 'GETKEYSINSLOT', slot, 100))) as string[];
    if (keys.length === 0) break;
    await ask(from, (redis) => redis.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'KEYS', ...keys));
  }
  for (const node of [to, from]) await ask(node, (redis) => redis.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId!));
  // The other masters learn it by gossip; tell them at once, as redis-cli does.
  for (const master of await liveMasters(nodes)) {
    if (master.port !== to.port && master.port !== from.port)
      await ask(master, (redis) => redis.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId!)).catch(() => undefined);
  }
}
