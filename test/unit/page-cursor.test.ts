import { describe, expect, it } from 'vitest';
import { cursorParamSchema, decodeCursor, encodeCursor } from '../../src/server/page-cursor.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

describe('page cursors', () => {
  it.each([
    { score: 1_767_225_600_123, id: 'import-42' },
    { score: 0, id: '1' },
    { score: 1.5, id: 'ids: may hold colons, "quotes" and ünïcode' },
  ])('round-trips $id as an opaque base64url string', (position) => {
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'abc+/='],
    ['not JSON', b64('score:id')],
    ['an object', b64('{"score":1,"id":"x"}')],
    ['three elements', b64('[1,"x","y"]')],
    ['a text score', b64('["1","x"]')],
    ['an empty id', b64('[1,""]')],
    ['a numeric id', b64('[1,2]')],
    ['an id past 300 characters', b64(JSON.stringify([1, 'x'.repeat(301)]))],
    ['too long', 'A'.repeat(1_201)],
  ])('refuses %s', (_name, text) => {
    expect(decodeCursor(text)).toBeUndefined();
    const parsed = cursorParamSchema.safeParse(text);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toContain("previous page's nextCursor");
  });
});
