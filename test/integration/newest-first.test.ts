import { describe, expect, it } from 'vitest';
import { readPage, type IndexPosition } from '../../src/outcomes/newest-first.js';
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
});
