/**
 * A raw TCP connection to a test server, for what `fetch` cannot do: send headers and a body slowly
 * (a byte at a time), or announce a large body and send only its start. Destroyed when the test ends.
 */
import { connect, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface RawConnection {
  socket: Socket;
  /** Everything the server has sent so far. */
  received(): string;
  write(data: string | Buffer): void;
  /** Writes `text` one byte every `intervalMs` until it is all sent or the connection is closed. */
  drip(text: string, intervalMs: number): void;
  /** Writes `total` bytes as fast as the connection takes them, until they are sent or the connection closes. */
  flood(total: number): void;
  /** Resolves `closed` once the server has closed the connection, or `open` if it has not within `ms`. */
  closedWithin(ms: number): Promise<'closed' | 'open'>;
  /** Resolves when what the server sent contains `text`, or with false after `ms`. */
  receivedWithin(text: string, ms: number): Promise<boolean>;
}

export async function openRaw(baseUrl: string): Promise<RawConnection> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let text = '';
  let ended = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    notify();
  });
  // The server may reset the connection while bytes are still on their way: that is a close too.
  socket.on('error', () => undefined);
  socket.on('close', () => {
    ended = true;
    notify();
  });
  const timers = new Set<NodeJS.Timeout>();
  onTestFinished(() => {
    for (const timer of timers) clearInterval(timer);
    socket.destroy();
  });

  function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        listeners.delete(check);
        resolve(false);
      }, ms);
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(true);
      };
      listeners.add(check);
    });
  }

  return {
    socket,
    received: () => text,
    write(data) {
      if (!socket.destroyed) socket.write(data);
    },
    drip(data, intervalMs) {
      let at = 0;
      const timer = setInterval(() => {
        if (at >= data.length || socket.destroyed || !socket.writable) {
          clearInterval(timer);
          timers.delete(timer);
          return;
        }
        socket.write(data[at]!);
        at += 1;
      }, intervalMs);
      timers.add(timer);
    },
    flood(total) {
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < total && !socket.destroyed && socket.writable) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    },
    async closedWithin(ms) {
      return (await waitUntil(() => ended, ms)) ? 'closed' : 'open';
    },
    receivedWithin(expected, ms) {
      return waitUntil(() => text.includes(expected), ms);
    },
  };
}
