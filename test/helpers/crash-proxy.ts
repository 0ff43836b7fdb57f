/**
 * A TCP proxy in front of a test's redis-server that crashes it at a chosen moment: when a client
 * sends the n-th call of a Lua script (ioredis sends its source the first time on a connection,
 * then an EVALSHA naming its SHA1), the proxy kills Redis
 * (SIGKILL) before that call reaches it, then cuts every client connection. A crash between two
 * commands, the same every run, with a real redis-server and real clients. The proxy then stops
 * listening, so reconnects are refused as by a dead Redis; `server.restart()` brings Redis back
 * (with what it persisted) at its own URL.
 */
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';
import { luaSource } from '../../src/redis/scripts.js';
import type { RedisServerHandle } from '../../src/support/redis-server.js';
import { connectUpstream } from './proxy-sockets.js';

export interface CrashProxy {
  /** `redis://127.0.0.1:PORT` of the proxy. */
  url: string;
  /** Resolves once Redis was killed. */
  crashed: Promise<void>;
}

/** What identifies a call of a script of src/redis/lua in the bytes a client sends: its SHA1 (EVALSHA) or its source (EVAL). */
function scriptMarks(name: string): string[] {
  const source = luaSource(name);
  // Compared with the bytes read as latin1.
  return [createHash('sha1').update(source).digest('hex'), Buffer.from(source.slice(0, 200)).toString('latin1')];
}

/** Kills `server` just before the `call`-th call of script `script` reaches it. Closed when the test ends. */
export async function startCrashProxy(server: RedisServerHandle, trigger: { script: string; call: number }): Promise<CrashProxy> {
  const marks = scriptMarks(trigger.script);
  const longest = Math.max(...marks.map((mark) => mark.length));
  const sockets = new Set<Socket>();
  let calls = 0;
  let state: 'armed' | 'crashing' | 'crashed' = 'armed';
  let markCrashed: () => void = () => undefined;
  const crashed = new Promise<void>((resolve) => {
    markCrashed = resolve;
  });

  const proxy = createServer((client) => {
    if (state === 'crashing') {
      client.destroy();
      return;
    }
    const upstream = connectUpstream(client, server.port, sockets);
    let tail = '';
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('data', (chunk: Buffer) => {
      if (state === 'crashing') return;
      if (state === 'armed') {
        // Calls whose mark ends in this chunk (one split across two chunks is found once).
        const text = tail + chunk.toString('latin1');
        for (const mark of marks) {
          for (let at = text.indexOf(mark); at !== -1; at = text.indexOf(mark, at + 1)) {
            if (at + mark.length > tail.length) calls += 1;
          }
        }
        tail = text.slice(-(longest - 1));
        if (calls >= trigger.call) {
          void crash();
          return;
        }
      }
      upstream.write(chunk);
    });
  });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      proxy.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };

  async function crash(): Promise<void> {
    state = 'crashing';
    await server.kill();
    await close();
    state = 'crashed';
    markCrashed();
  }

  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  onTestFinished(close);
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `redis://127.0.0.1:${port}`, crashed };
}
