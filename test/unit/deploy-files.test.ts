/**
 * The deployment files — Dockerfile, .dockerignore, docker-compose.yml, docker-compose.cluster.yml,
 * the example config, and the package itself (LICENSE, engines, scripts, a production-only install) —
 * are checked against the code they run, without Docker: the commands are real `sluice` subcommands,
 * the variables are ones sluice reads (with values its schema accepts), REDIS_URL names the Redis
 * services of its file, the stop periods outlast the worker's shutdown deadline, the health checks
 * hit real routes and fail when they should, and the image ships what `npm pack` ships with the
 * dependencies `dist/` imports. Needs `npm run build`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { beforeAll, describe, expect, it } from 'vitest';
import { envSchema, parseEnv } from '../../src/config/env.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { parseRedisUrl, type ClusterSeed } from '../../src/redis/redis-url.js';
import { packageRoot } from '../../src/support/package-root.js';
import {
  environmentOf,
  interpolate,
  isOneShot,
  loadCompose,
  redisServers,
  type ComposeFile,
  type ComposeService,
} from '../helpers/compose-file.js';
import { startTestTarget } from '../helpers/target-server.js';

const run = promisify(execFile);
const ROOT = packageRoot();
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  files: string[];
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  engines: { node: string };
  overrides?: Record<string, string>;
  license: string;
  scripts: Record<string, string>;
};

// ---------------------------------------------------------------------------------------------
// docker-compose.yml and docker-compose.cluster.yml

const compose = loadCompose('docker-compose.yml');
const { redis, worker } = compose.services as Record<'redis' | 'worker', ComposeService>;
const cluster = loadCompose('docker-compose.cluster.yml');
const COMPOSE_FILES: [string, ComposeFile][] = [
  ['docker-compose.yml', compose],
  ['docker-compose.cluster.yml', cluster],
];
const sluiceServices = (file: ComposeFile) => file.services as Record<'worker' | 'server', ComposeService>;

/** A child process's outcome, never a rejection: the slow ones start together in beforeAll. */
type Outcome = { ok: true; stdout: string } | { ok: false; error: Error };
const settle = (promise: Promise<{ stdout: string }>): Promise<Outcome> =>
  promise.then(
    ({ stdout }) => ({ ok: true, stdout }),
    (error: Error) => ({ ok: false, error }),
  );
function stdoutOf(outcome: Outcome): string {
  if (!outcome.ok) throw outcome.error;
  return outcome.stdout;
}

/** Every command the compose files run with the sluice image. */
const SUBCOMMANDS = [
  ...new Set(
    COMPOSE_FILES.flatMap(([, file]) => [file.services['worker'], file.services['server']].map((service) => String(service?.command?.[0]))),
  ),
];
let helps: Promise<Outcome[]>;
let packList: Promise<Outcome>;
beforeAll(() => {
  // `sluice <command> --help` fails (or prints the top-level help) when the subcommand does not exist.
  helps = Promise.all(
    SUBCOMMANDS.map((command) => settle(run(process.execPath, [join(ROOT, 'bin', 'sluice.js'), command, '--help'], { timeout: 15_000 }))),
  );
  packList = settle(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 20_000 }));
});

/** A compose duration (`45s`, `1m30s`, `1h`, `500ms`) in milliseconds. */
function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  expect(text, `duration ${text}`).toMatch(/^(\d+(\.\d+)?(h|ms|m|s|us))+$/);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) total += Number(amount) * units[unit!]!;
  return total;
}

/** The value after `flag` in a command line. */
function flag(command: readonly string[], name: string): string | undefined {
  const index = command.indexOf(name);
  return index === -1 ? undefined : command[index + 1];
}

/** `redis-server --a x --b y` as [['--a', 'x'], ['--b', 'y']], interpolated. */
function redisFlags(service: ComposeService): [string, string][] {
  const [program, ...rest] = (service.command ?? []).map(interpolate);
  expect(program).toBe('redis-server');
  expect(rest.length % 2, 'every redis-server flag has a value').toBe(0);
  return rest.flatMap((item, index) => (index % 2 === 0 ? [[item, rest[index + 1]!] as [string, string]] : []));
}

/** The port a redis-server service listens on in its container. */
const redisPort = (service: ComposeService) => Number(flag(service.command ?? [], '--port') ?? 6379);

/** The servers REDIS_URL names: a cluster's seeds, or its one host. */
function redisUrlServers(url: string): ClusterSeed[] {
  const target = parseRedisUrl(url);
  if (target.cluster) return target.seeds;
  const { hostname, port } = new URL(url);
  return [{ host: hostname, port: Number(port || 6379) }];
}

/** The redis-server services `name` waits to be healthy for: itself, or through a one-shot service it waits for. */
function redisWaitedFor(file: ComposeFile, name: string): string[] {
  return Object.entries(file.services[name]?.depends_on ?? {}).flatMap(([dependency, { condition }]) => {
    const service = file.services[dependency];
    expect(service, `${name} depends on ${dependency}, which is not a service`).toBeDefined();
    if (service!.command?.[0] === 'redis-server') return condition === 'service_healthy' ? [dependency] : [];
    return isOneShot(service!) && condition === 'service_completed_successfully' ? redisWaitedFor(file, dependency) : [];
  });
}

/** Variables the server reads besides the environment schema (src/server, the `server` command). */
const SERVER_VARIABLES = ['SLUICE_API_TOKENS', 'SLUICE_SERVER_HOST', 'SLUICE_SERVER_PORT'];

describe.each(COMPOSE_FILES)('%s', (file, { services }) => {
  const { worker, server } = sluiceServices({ services });

  it("gives every service that keeps running a stop period longer than the worker's shutdown deadline, with margin", () => {
    const deadline = parseEnv(environmentOf(worker)).SLUICE_SHUTDOWN_TIMEOUT_MS;
    expect(environmentOf(worker)['SLUICE_SHUTDOWN_TIMEOUT_MS'], 'the worker sets its deadline explicitly').toBeDefined();
    for (const [name, service] of Object.entries(services)) {
      if (isOneShot(service)) continue;
      expect(service.stop_grace_period, `${name}.stop_grace_period`).toBeDefined();
      // The worker exits within ~2 s of its deadline (measured with five requests hanging); 5 s is the floor.
      expect(durationMs(service.stop_grace_period!), `${name}.stop_grace_period`).toBeGreaterThanOrEqual(deadline + 5_000);
    }
  });

  it('builds one image, once: the worker builds and tags it, the server runs the same tag', () => {
    const built = Object.entries(services).filter(([, service]) => service.build !== undefined);
    expect(built.map(([name]) => name)).toEqual(['worker']);
    expect(worker.image).toMatch(/^sluice:\$\{SLUICE_VERSION:-[a-z0-9][a-z0-9._-]*\}$/);
    expect(server.image).toBe(worker.image);
    // Never pulled: the tag names a local build, not a registry image.
    expect(worker.pull_policy).toBe('build');
  });

  it('lets the worker scale: no fixed name, no published ports; the worker and the server wait for every Redis to be healthy', () => {
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    const redisNames = Object.keys(redisServers({ services })).sort();
    expect(redisNames.length).toBeGreaterThan(0);
    for (const name of ['worker', 'server']) expect(redisWaitedFor({ services }, name).sort(), name).toEqual(redisNames);
  });

  it('sets only variables sluice reads, with values its environment schema accepts; REDIS_URL names Redis services of this file', () => {
    const known = new Set([...Object.keys(envSchema.shape), ...SERVER_VARIABLES]);
    const redis = redisServers({ services });
    for (const [name, service] of Object.entries({ worker, server })) {
      const env = environmentOf(service);
      for (const variable of Object.keys(env))
        expect(known.has(variable), `${name}: ${variable} is not a variable sluice reads`).toBe(true);
      expect(() => parseEnv(env), name).not.toThrow();
      const named = redisUrlServers(env['REDIS_URL']!);
      // Every Redis of the file is named (a cluster's seeds: all of them, so that any one may be down).
      expect(named.map(({ host }) => host).sort(), name).toEqual(Object.keys(redis).sort());
      for (const { host, port } of named) expect(port, `${name}: ${host}'s port`).toBe(redisPort(redis[host]!));
    }
  });

  it('mounts the config file where SLUICE_CONFIG points, read-only, and ships a config there', () => {
    for (const [name, service] of Object.entries({ worker, server })) {
      const path = environmentOf(service)['SLUICE_CONFIG']!;
      const mount = (service.volumes ?? []).map((volume) => volume.split(':')).find(([, target]) => path.startsWith(`${target}/`));
      expect(mount, `${name}: a volume holding ${path}`).toBeDefined();
      const [source, target, mode] = mount!;
      expect(mode, name).toBe('ro');
      const hostFile = join(ROOT, source!, path.slice(target!.length));
      expect(existsSync(hostFile), hostFile).toBe(true);
      expect(() => parseSluiceConfig(JSON.parse(readFileSync(hostFile, 'utf8')), hostFile)).not.toThrow();
    }
  });

  it('runs the server on all interfaces, publishes its port and requires API tokens (no default)', () => {
    const env = environmentOf(server);
    expect(env['SLUICE_SERVER_HOST']).toBe('0.0.0.0');
    const port = env['SLUICE_SERVER_PORT'];
    expect(server.ports?.some((mapping) => interpolate(mapping).endsWith(`:${port}`))).toBe(true);
    expect(String(server.environment?.['SLUICE_API_TOKENS'])).toMatch(/^\$\{SLUICE_API_TOKENS:\?[^}]+\}$/);
    expect(String(server.environment?.['SLUICE_API_TOKENS'])).toContain(file);
  });

  it('runs real sluice subcommands', async () => {
    expect([worker.command, server.command]).toEqual([['worker'], ['server']]);
    const outcomes = await helps;
    SUBCOMMANDS.forEach((command, index) => expect(stdoutOf(outcomes[index]!)).toContain(`Usage: sluice ${command}`));
  });

  it('health-checks the server on routes the server has', () => {
    const script = serverHealthScript(server);
    expect(script).toContain("'/readyz'");
    const sources = readdirSync(join(ROOT, 'src', 'server'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => readFileSync(join(ROOT, 'src', 'server', file), 'utf8'))
      .join('\n');
    for (const route of ['/readyz', '/healthz'])
      expect(sources, `a ${route} route in src/server`).toMatch(new RegExp(`['"\`]${route}['"\`]`));
  });

  it("the server's health check passes on 200 and fails on 503 or no answer", async () => {
    const script = serverHealthScript(server);
    const check = async (port: number) =>
      run(process.execPath, ['-e', script], { env: { ...process.env, SLUICE_SERVER_PORT: String(port) }, timeout: 10_000 }).then(
        () => 0,
        (error: { code?: number }) => error.code ?? -1,
      );
    let ready = true;
    const target = await startTestTarget();
    target.setDefault(() => ({ status: ready ? 200 : 503 }));
    const port = Number(new URL(target.url).port);
    expect(await check(port)).toBe(0);
    ready = false;
    expect(await check(port)).toBe(1);
    expect(target.requests.map((request) => request.path)).toEqual(['/readyz', '/readyz']);
    await target.close();
    expect(await check(port)).toBe(1);
  });
});

/** The server's health check: `CMD node -e <script>`, with nothing compose would interpolate. */
function serverHealthScript(server: ComposeService): string {
  const test = server.healthcheck?.test ?? [];
  expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
  const script = test[3]!;
  expect(script).not.toContain('$');
  return script;
}

describe('docker-compose.yml: Redis', () => {
  it('runs Redis 7 pinned to a minor, with AOF fsynced every second, noeviction, a maxmemory, a volume and a ping health check', () => {
    // `redis:7` or `redis:latest` would move to a new minor at the next pull, under the data.
    expect(redis.image).toMatch(/^redis:7\.\d+$/);
    const command = (redis.command ?? []).map(interpolate);
    expect(command[0]).toBe('redis-server');
    expect(flag(command, '--appendonly')).toBe('yes');
    expect(flag(command, '--appendfsync')).toBe('everysec');
    expect(flag(command, '--maxmemory-policy')).toBe('noeviction');
    expect(flag(command, '--maxmemory')).toMatch(/^\d+(b|kb|mb|gb)?$/i);
    expect(redis.volumes?.some((volume) => volume.endsWith(':/data'))).toBe(true);
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(environmentOf(worker)['REDIS_URL']).toBe('redis://redis:6379');
  });
});

/** An IPv4 address as a number. */
function ipv4(address: string): number {
  const parts = address.split('.').map(Number);
  expect(parts.length === 4 && parts.every((part) => Number.isInteger(part) && part >= 0 && part <= 255), address).toBe(true);
  return parts.reduce((value, part) => value * 256 + part, 0);
}
function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(base!) / size);
}

describe('docker-compose.cluster.yml: the Redis Cluster', () => {
  const nodes = Object.entries(redisServers(cluster));
  const nodeNames = nodes.map(([name]) => name);
  const [initName, init] = Object.entries(cluster.services).find(([, service]) => isOneShot(service)) ?? [];
  const initScript = () => {
    expect(init?.command?.slice(0, 2)).toEqual(['sh', '-c']);
    return interpolate(init!.command![2]!);
  };
  const addressOf = (service: ComposeService) => interpolate(service.networks?.['default']?.ipv4_address ?? '');

  it("runs six nodes of docker-compose.yml's Redis image, with its Redis settings, in cluster mode with a short node timeout", () => {
    expect(nodeNames).toEqual(['redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6']);
    const single = new Map(redisFlags(redis));
    const volumes = new Set<string>();
    for (const [name, node] of nodes) {
      expect(node.image, name).toBe(redis.image);
      const flags = new Map(redisFlags(node));
      // AOF everysec, maxmemory, noeviction: whatever docker-compose.yml's Redis runs with, each node does.
      for (const [option, value] of single) expect(flags.get(option), `${name} ${option}`).toBe(value);
      expect(flags.get('--maxmemory-policy'), name).toBe('noeviction');
      expect(flags.get('--appendonly'), name).toBe('yes');
      expect(flags.get('--cluster-enabled'), name).toBe('yes');
      // Relative: in the working directory, /data, which is the node's volume, so a restarted node rejoins as itself.
      expect(flags.get('--cluster-config-file'), name).toMatch(/^[\w.-]+$/);
      // Shorter than Redis's default (15 s), so a failover takes seconds; long enough not to fail over on a pause.
      expect(Number(flags.get('--cluster-node-timeout')), name).toBeGreaterThanOrEqual(1_000);
      expect(Number(flags.get('--cluster-node-timeout')), name).toBeLessThan(15_000);
      const data = node.volumes?.find((volume) => volume.endsWith(':/data'));
      expect(data, `${name}: a volume on /data`).toBeDefined();
      volumes.add(data!);
      expect(node.healthcheck?.test, name).toEqual(['CMD', 'redis-cli', 'ping']);
      expect(node.restart, name).toBe('unless-stopped');
    }
    expect(volumes.size, 'a volume of its own for each node').toBe(nodes.length);
  });

  it('forms the cluster from exactly those nodes, with one replica each (3 masters), once, after they are healthy', () => {
    expect(initName).toBe('redis-cluster-init');
    expect(init!.image).toBe(redis.image);
    expect(Object.keys(init!.depends_on ?? {})).toEqual(nodeNames);
    for (const dependency of Object.values(init!.depends_on ?? {})) expect(dependency.condition).toBe('service_healthy');
    const script = initScript();
    const listed = /^nodes="([^"]*)"$/m.exec(script)?.[1]?.split(' ');
    expect(listed).toEqual(nodes.map(([name, node]) => `${name}:${redisPort(node)}`));
    expect(script).toContain('redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes');
    expect(nodes.length / (1 + 1), 'masters').toBe(3);
    // Skipped on a later `up`: create refuses nodes that already know others, and the init would fail.
    expect(script).toMatch(/cluster_slots_assigned:16384.*\n\s*echo "the cluster is formed already"\n\s*else\n/);
    // test/integration/compose-cluster-init.test.ts runs this script against six local nodes.
  });

  it("gives each node a fixed address on the project's network, outside the range Docker hands to other containers", () => {
    const [ipam] = cluster.networks?.['default']?.ipam?.config ?? [];
    const subnet = interpolate(ipam?.subnet ?? '');
    const range = interpolate(ipam?.ip_range ?? '');
    expect(subnet).toMatch(/^[\d.]+\/24$/);
    expect(inCidr(range.split('/')[0]!, subnet), `${range} in ${subnet}`).toBe(true);
    const addresses = nodes.map(([, node]) => addressOf(node));
    expect(new Set(addresses).size).toBe(nodes.length);
    for (const address of addresses) {
      expect(inCidr(address, subnet), `${address} in ${subnet}`).toBe(true);
      expect(inCidr(address, range), `${address} outside ${range}`).toBe(false);
    }
    // The other services are on that network only (the default), with addresses Docker hands out.
    for (const [name, service] of Object.entries(cluster.services))
      if (!nodeNames.includes(name)) expect(service.networks, name).toBeUndefined();
  });

  it('publishes each node on loopback, and the natMap its comment shows maps every advertised address to that port', () => {
    const published = nodes.map(([name, node]) => {
      const [mapping, ...more] = node.ports ?? [];
      expect(more, name).toEqual([]);
      const [host, port, target] = interpolate(mapping ?? '').split(':');
      expect(host, `${name}: loopback only (no password)`).toBe('127.0.0.1');
      expect(Number(target), name).toBe(redisPort(node));
      return { host: host!, port: Number(port) };
    });
    expect(new Set(published.map(({ port }) => port)).size).toBe(nodes.length);
    const url = /^# +REDIS_URL='([^']+)'$/m.exec(read('docker-compose.cluster.yml'))?.[1];
    expect(url).toBeDefined();
    expect(() => parseEnv({ REDIS_URL: url })).not.toThrow();
    const target = parseRedisUrl(url!);
    if (!target.cluster) throw new Error(`${url!} is not a cluster URL`);
    expect(target.natMap).toEqual(
      Object.fromEntries(nodes.map(([, node], index) => [`${addressOf(node)}:${redisPort(node)}`, published[index]])),
    );
    for (const seed of target.seeds) expect(published).toContainEqual(seed);
  });

  it('keeps the worker and the server as docker-compose.yml has them, but for REDIS_URL and what they wait for', () => {
    const comparable = (service: ComposeService) => {
      const { depends_on: _waits, environment, ...rest } = service;
      const { REDIS_URL: _url, SLUICE_API_TOKENS: _tokens, ...env } = environment ?? {};
      return { ...rest, environment: env };
    };
    for (const name of ['worker', 'server'] as const)
      expect(comparable(sluiceServices(cluster)[name]), name).toEqual(comparable(sluiceServices(compose)[name]));
  });

  it("runs as a project of its own, which never adopts docker-compose.yml's containers", () => {
    expect(cluster.name).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Instructions (continuations joined, comments dropped), grouped by FROM. */
function dockerStages(text: string): Stage[] {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const [from = '', , name] = args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), from, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, args });
    }
  }
  return stages;
}

const stages = dockerStages(read('Dockerfile'));
const runtime = stages.at(-1)!;
const argsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);

/** `.dockerignore` patterns (Docker's rules, for the patterns used: `*`, `**`, `!`). */
function dockerIgnored(path: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split('/')
      .map((part) =>
        part === '**'
          ? '.*'
          : part
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replaceAll('*', '[^/]*')
              .replaceAll('?', '[^/]'),
      )
      .join('/')
      .replaceAll('.*/', '(.*/)?');
    // A pattern excludes what it names and everything below it.
    if (new RegExp(`^${source}(/.*)?$`).test(path)) ignored = !negate;
  }
  return ignored;
}

describe('Dockerfile', () => {
  it('builds in stages on Node 22 pinned to a minor that "engines" allows, on Debian slim, and runs as the non-root node user', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // A minor (22.23), neither a major that moves to new minors nor a patch that misses security fixes.
    const version = /^ARG NODE_VERSION=(\S+)$/m.exec(read('Dockerfile'))?.[1];
    expect(version).toMatch(/^22\.\d+$/);
    expect(semver.satisfies(`${version!}.0`, pkg.engines.node), `Node ${version!} satisfies engines ${pkg.engines.node}`).toBe(true);
    for (const stage of stages) expect(stage.from).toBe('node:${NODE_VERSION}-bookworm-slim');
    const users = argsOf(runtime, 'USER');
    expect(users.at(-1)).toBe('node');
    expect(argsOf(runtime, 'ENV')).toContain('NODE_ENV=production');
  });

  it('starts node under tini, so SIGTERM reaches the worker', () => {
    const entrypoint = JSON.parse(argsOf(runtime, 'ENTRYPOINT').at(-1)!) as string[];
    expect(entrypoint).toEqual(['/usr/bin/tini', '--', 'node', 'bin/sluice.js']);
    expect(argsOf(runtime, 'RUN').join('\n')).toMatch(/apt-get install [^\n]*\btini\b/);
    expect(entrypoint[3]).toBe(pkg.bin['sluice']);
  });

  it('builds, then ships exactly what `npm pack` packs, with production dependencies only', () => {
    const build = stages.find((stage) => argsOf(stage, 'RUN').some((args) => args.includes('npm pack')))!;
    expect(build, 'a stage that runs npm pack').toBeDefined();
    const buildRuns = argsOf(build, 'RUN').join('\n');
    expect(buildRuns).toContain('npm ci');
    expect(buildRuns).toContain('npm run build');
    expect(buildRuns).toMatch(/tar -xzf \S+ -C \/package/);
    const copies = argsOf(runtime, 'COPY');
    expect(copies).toContain(`--from=${build.name} /package ./`);
    const depsCopy = copies.find((args) => args.endsWith('/node_modules ./node_modules'));
    const deps = stages.find((stage) => depsCopy?.startsWith(`--from=${stage.name} `));
    expect(argsOf(deps!, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
    // Nothing else from the sources or the build reaches the runtime image.
    expect(copies.filter((args) => args !== depsCopy && !args.startsWith(`--from=${build.name} /package `))).toEqual([]);
  });

  it('has every file `npm pack` ships in its build context (dist/ is built there)', async () => {
    const outDir = (JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    const stdout = stdoutOf(await packList);
    const packed = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((file) => file.path);
    for (const entry of pkg.files) {
      if (entry === outDir) continue;
      expect(existsSync(join(ROOT, entry)), `"files" entry ${entry}`).toBe(true);
      expect(dockerIgnored(entry), `"files" entry ${entry} is excluded by .dockerignore`).toBe(false);
    }
    const fromSources = packed.filter((path) => !path.startsWith(`${outDir}/`));
    expect(fromSources).toContain('package.json');
    for (const path of fromSources) expect(dockerIgnored(path), `${path} is excluded by .dockerignore`).toBe(false);
  });

  it('keeps local builds, installs and secrets out of the build context', () => {
    for (const path of [
      'dist/src/index.js',
      'node_modules/bullmq/package.json',
      '.env',
      'worker.env',
      'config/sluice.config.json',
      '.git/HEAD',
    ]) {
      expect(dockerIgnored(path), path).toBe(true);
    }
    for (const path of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src/index.ts',
      'workers/worker.ts',
      'bin/sluice.js',
    ]) {
      expect(dockerIgnored(path), path).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The example config and the runtime dependencies

describe('config/sluice.config.example.json', () => {
  it("is valid for sluice's config schema, with file directories the image creates and the workers mount", () => {
    const config = parseSluiceConfig(JSON.parse(read('config/sluice.config.example.json')), 'config/sluice.config.example.json');
    const mkdir = argsOf(runtime, 'RUN').find((args) => args.startsWith('mkdir -p '))!;
    const mounts = (worker.volumes ?? []).map((volume) => volume.split(':')[1]!);
    for (const dir of [config.files?.uploadDir, config.files?.downloadDir]) {
      expect(dir).toBeDefined();
      expect(mkdir.split(/\s+/)).toContain(dir);
      expect(
        mounts.some((mount) => dir!.startsWith(`${mount}/`)),
        `${dir} on a worker volume`,
      ).toBe(true);
    }
  });
});

describe('the package', () => {
  it('ships every file the README links to, so its links work where npm shows it', async () => {
    const packed = new Set((JSON.parse(stdoutOf(await packList)) as [{ files: { path: string }[] }])[0].files.map((file) => file.path));
    const targets = [...read('README.md').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((match) => match[1]!)
      // The CI script, the example config and .env.example belong to a checkout (config/ stays out of the image).
      .filter(
        (target) => !/^[a-z]+:/.test(target) && !target.startsWith('.ci/') && !target.startsWith('config/') && target !== '.env.example',
      );
    expect(targets.length).toBeGreaterThan(5);
    const missing = [...new Set(targets)].filter((target) => !packed.has(target.replace(/^\.\//, '')));
    expect(missing, 'README links to files the package does not ship').toEqual([]);
  });

  it('has an MIT LICENSE, as package.json says, and ships it', async () => {
    expect(pkg.license).toBe('MIT');
    const license = read('LICENSE');
    expect(license.split('\n')[0]).toBe('MIT License');
    expect(license).toContain('Copyright (c) 2026 the sluice authors');
    expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
    const packed = (JSON.parse(stdoutOf(await packList)) as [{ files: { path: string }[] }])[0].files.map((file) => file.path);
    expect(packed).toContain('LICENSE');
  });

  it('asks for a Node that every production dependency accepts, and still allows Node 22', () => {
    // The packages `npm ci --omit=dev` installs: not dev-only, not optional (an optional one that refuses a Node is skipped).
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
    };
    const production = Object.entries(lock.packages).filter(
      ([path, entry]) => path !== '' && !entry.dev && !entry.devOptional && !entry.optional,
    );
    expect(production.length).toBeGreaterThan(50);
    const looser: string[] = [];
    for (const [path] of production) {
      const installed = join(ROOT, path, 'package.json');
      expect(existsSync(installed), `${installed}: run npm ci`).toBe(true);
      const { name, version, engines } = JSON.parse(readFileSync(installed, 'utf8')) as {
        name: string;
        version: string;
        engines?: { node?: string };
      };
      const range = engines?.node;
      // Every Node our range allows must satisfy theirs.
      if (range && semver.validRange(range) && !semver.subset(pkg.engines.node, range)) looser.push(`${name}@${version} needs ${range}`);
    }
    expect(looser, `engines.node ${pkg.engines.node} allows a Node these refuse`).toEqual([]);
    expect(semver.satisfies('22.0.0', pkg.engines.node)).toBe(true);
    // Not stricter than the strictest dependency needs: undici asks for 20.18.1. The two that ask for 22
    // (content-disposition 3, cookie 2 through light-my-request 6.8) are held to their Node 18 releases
    // by "overrides", so that Node 20 stays supported.
    expect(semver.minVersion(pkg.engines.node)?.version).toBe('20.18.1');
    expect(pkg.overrides).toEqual({ 'content-disposition': '2.0.1', 'light-my-request': '6.6.0' });
  });

  it('builds before packing, testing and the demo, and runs no script on install', () => {
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts[hook], hook).toBeUndefined();
    expect(pkg.scripts['prepack']).toBe('npm run build');
    for (const script of ['test', 'demo']) expect(pkg.scripts[script], script).toMatch(/^npm run build && /);
  });

  it('installs with `npm ci --omit=dev` from what `npm pack` ships (nothing built on install), and the CLI runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-omit-dev-'));
    try {
      await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, timeout: 30_000 });
      const [tarball] = (await readdir(dir)).filter((file) => file.endsWith('.tgz'));
      await run('tar', ['-xzf', join(dir, tarball!), '-C', dir, '--strip-components=1'], { timeout: 30_000 });
      await copyFile(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
      // From npm's cache (filled by the checkout's own `npm ci`), with lifecycle scripts on.
      await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: dir, timeout: 120_000 });
      expect(existsSync(join(dir, 'node_modules', 'bullmq', 'package.json'))).toBe(true);
      expect(existsSync(join(dir, 'node_modules', 'vitest'))).toBe(false);
      const { stdout } = await run(process.execPath, [join(dir, 'bin', 'sluice.js'), '--help'], { cwd: dir, timeout: 15_000 });
      expect(stdout).toContain('Usage: sluice');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('runtime dependencies', () => {
  it('every package that dist/ and bin/ import is in "dependencies" (not only devDependencies)', () => {
    const files = ['dist/src', 'dist/workers']
      .flatMap((dir) => {
        expect(existsSync(join(ROOT, dir)), `${dir}: run npm run build`).toBe(true);
        return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
          .filter((file) => file.endsWith('.js'))
          .map((file) => join(dir, file));
      })
      .concat(Object.values(pkg.bin));
    const builtins = new Set(builtinModules);
    const imported = new Map<string, string>();
    for (const file of files) {
      const text = read(file);
      for (const [, specifier] of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
        if (specifier!.startsWith('.') || specifier!.startsWith('node:') || builtins.has(specifier!)) continue;
        const parts = specifier!.split('/');
        const name = specifier!.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
        if (!imported.has(name)) imported.set(name, file);
      }
    }
    expect(imported.size).toBeGreaterThan(5);
    for (const [name, file] of imported) {
      expect(pkg.dependencies[name], `${file} imports ${name}, which is not in "dependencies"`).toBeDefined();
    }
  });
});

describe("the README's test command and .ci/run", () => {
  it('name the same prerequisites: the paragraph of `npm install && npm test` and the script that installs them, then runs it', () => {
    const readme = read('README.md');
    const command = readme.indexOf('npm install && npm test');
    expect(command).toBeGreaterThan(0);
    // The paragraph that introduces the command, and the command's block.
    const block = readme.lastIndexOf('```sh', command);
    const paragraph = readme.slice(readme.lastIndexOf('\n\n', block - 3), command);
    for (const prerequisite of ['redis-server', 'Chromium', 'promtool', '.ci/run']) expect(paragraph).toContain(prerequisite);
    const ci = read('.ci/run');
    for (const installed of [
      'apt-get install -y -qq redis-server',
      'apt-get install -y -qq chromium',
      'install -m 0755 "$promtool_dir/root/usr/bin/promtool"',
    ]) {
      expect(ci).toContain(installed);
    }
    expect(ci.trim().endsWith('npm test')).toBe(true);
  });
});
