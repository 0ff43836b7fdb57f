import { describe, expect, it } from 'vitest';
import { readNdjson } from '../../src/server/routes/operations.js';

/**
 * An NDJSON body whose one line spans many chunks: the reader used to search the whole unfinished
 * line for a newline again on every chunk (a 10 MiB line in 16 KiB chunks blocked the event loop
 * for ~4 s; the default body limit is 32 MiB). In the quiet project: it asserts a duration.
 */
describe('readNdjson with a long line', () => {
  it('reads a 16 MiB line arriving in 16 KiB chunks in well under a second', async () => {
    const body = Buffer.from(`{"method":"POST","url":"https://api.test/","body":"${'x'.repeat(16 * 1024 * 1024)}"}\n`);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let at = 0; at < body.length; at += 16 * 1024) yield body.subarray(at, at + 16 * 1024);
    }
    const started = performance.now();
    const items = await readNdjson(chunks(), 64 * 1024 * 1024);
    const elapsedMs = performance.now() - started;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ line: 1, value: { method: 'POST' } });
    expect(elapsedMs).toBeLessThan(1_000);
  });
});
