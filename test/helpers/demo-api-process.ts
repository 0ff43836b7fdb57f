import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { DemoApiOptions, DemoApiStats } from '../../src/demo/demo-api.js';

export interface DemoApiProcess {
  url: string;
  /** The API's counters and its arrival stamps (its own `performance.now()`, ms). */
  read(): Promise<{ stats: DemoApiStats; arrivals: number[] }>;
  close(): Promise<void>;
}

type ChildMessage = { kind: 'ready'; url: string } | { kind: 'read'; stats: DemoApiStats; arrivals: number[] };

/**
 * The demo API (src/demo/demo-api.ts) run in a child process, for tests that judge timing at the
 * target: a strict limiter in the test runner's process would stamp arrivals late whenever the
 * runner is busy (it stalls 25–40 ms while workers start), and count bunches the workers never sent.
 */
export async function startDemoApiProcess(options: DemoApiOptions): Promise<DemoApiProcess> {
  const child = fork(new URL('./demo-api-child.mjs', import.meta.url), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const next = async <K extends ChildMessage['kind']>(kind: K): Promise<Extract<ChildMessage, { kind: K }>> => {
    const [message] = (await Promise.race([
      once(child, 'message'),
      exited.then(([code]) => {
        throw new Error(`the demo API process exited (${String(code)}) before it answered`);
      }),
    ])) as [ChildMessage];
    if (message.kind !== kind) throw new Error(`the demo API process sent ${message.kind}, expected ${kind}`);
    return message as Extract<ChildMessage, { kind: K }>;
  };
  const ready = await next('ready');
  return {
    url: ready.url,
    async read() {
      child.send('read');
      const { stats, arrivals } = await next('read');
      return { stats, arrivals };
    },
    async close() {
      if (child.exitCode !== null) return;
      child.disconnect();
      await exited;
    },
  };
}
