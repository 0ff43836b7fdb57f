/**
 * docker-compose.cluster.yml's init service, run for real without Docker: its script, with the node
 * services' names replaced by six local cluster-mode redis-servers, forms a cluster of 3 masters and
 * 3 replicas, and run again (the next `docker compose up`) leaves it as it is.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../src/support/redis-server.js';
import { interpolate, isOneShot, loadCompose, redisServers } from '../helpers/compose-file.js';

const run = promisify(execFile);
const compose = loadCompose('docker-compose.cluster.yml');
const nodeNames = Object.keys(redisServers(compose));
const init = Object.values(compose.services).find(isOneShot);

let servers: RedisServerHandle[] = [];
beforeAll(async () => {
  servers = await Promise.all(nodeNames.map(() => startRedisServer({ cluster: { nodeTimeoutMs: 2_000 } })));
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

/** The init script, each `redis-N:6379` pointed at the local server standing in for that node. */
function localScript(): string {
  expect(init?.command?.slice(0, 2)).toEqual(['sh', '-c']);
  const script = interpolate(init!.command![2]!);
  const local = script.replace(/^nodes="([^"]*)"$/m, (_, list: string) => {
    const addresses = list.split(' ').map((entry) => {
      const index = nodeNames.indexOf(entry.split(':')[0]!);
      expect(index, entry).toBeGreaterThanOrEqual(0);
      return `127.0.0.1:${servers[index]!.port}`;
    });
    return `nodes="${addresses.join(' ')}"`;
  });
  expect(local).not.toBe(script);
  return local;
}

const runInit = () => run('sh', ['-c', localScript()], { timeout: 90_000 });

async function clusterNodes(port: number): Promise<string[][]> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'nodes'], { timeout: 5_000 });
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.split(' '));
}

const hasFlag = (entry: string[], flag: string) => entry[2]!.split(',').includes(flag);

/** The node table as `port` sees it once it shows 3 masters and 3 replicas, or as it is after 15 s. */
async function settledTable(port: number): Promise<string[][]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const table = await clusterNodes(port);
    const settled =
      table.filter((entry) => hasFlag(entry, 'master')).length === 3 && table.filter((entry) => hasFlag(entry, 'slave')).length === 3;
    if (settled || Date.now() > deadline) return table;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("docker-compose.cluster.yml's init script", () => {
  it('forms a cluster of 3 masters and 3 replicas from the six nodes, then leaves it alone on the next run', async () => {
    const first = await runInit();
    expect(first.stdout).not.toContain('formed already');
    expect(first.stdout).toContain('the cluster is ok');

    // `cluster_state:ok` says every slot is served; that a node now replicates another reaches the
    // other nodes by gossip a moment later (one CI run read 4 masters here): read once it has.
    const table = await settledTable(servers[0]!.port);
    expect(table).toHaveLength(6);
    const masters = table.filter(([, , flags]) => flags!.split(',').includes('master'));
    const replicas = table.filter(([, , flags]) => flags!.split(',').includes('slave'));
    expect(masters).toHaveLength(3);
    expect(replicas).toHaveLength(3);
    // Every master has a replica; together they serve every slot.
    for (const [id] of masters) expect(replicas.filter(([, , , masterId]) => masterId === id)).toHaveLength(1);
    const slots = masters
      .flatMap((entry) => entry.slice(8))
      .map((range) => range.split('-').map(Number))
      .reduce((sum, [from, to = from]) => sum + to! - from! + 1, 0);
    expect(slots).toBe(16_384);

    const again = await runInit();
    expect(again.stdout).toContain('the cluster is formed already');
    expect(again.stdout).toContain('the cluster is ok');
    const after = await clusterNodes(servers[0]!.port);
    expect(after.map(([id, , flags]) => `${id!} ${flags!}`).sort()).toEqual(table.map(([id, , flags]) => `${id!} ${flags!}`).sort());
  }, 120_000);
});
