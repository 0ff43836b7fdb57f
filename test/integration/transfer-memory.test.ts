/**
 * Large uploads and downloads stream: the worker's memory does not grow with the body. The size is
 * SLUICE_TEST_DOWNLOAD_MB (default 256); run it by hand with 2048 for a 2 GiB body each way:
 *
 *   SLUICE_TEST_DOWNLOAD_MB=2048 npx vitest run test/integration/transfer-memory.test.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { FAST_RETRY, startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';
import { startByteServer, type ByteServer } from '../helpers/byte-server.js';

const redis = useRedisServer();

const MIB = 1024 * 1024;
const SIZE_MB = Number(process.env['SLUICE_TEST_DOWNLOAD_MB'] ?? '256');
const SIZE = SIZE_MB * MIB;
/** RSS may grow by this much at most while the body streams (the body itself is SIZE). */
const MAX_RSS_GROWTH = 100 * MIB;
/** Generous: a slow disk at 20 MB/s, plus the start-up. */
const TIME_LIMIT_MS = 60_000 + SIZE_MB * 50;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-memory-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function start(): Promise<{ p: Pipeline; server: ByteServer; uploadDir: string; downloadDir: string }> {
  const uploadDir = join(root, 'uploads');
  const downloadDir = join(root, 'downloads');
  await mkdir(uploadDir);
  await mkdir(downloadDir);
  const server = await startByteServer();
  onTestFinished(() => server.close());
  const config = parseSluiceConfig({
    targets: { bytes: { baseUrl: server.url, allowPrivateAddresses: true } },
    files: { uploadDir, downloadDir },
  });
  return { p: await startPipeline(redis(), { config }), server, uploadDir, downloadDir };
}

/** Samples RSS every 20 ms until stopped; returns the highest growth over the baseline taken now. */
function watchRss(): { stop(): { growth: number; baseline: number; peak: number } } {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { growth: peak - baseline, baseline, peak };
    },
  };
}

const op = (extra: Record<string, unknown>) => ({
  target: 'bytes',
  retry: FAST_RETRY,
  timeoutMs: { connect: 5_000, headers: 30_000, total: Math.min(3_600_000, TIME_LIMIT_MS) },
  ...extra,
});

const mb = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

describe(`${SIZE_MB} MiB bodies stream through a worker`, () => {
  it(
    `downloads ${SIZE_MB} MiB generated on the fly with flat memory, recording its size and SHA-256`,
    { timeout: TIME_LIMIT_MS + 30_000 },
    async () => {
      const { p, server, downloadDir } = await start();
      // Warm the path first, so that what is measured is the download, not the first use of the code.
      await p.producer.enqueue(op({ method: 'GET', url: '/bytes?n=1000', download: { path: 'warm.bin' } }), { batchId: 'warm' });
      await p.settled('warm');

      const watch = watchRss();
      const started = performance.now();
      const path = `/bytes?n=${SIZE}`;
      await p.producer.enqueue(op({ method: 'GET', url: path, download: { path: 'big/body.bin' } }), { batchId: 'big' });
      expect(await p.settled('big', TIME_LIMIT_MS)).toMatchObject({ succeeded: 1, deadLettered: 0 });
      const seconds = (performance.now() - started) / 1_000;
      const rss = watch.stop();

      const sent = server.sent.get(path)!;
      const [line] = await p.results('big');
      expect(line!.result!.download).toEqual({ path: join(downloadDir, 'big/body.bin'), bytes: SIZE, sha256: sent.sha256 });
      expect((await stat(join(downloadDir, 'big/body.bin'))).size).toBe(SIZE);
      console.info(
        `download ${SIZE_MB} MiB: ${seconds.toFixed(1)} s (${(SIZE_MB / seconds).toFixed(0)} MiB/s), RSS ${mb(rss.baseline)} → peak ${mb(rss.peak)} (+${mb(rss.growth)})`,
      );
      expect(rss.growth).toBeLessThan(MAX_RSS_GROWTH);
    },
  );

  it(`uploads a ${SIZE_MB} MiB file, raw and as multipart, with flat memory`, { timeout: TIME_LIMIT_MS * 2 + 30_000 }, async () => {
    const { p, server, uploadDir } = await start();
    const block = randomBytes(MIB);
    const hash = createHash('sha256');
    const file = createWriteStream(join(uploadDir, 'big.bin'));
    for (let written = 0; written < SIZE; written += MIB) {
      hash.update(block);
      if (!file.write(block)) await once(file, 'drain');
    }
    file.end();
    await once(file, 'finish');
    await writeFile(join(uploadDir, 'small.bin'), block);
    await p.producer.enqueue(op({ method: 'POST', url: '/warm', multipart: [{ name: 'file', file: 'small.bin' }] }), { batchId: 'warm' });
    await p.settled('warm');

    const watch = watchRss();
    const started = performance.now();
    await p.producer.enqueue(op({ method: 'PUT', url: '/raw', bodyFile: 'big.bin' }), { batchId: 'big-raw' });
    expect(await p.settled('big-raw', TIME_LIMIT_MS)).toMatchObject({ succeeded: 1, deadLettered: 0 });
    const middle = performance.now();
    await p.producer.enqueue(
      op({
        method: 'POST',
        url: '/multipart',
        multipart: [
          { name: 'note', value: 'big' },
          { name: 'file', file: 'big.bin' },
        ],
      }),
      { batchId: 'big-multipart' },
    );
    expect(await p.settled('big-multipart', TIME_LIMIT_MS)).toMatchObject({ succeeded: 1, deadLettered: 0 });
    const rss = watch.stop();

    const raw = server.received.find((request) => request.path === '/raw')!;
    expect(raw).toMatchObject({ bytes: SIZE, sha256: hash.digest('hex') });
    expect(raw.headers['content-length']).toBe(String(SIZE));
    const multipart = server.received.find((request) => request.path === '/multipart')!;
    expect(multipart.headers['content-length']).toBe(String(multipart.bytes));
    // The file plus the parts' boundaries and headers.
    expect(multipart.bytes - SIZE).toBeGreaterThan(0);
    expect(multipart.bytes - SIZE).toBeLessThan(1_000);
    const seconds = (performance.now() - started) / 1_000;
    const rawSeconds = (middle - started) / 1_000;
    console.info(
      `upload ${SIZE_MB} MiB raw + multipart: ${rawSeconds.toFixed(1)} s + ${(seconds - rawSeconds).toFixed(1)} s, RSS ${mb(rss.baseline)} → peak ${mb(rss.peak)} (+${mb(rss.growth)})`,
    );
    expect(rss.growth).toBeLessThan(MAX_RSS_GROWTH);
  });
});
