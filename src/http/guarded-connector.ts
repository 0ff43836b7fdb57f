import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import { AddressRefusedError } from '../errors.js';
import type { TlsConnectOptions } from './tls-connector.js';

/** A reason to refuse connecting `hostname`:`port` to `address`, or undefined. */
export type Refuse = (hostname: string, port: number, address: string) => string | undefined;

/**
 * undici's own connector, with every address checked: an IP literal before connecting, a name on
 * each address DNS gives (only the allowed ones are tried), so a rebinding name cannot get through.
 * `tls`: a target's CA, client certificate and server name, for every connection this connector makes.
 */
export function guardedConnector(timeout: number, refuse: Refuse, tls: TlsConnectOptions = {}): buildConnector.connector {
  // One connector per host and port (each keeps its TLS sessions); its lookup knows whom it checks for.
  const connectors = new Map<string, buildConnector.connector>();
  const connectTo = (hostname: string, port: number): buildConnector.connector => {
    const known = connectors.get(`${hostname}:${port}`);
    if (known) return known;
    const lookup = (name: string, options: { all?: boolean }, callback: (...args: unknown[]) => void): void => {
      dnsLookup(name, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
        if (error) return callback(error);
        const allowed = addresses.filter((entry) => !refuse(hostname, port, entry.address));
        if (allowed.length === 0) return callback(new AddressRefusedError(refuse(hostname, port, addresses[0]!.address)!));
        if (options.all) return callback(null, allowed);
        return callback(null, allowed[0]!.address, allowed[0]!.family);
      });
    };
    const connector = buildConnector({ ...tls, timeout, lookup } as buildConnector.BuildOptions);
    // Bounded (an allowedHosts "*" fleet meets many hosts): forgetting one only costs its TLS sessions.
    if (connectors.size >= 256) connectors.clear();
    connectors.set(`${hostname}:${port}`, connector);
    return connector;
  };
  return (connectOptions, callback) => {
    const hostname = connectOptions.hostname.replace(/^\[|\]$/g, '');
    const port = Number(connectOptions.port) || (connectOptions.protocol === 'https:' ? 443 : 80);
    if (isIP(hostname)) {
      const refusal = refuse(hostname, port, hostname);
      if (refusal) return callback(new AddressRefusedError(refusal), null);
    }
    return connectTo(hostname, port)(connectOptions, callback);
  };
}
