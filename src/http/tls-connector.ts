import type { ConnectionOptions } from 'node:tls';
import type { buildConnector } from 'undici';
import { tlsFailure } from './tls-failures.js';

/** The TLS settings a target's connections are made with (see config/tls-files.ts). */
export type TlsConnectOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'passphrase' | 'servername' | 'minVersion'>;

/**
 * A TLS alert that arrives after the handshake (under TLS 1.3 a server that requires a client
 * certificate says so only then) reaches undici as an error, then the socket's end, which undici
 * reports as "other side closed" in its place. The alert is what explains the failure, so each
 * socket keeps the first one it raised and passes it on when undici destroys it for that end.
 */
export function keepTlsAlerts(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connect(options, (...args) => {
      if (args[0]) return callback(...args);
      const socket = args[1];
      let alert: Error | undefined;
      socket.on('error', (raised: Error & { code?: unknown }) => {
        if (!alert && typeof raised.code === 'string' && tlsFailure(raised.code)) alert = raised;
      });
      const destroy = socket.destroy.bind(socket);
      socket.destroy = (reason?: Error & { code?: unknown }) => destroy(alert && reason?.code === 'UND_ERR_SOCKET' ? alert : reason);
      return callback(null, socket);
    });
}
