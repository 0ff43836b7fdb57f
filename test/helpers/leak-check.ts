import { afterAll, beforeAll } from 'vitest';

/**
 * Runs after each test file's own teardown (setup-file hooks run last): fails the file when it
 * left a socket, server or child process open — a worker, queue, Redis client or HTTP server that
 * was never closed. Closing is asynchronous, so it waits a little before it judges.
 */
const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'ProcessWrap', 'PipeWrap']);

function counts(): Map<string, number> {
  const out = new Map<string, number>();
  for (const name of process.getActiveResourcesInfo()) {
    if (WATCHED.has(name)) out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

/** What the test runner itself holds open (its IPC pipes) before the file starts. */
let baseline = new Map<string, number>();

function openResources(): string[] {
  const out: string[] = [];
  for (const [name, count] of counts()) {
    const extra = count - (baseline.get(name) ?? 0);
    if (extra > 0) out.push(`${extra} × ${name}`);
  }
  return out;
}

beforeAll(() => {
  baseline = counts();
});

afterAll(async () => {
  const deadline = Date.now() + 3_000;
  let open = openResources();
  while (open.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    open = openResources();
  }
  if (open.length > 0) {
    throw new Error(`test file left resources open: ${open.join(', ')}`);
  }
});
