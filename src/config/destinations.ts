import { BlockList, isIP } from 'node:net';
import type { SluiceConfig } from './sluice-config.js';

/**
 * Where operations may send requests. By default only to the hosts of configured targets and of
 * `allowedHosts`; and never to loopback, private, link-local, cloud-metadata, documentation or
 * reserved addresses unless a target for that host and port says `"allowPrivateAddresses": true`
 * (one switch for "this target is deliberately not on the public internet"). The URL is checked
 * when an operation is validated (enqueue, and again in the worker); the address is checked when
 * the worker connects, after DNS, so a name that resolves (or re-resolves) to such an address
 * cannot slip through. Both ask `refusedKind`. A name with the root's trailing dot
 * (`localhost.`, `api.example.com.`) is the same name without it.
 */
export interface DestinationPolicy {
  /** Why `url` may not be called, or undefined when it may. */
  refuseUrl(url: URL): string | undefined;
  /** Why connecting to `address` for `hostname`:`port` is refused, or undefined when it is allowed. */
  refuseAddress(hostname: string, port: number, address: string): string | undefined;
}

export type AddressKind = 'loopback' | 'private' | 'link-local' | 'cloud metadata' | 'documentation' | 'reserved';

/** Checked in this order: metadata addresses sit inside the link-local and private ranges. */
const RANGES: [AddressKind, [string, number, 'ipv4' | 'ipv6'][]][] = [
  [
    'cloud metadata',
    [
      ['169.254.169.254', 32, 'ipv4'],
      ['100.100.100.200', 32, 'ipv4'],
      ['fd00:ec2::254', 128, 'ipv6'],
    ],
  ],
  [
    'loopback',
    [
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ],
  ],
  [
    'private',
    [
      ['10.0.0.0', 8, 'ipv4'],
      ['172.16.0.0', 12, 'ipv4'],
      ['192.168.0.0', 16, 'ipv4'],
      ['100.64.0.0', 10, 'ipv4'],
      ['fc00::', 7, 'ipv6'],
    ],
  ],
  [
    'link-local',
    [
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ],
  ],
  // RFC 5737 and RFC 3849: reserved for examples, so a request there is a copied example or a lab network.
  [
    'documentation',
    [
      ['192.0.2.0', 24, 'ipv4'],
      ['198.51.100.0', 24, 'ipv4'],
      ['203.0.113.0', 24, 'ipv4'],
      ['2001:db8::', 32, 'ipv6'],
    ],
  ],
  // NAT64 and 6to4 embed an IPv4 address that could be internal: refused whole.
  [
    'reserved',
    [
      ['0.0.0.0', 8, 'ipv4'],
      ['192.0.0.0', 24, 'ipv4'],
      ['198.18.0.0', 15, 'ipv4'],
      ['224.0.0.0', 4, 'ipv4'],
      ['240.0.0.0', 4, 'ipv4'],
      ['::', 128, 'ipv6'],
      ['ff00::', 8, 'ipv6'],
      ['64:ff9b::', 96, 'ipv6'],
      ['2002::', 16, 'ipv6'],
    ],
  ],
];

const BLOCKS: [AddressKind, BlockList][] = RANGES.map(([kind, subnets]) => {
  const list = new BlockList();
  for (const [network, prefix, type] of subnets) list.addSubnet(network, prefix, type);
  return [kind, list];
});

/** Answers for recent addresses and host names: every job asks about its host, usually the same few. */
const kindCache = new Map<string, AddressKind | null>();
const KIND_CACHE_SIZE = 1_024;

/** What kind of internal address this is, or undefined for a public one. IPv4-mapped IPv6 counts as its IPv4. */
export function internalAddressKind(address: string): AddressKind | undefined {
  const known = kindCache.get(address);
  if (known !== undefined) return known ?? undefined;
  const kind = classifyAddress(address);
  if (kindCache.size >= KIND_CACHE_SIZE) kindCache.clear();
  kindCache.set(address, kind ?? null);
  return kind;
}

/**
 * Why a host name or address may not be called without a target's `allowPrivateAddresses`: the kind
 * of non-public place it is, or undefined. Of names, only `localhost` and `*.localhost` (RFC 6761)
 * are known without DNS; the worker checks the addresses other names resolve to.
 */
export function refusedKind(host: string): AddressKind | undefined {
  const name = canonicalHost(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return 'loopback';
  return internalAddressKind(name);
}

/** A host name as one name: lower case, without the root's trailing dot (DNS reads `api.example.com.` as `api.example.com`). */
export function canonicalHost(hostname: string): string {
  return hostname.toLowerCase().replace(/\.+$/, '');
}

function classifyAddress(address: string): AddressKind | undefined {
  const bare = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  const ip = mapped ?? bare;
  const type = isIP(ip) === 4 ? 'ipv4' : isIP(ip) === 6 ? 'ipv6' : undefined;
  if (!type) return undefined;
  return BLOCKS.find(([, list]) => list.check(ip, type))?.[0];
}

const defaultPort = (protocol: string): number => (protocol === 'https:' ? 443 : 80);
const portOf = (url: URL): number => (url.port ? Number(url.port) : defaultPort(url.protocol));

export function createDestinationPolicy(config: Pick<SluiceConfig, 'targets' | 'allowedHosts'>): DestinationPolicy {
  const place = (address: string, allowPrivate: boolean) => {
    const url = new URL(address);
    return { hostname: canonicalHost(url.hostname), port: portOf(url), allowPrivate };
  };
  const targets = Object.values(config.targets).map((target) => place(target.baseUrl, target.allowPrivateAddresses ?? false));
  // OAuth2 token endpoints: sluice itself calls them (operations may not), with their target's address rule.
  const tokenEndpoints = Object.values(config.targets).flatMap((target) =>
    target.auth?.type === 'oauth2ClientCredentials' ? [place(target.auth.tokenUrl, target.allowPrivateAddresses ?? false)] : [],
  );
  const patterns = (config.allowedHosts ?? []).map((pattern) => {
    const match = /^(.*?)(?::(\d+))?$/.exec(pattern)!;
    return { host: canonicalHost(match[1]!), port: match[2] ? Number(match[2]) : undefined };
  });

  function hostAllowed(hostname: string, port: number): boolean {
    if (targets.some((target) => target.hostname === hostname && target.port === port)) return true;
    return patterns.some(({ host, port: wanted }) => {
      if (wanted !== undefined && wanted !== port) return false;
      if (host === '*') return true;
      return host.startsWith('*.') ? hostname.endsWith(host.slice(1)) : hostname === host;
    });
  }

  const privateAllowed = (hostname: string, port: number): boolean =>
    [...targets, ...tokenEndpoints].some((place) => place.allowPrivate && place.hostname === hostname && place.port === port);

  function internalRefusal(hostname: string, port: number, kind: AddressKind, address: string): string {
    // An IPv6 literal is written in brackets, as in a URL, so that its port stands apart.
    const host = isIP(hostname) === 6 ? `[${hostname}]` : hostname;
    const where = address === hostname ? host : `${host} (${address})`;
    return `${where} is a ${kind} address; only a target for ${host}:${port} with "allowPrivateAddresses": true may call it`;
  }

  return {
    refuseUrl(url) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return `only http(s) URLs may be called, not ${url.protocol}`;
      const hostname = canonicalHost(url.hostname);
      const port = portOf(url);
      if (!hostAllowed(hostname, port)) {
        return `host ${url.host} is not allowed: configure a target for it or add it to "allowedHosts" in the config`;
      }
      const kind = refusedKind(hostname);
      if (kind && !privateAllowed(hostname, port)) return internalRefusal(hostname, port, kind, hostname);
      return undefined;
    },
    refuseAddress(hostname, port, address) {
      const name = canonicalHost(hostname.replace(/^\[|\]$/g, ''));
      const kind = refusedKind(address);
      if (!kind || privateAllowed(name, port) || privateAllowed(`[${name}]`, port)) return undefined;
      return internalRefusal(name, port, kind, address);
    },
  };
}
