/**
 * A TCP proxy in front of a test's redis-server that loses one reply, as a Redis shut down (a
 * restart, a failover) or a connection cut at the wrong moment does: once armed, the first chunk a
 * client sends that holds every one of `marks` (bytes read as latin1) goes to Redis, which runs it;
 * its reply, and anything else on that connection, never reaches the client, and a moment later
 * every client connection is cut. Redis stays up and the proxy keeps listening, so clients
 * reconnect at once and find what the lost call did. Closed when the test ends.
 */
import { createServer, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { connectUpstream } from './proxy-sockets.js';

export interface LostReplyProxy {
  /** `redis://127.0.0.1:PORT` of the proxy. */
  url: string;
  /** Loses the reply of the next call whose bytes hold every mark; resolves once the connections are cut. */
  loseNext(marks: string[]): Promise<void>;
}

/** How long Redis has to run the lost call before the connections are cut. */
const CUT_AFTER_MS = 50;

export async function startLostReplyProxy(redisPort: number): Promise<LostReplyProxy> {
  const sockets = new Set<Socket>();
  let armed: { marks: string[]; cut: () => void } | undefined;

  const proxy = createServer((client) => {
    const upstream = connectUpstream(client, redisPort, sockets);
    let swallowing = false;
    upstream.on('data', (chunk: Buffer) => {
      if (!swallowing) client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (armed && armed.marks.every((mark) => text.includes(mark))) {
        const { cut } = armed;
        armed = undefined;
        swallowing = true;
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
          sockets.clear();
          cut();
        }, CUT_AFTER_MS);
      }
      upstream.write(chunk);
    });
  });

  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    loseNext: (marks) =>
      new Promise<void>((resolve) => {
        armed = { marks, cut: resolve };
      }),
  };
}
