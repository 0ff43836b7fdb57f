/**
 * REDIS_URL, read: one server (`redis://`, `rediss://` with TLS, as ioredis reads them), or a Redis
 * Cluster (`redis+cluster://`, `rediss+cluster://`) given by one or more seed nodes:
 *
 *   rediss+cluster://USER:PASSWORD@10.0.0.1:6379,10.0.0.2:6379?natMap=10.0.0.1:6379=127.0.0.1:7001
 *
 * The user and password (ACL) and TLS apply to every node; the client learns the others from the
 * seeds. `natMap` maps the addresses nodes advertise (`host:port`) to those this process reaches
 * them at, separated by commas: for a cluster behind NAT or in containers seen from the host.
 */

export interface ClusterSeed {
  host: string;
  port: number;
}

export type RedisTarget =
  | { cluster: false; url: string }
  | {
      cluster: true;
      seeds: ClusterSeed[];
      username?: string;
      password?: string;
      tls: boolean;
      natMap: Record<string, ClusterSeed>;
    };

/** The user part ends at the last `@` (a password may hold one), as redactUrl and URL parsers read it. */
const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:(.*)@)?([^@/?#]*)(?:\/[^?#]*)?(?:\?([^#]*))?$/i;

/** Whether the URL names a Redis Cluster (`redis+cluster://`, `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url);
}

/** What REDIS_URL names. Throws an Error naming what is wrong in a cluster URL. */
export function parseRedisUrl(url: string): RedisTarget {
  if (!isClusterUrl(url)) return { cluster: false, url };
  const match = CLUSTER_URL.exec(url);
  if (!match) throw new Error('expected rediss+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][?natMap=…]');
  const [, scheme, userInfo, hosts, query] = match;
  const seeds = hosts!.split(',').map((seed) => parseSeed(seed.trim(), 'seed node'));
  const natMap: Record<string, ClusterSeed> = {};
  for (const [name, value] of new URLSearchParams(query ?? '')) {
    if (name !== 'natMap') throw new Error(`unknown parameter ${JSON.stringify(name)} (a cluster URL takes natMap only)`);
    for (const pair of value.split(',').filter((entry) => entry.trim() !== '')) {
      const [from, to, ...rest] = pair.split('=');
      if (to === undefined || rest.length > 0) throw new Error(`natMap: ${JSON.stringify(pair)}: expected ADVERTISED_HOST:PORT=HOST:PORT`);
      const advertised = parseSeed(from!.trim(), 'natMap address');
      natMap[`${advertised.host}:${advertised.port}`] = parseSeed(to.trim(), 'natMap address');
    }
  }
  const [user, password] = splitUserInfo(userInfo);
  return {
    cluster: true,
    seeds,
    ...(user ? { username: user } : {}),
    ...(password !== undefined ? { password } : {}),
    tls: scheme!.toLowerCase() === 'rediss',
    natMap,
  };
}

function parseSeed(text: string, what: string): ClusterSeed {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/i.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) throw new Error(`${what} ${JSON.stringify(text)}: expected HOST:PORT (a port from 1 to 65535)`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function splitUserInfo(userInfo: string | undefined): [string | undefined, string | undefined] {
  if (!userInfo) return [undefined, undefined];
  const colon = userInfo.indexOf(':');
  const decode = (part: string) => decodeURIComponent(part);
  if (colon < 0) return [decode(userInfo) || undefined, undefined];
  return [decode(userInfo.slice(0, colon)) || undefined, decode(userInfo.slice(colon + 1))];
}

/** The host a URL names first (a cluster's first seed), for messages. */
export function hostOf(url: string): string {
  try {
    const target = parseRedisUrl(url);
    return target.cluster ? target.seeds[0]!.host : new URL(url).hostname;
  } catch {
    return url;
  }
}

/**
 * A Redis URL without its password, for messages and logs. The user part ends at the last `@`
 * before the path (as URL parsers read it, so `:p@ss@host` hides all of `p@ss`), and ioredis also
 * takes a `?password=` from the query.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}
