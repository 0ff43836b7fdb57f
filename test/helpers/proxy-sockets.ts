import { createConnection, type Socket } from 'node:net';

/**
 * A proxied client's connection to Redis at `port`: both sockets kept in `sockets` (so a proxy can
 * cut them all), and both closed when either ends or fails.
 */
export function connectUpstream(client: Socket, port: number, sockets: Set<Socket>): Socket {
  const upstream = createConnection({ host: '127.0.0.1', port });
  sockets.add(client);
  sockets.add(upstream);
  const drop = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  return upstream;
}
