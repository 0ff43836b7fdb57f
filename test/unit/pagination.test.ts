import { describe, expect, it } from 'vitest';
import { nextLink, nextLinkOf, readPage } from '../../src/http/pagination.js';
import { paginateSchema } from '../../src/operation/paginate-schema.js';
import { renderTemplate, sampleOfTemplate } from '../../src/operation/template.js';
import { atPath } from '../../src/operation/paginate-schema.js';

describe('nextLink (RFC 8288)', () => {
  it.each([
    ['<https://api.test/items?page=2>; rel="next", <https://api.test/items?page=9>; rel="last"', 'https://api.test/items?page=2'],
    ['<https://api.test/items?page=9>; rel="last", <https://api.test/items?page=2>; rel=next', 'https://api.test/items?page=2'],
    ['</items?cursor=a,b>; title="x"; rel="prev next"', '/items?cursor=a,b'],
    // A comma inside a quoted parameter is not the end of the link-value (the walk used to stop after page 1).
    ['<https://api.x/p2>; title="Page, two"; rel="next"', 'https://api.x/p2'],
    ['<a>;title=",";rel=next', 'a'],
    // `rel=next` inside a quoted title is text, not the relation.
    ['<https://api.x/p1>; title="x; rel=next; y"', undefined],
    ['<https://api.x/p1>; title="x; rel=next", <https://api.x/p3>; rel=next', 'https://api.x/p3'],
    // An escaped quote does not end the quoted-string.
    ['<https://api.x/p1>; title="say \\"hi\\", ok"; rel=next', 'https://api.x/p1'],
    // Only the first rel counts (RFC 8288 §3.3).
    ['<https://api.x/p1>; rel=prev; rel=next', undefined],
    ['<https://api.test/items?page=1>; rel="prev"', undefined],
    // Several relation types in one rel, any case; rel as a token or a quoted-string.
    ['<https://api.x/p2>; rel="next last"', 'https://api.x/p2'],
    ['<https://api.x/p2>; rel="last NEXT"', 'https://api.x/p2'],
    ['<https://api.x/p2>; REL=Next', 'https://api.x/p2'],
    // An RFC 8187 ext-value (title*) is a token with ' and %.
    ["<https://api.x/p2>; title*=UTF-8'de'n%c3%a4chste%20Seite; rel=next", 'https://api.x/p2'],
    // Two Link header lines arrive joined with ", " (http-client); empty list elements are allowed.
    ['<https://api.x/p0>; rel=prev, <https://api.x/p2>; rel=next', 'https://api.x/p2'],
    [', <https://api.x/p2>; rel=next ,, ', 'https://api.x/p2'],
    // A next that can be read is followed even when another link-value cannot be.
    ['<https://api.x/p2>; rel=next, junk', 'https://api.x/p2'],
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });
});

describe('nextLinkOf: a Link header that cannot be read', () => {
  it.each([
    ['garbage', 'at character 1 of 7: expected "<" opening a link target'],
    ['<https://api.x/p2', 'at character 18 of 17: expected ">" closing the link target'],
    ['<https://api.x/p2>; rel="next', 'at character 30 of 29: expected a closing quote'],
    ['<https://api.x/p2> rel=next', 'at character 20 of 27: expected ";" before a parameter, or "," before the next link'],
    ['<https://api.x/p2>; =next', 'at character 21 of 25: expected a parameter name'],
    ['<https://api.x/p2>; rel=; title=x', 'at character 25 of 33: expected a parameter value'],
    ['<https://api.x/p1>; rel=prev, rel=next', 'at character 31 of 38: expected "<" opening a link target'],
  ])('%s is unreadable (%s), not the last page', (header, where) => {
    expect(nextLinkOf(header)).toEqual({
      unreadable: `the Link header cannot be read (${where}); stopping rather than taking this page for the last`,
    });
  });

  it('a readable header without next, or no header, is the last page', () => {
    expect(nextLinkOf('<https://api.x/p1>; rel=prev')).toEqual({ next: undefined });
    expect(nextLinkOf(undefined)).toEqual({ next: undefined });
  });

  it('readPage fails the page, naming it, and does not quote the header (its URLs may hold credentials)', () => {
    const paginate = paginateSchema.parse({ style: 'link', output: { path: 'x.jsonl' } });
    const response = {
      status: 200,
      headers: { link: '<https://api.x/p3?token=s3cret>; rel="next' },
      body: { text: '[1, 2]' },
    } as unknown as Parameters<typeof readPage>[0];
    const read = readPage(response, paginate, { pages: 1, items: 2 }, new URL('https://api.x/p2'));
    expect(read).toEqual({
      ok: false,
      message:
        'page 2: the Link header cannot be read (at character 43 of 42: expected a closing quote); stopping rather than taking this page for the last',
    });
  });
});

describe('renderTemplate', () => {
  const item = { id: 7, active: true, name: 'Ada', tags: ['a'], owner: { email: 'a@x.test' } };

  it('keeps the JSON type of a whole-string placeholder and writes text inside longer strings', () => {
    expect(
      renderTemplate(
        {
          id: '{{item.id}}',
          active: '{{ item.active }}',
          tags: '{{item.tags}}',
          url: '/u/{{item.id}}/{{item.owner.email}}',
          all: 'x {{item.tags}}',
        },
        { item },
      ),
    ).toEqual({
      id: 7,
      active: true,
      tags: ['a'],
      url: '/u/7/a@x.test',
      all: 'x ["a"]',
    });
  });

  it('drops a field whose whole-string placeholder has no value, and writes missing values in text as empty', () => {
    expect(renderTemplate({ a: '{{item.missing}}', b: 'x{{item.missing}}y', c: [1, '{{item.id}}'] }, { item })).toEqual({
      b: 'xy',
      c: [1, 7],
    });
  });

  it('sampleOfTemplate fills every placeholder so the template can be validated before any item exists', () => {
    expect(sampleOfTemplate({ url: '/u/{{item.id}}', json: { n: '{{item.n}}' } })).toEqual({ url: '/u/1', json: { n: '1' } });
  });

  it('atPath reads objects and array indexes', () => {
    expect(atPath({ data: { items: [{ id: 1 }] } }, 'data.items.0.id')).toBe(1);
    expect(atPath({ data: null }, 'data.items')).toBeUndefined();
    expect(atPath([1, 2], '')).toEqual([1, 2]);
  });
});
