import { describe, expect, it } from 'vitest';
import { nextLink } from '../../src/http/pagination.js';
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
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (header, expected) => {
    expect(nextLink(header)).toBe(expected);
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
