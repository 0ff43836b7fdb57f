import { describe, expect, it } from 'vitest';
import { isEarliestEntry, readPage, type IndexPosition } from '../../src/outcomes/newest-first.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

/** Every page of `limit`, following `next`; `between` runs after each page (to add or remove entries). */
async function walk(
  key: string,
  limit: number,
  options: { keep?: (id: string) => boolean; between?: (page: number) => Promise<void> } = {},
) {
  const pages: string[][] = [];
  let after: IndexPosition | undefined;
  for (;;) {
    const page = await readPage(redis().client, key, {
      limit,
      after,
      load: async (ids) => ids.map((id) => (options.keep?.(id) === false ? undefined : id)),
    });
    pages.push(page.items);
    if (!page.next) return pages;
    expect(page.next.id).toBe(page.items.at(-1));
    await options.between?.(pages.length);
    after = page.next;
    if (pages.length > 50) throw new Error('the walk does not end');
  }
}

describe('newest-first pages of a time index', () => {
  it.each([
    { name: 'distinct scores', scores: (i: number) => 1_000 + i },
    { name: 'every entry at one score (ordered by id)', scores: () => 5_000 },
    { name: 'runs of seven at one score, crossing page ends', scores: (i: number) => 1_000 + Math.floor(i / 7) },
  ])('walks 25 entries by 10 exactly once, newest first: $name', async ({ scores }) => {
    const key = uniqueQueue('index');
    const ids = Array.from({ length: 25 }, (_, i) => `id-${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) await redis().client.zadd(key, scores(i), id);
    const expected = await redis().client.zrevrange(key, 0, -1);
    const pages = await walk(key, 10);
    expect(pages.map((page) => page.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(expected);
  });

  it('is stable while entries arrive (newer) and leave between pages', async () => {
    const key = uniqueQueue('index');
    for (let i = 0; i < 25; i += 1) await redis().client.zadd(key, 1_000 + Math.floor(i / 4), `old-${String(i).padStart(2, '0')}`);
    const before = await redis().client.zrevrange(key, 0, -1);
    const removed = before[12]!;
    const pages = await walk(key, 10, {
      between: async (page) => {
        await redis().client.zadd(key, 9_000 + page, `new-${page}-a`, 9_000 + page, `new-${page}-b`);
        // One not yet seen leaves: the rest are neither skipped nor repeated.
        if (page === 1) await redis().client.zrem(key, removed);
      },
    });
    expect(pages.flat()).toEqual(before.filter((id) => id !== removed));
  });

  it('leaves out what load drops, reads on to fill the page, and ends with no next page', async () => {
    const key = uniqueQueue('index');
    for (let i = 0; i < 30; i += 1) await redis().client.zadd(key, 1_000 + i, `e-${String(i).padStart(2, '0')}`);
    const even = (id: string) => Number(id.slice(2)) % 2 === 0;
    const pages = await walk(key, 5, { keep: even });
    expect(pages.map((page) => page.length)).toEqual([5, 5, 5]);
    expect(pages.flat()).toEqual((await redis().client.zrevrange(key, 0, -1)).filter(even));
    expect(await walk(key, 5, { keep: () => false })).toEqual([[]]);
  });

  it('a page that ends exactly with the index has no next page; a limit of 0 reads nothing', async () => {
    const key = uniqueQueue('index');
    for (let i = 0; i < 10; i += 1) await redis().client.zadd(key, 1_000 + i, `e-${i}`);
    expect((await walk(key, 10)).map((page) => page.length)).toEqual([10]);
    expect((await walk(key, 5)).map((page) => page.length)).toEqual([5, 5]);
    const none = await readPage(redis().client, key, { limit: 0, load: async (ids) => ids });
    expect(none).toEqual({ items: [], next: null });
    expect(await readPage(redis().client, uniqueQueue('absent'), { limit: 3, load: async (ids) => ids })).toEqual({
      items: [],
      next: null,
    });
  });

  it('walks the merge of three indexes (one per shard) newest first, each entry once, while entries arrive in any of them', async () => {
    const keys = [uniqueQueue('index'), uniqueQueue('index'), uniqueQueue('index')];
    // Interleaved scores, runs at one score spread over indexes, and ids that tie across them.
    for (let i = 0; i < 40; i += 1) await redis().client.zadd(keys[i % 3]!, 1_000 + Math.floor(i / 5), `e-${String(i).padStart(2, '0')}`);
    const expected = (await Promise.all(keys.map((key) => redis().client.zrange(key, 0, -1, 'WITHSCORES'))))
      .flatMap((flat) => Array.from({ length: flat.length / 2 }, (_, i) => ({ id: flat[2 * i]!, score: Number(flat[2 * i + 1]) })))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : -1))
      .map((entry) => entry.id);
    const pages: string[][] = [];
    let after: IndexPosition | undefined;
    for (;;) {
      const page = await readPage(redis().client, keys, {
        limit: 7,
        after,
        load: async (ids, entries) => {
          // Each entry names the index it came from.
          for (const entry of entries) expect(await redis().client.zscore(keys[entry.index]!, entry.id)).toBe(String(entry.score));
          return ids;
        },
      });
      pages.push(page.items);
      if (!page.next) break;
      await redis().client.zadd(keys[pages.length % 3]!, 9_000 + pages.length, `new-${pages.length}`);
      after = page.next;
    }
    expect(pages.map((page) => page.length)).toEqual([7, 7, 7, 7, 7, 5]);
    expect(pages.flat()).toEqual(expected);
  });

  it('shows an id held by several indexes once, at its earliest score, also when another index takes it between pages', async () => {
    const keys = [uniqueQueue('index'), uniqueQueue('index')];
    for (let i = 0; i < 10; i += 1) await redis().client.zadd(keys[0]!, 1_000 + i, `b-${i}`);
    // b-2 and b-5 were also written to the second index, later.
    await redis().client.zadd(keys[1]!, 1_100, 'b-2', 1_200, 'b-5', 1_050, 'only-1');
    const seen: string[] = [];
    let after: IndexPosition | undefined;
    for (let page = 0; ; page += 1) {
      const read = await readPage(redis().client, keys, {
        limit: 3,
        after,
        load: async (ids, entries) => {
          const scores = await Promise.all(keys.map((key) => redis().client.zmscore(key, ...ids)));
          return ids.map((id, i) =>
            isEarliestEntry(
              entries[i]!,
              scores.map((inIndex) => (inIndex[i] === null ? null : Number(inIndex[i]))),
            )
              ? id
              : undefined,
          );
        },
      });
      seen.push(...read.items);
      if (!read.next) break;
      // A batch writing to another shard later: its earliest place stays.
      if (page === 0) await redis().client.zadd(keys[1]!, 9_000, 'b-1');
      after = read.next;
    }
    expect(seen).toEqual(['only-1', 'b-9', 'b-8', 'b-7', 'b-6', 'b-5', 'b-4', 'b-3', 'b-2', 'b-1', 'b-0']);
  });
});
