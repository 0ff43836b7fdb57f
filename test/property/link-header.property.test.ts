import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLinkHeader } from '../../src/http/link-header.js';
import { nextLink, nextLinkOf } from '../../src/http/pagination.js';

/**
 * `Link` headers (RFC 8288) built from parts: the walk must follow the target of the first
 * link-value whose rel lists `next`, whatever the other parameters hold (quoted commas,
 * semicolons, quotes, `rel=next` inside a title), and must never throw on garbage.
 */

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 12 });
/** A URI reference as servers write them: no `>`, no white space, but commas, semicolons and quotes are fine. */
const uri = fc.string({ unit: fc.constantFrom(...'abcxyz0189/?=&,;"\'%:._-~'), minLength: 1, maxLength: 30 });
const ows = fc.constantFrom('', ' ', '  ', '\t');
/** Any printable text, written as an RFC 9110 quoted-string (backslash before `"` and `\`). */
const quotedText = fc.string({ unit: fc.constantFrom(...'ab ,;="\\<>next rel'), maxLength: 24 });
const quoted = (text: string) => `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

const relation = fc.constantFrom('next', 'prev', 'last', 'first', 'self', 'NEXT', 'Next', 'nextish', 'http://x.test/next');

interface Param {
  name: string;
  text: string;
}

const otherParam: fc.Arbitrary<Param> = fc.oneof(
  fc.record({ name: fc.constantFrom('title', 'type', 'hreflang', 'anchor'), value: quotedText }).map(({ name, value }) => ({
    name,
    text: `${name}=${quoted(value)}`,
  })),
  fc.record({ name: token.filter((name) => name.toLowerCase() !== 'rel'), value: token }).map(({ name, value }) => ({
    name,
    text: `${name}=${value}`,
  })),
  // RFC 8187 ext-values: charset'language'percent-encoded, unquoted.
  fc
    .record({ language: fc.constantFrom('', 'de', 'en-GB'), value: fc.string({ unit: fc.constantFrom(...'abc%20C3A4'), maxLength: 12 }) })
    .map(({ language, value }) => ({ name: 'title*', text: `title*=UTF-8'${language}'${value}` })),
);

interface Link {
  target: string;
  relations: string[];
  text: string;
}

const link: fc.Arbitrary<Link> = fc
  .record({
    target: uri,
    relations: fc.uniqueArray(relation, { maxLength: 3 }),
    quoteRel: fc.boolean(),
    before: fc.array(otherParam, { maxLength: 3 }),
    after: fc.array(otherParam, { maxLength: 3 }),
    space: ows,
  })
  .map(({ target, relations, quoteRel, before, after, space }) => {
    const rel = relations.length === 0 ? [] : [`rel=${quoteRel || relations.length > 1 ? quoted(relations.join(' ')) : relations[0]}`];
    const params = [...before.map((param) => param.text), ...rel, ...after.map((param) => param.text)];
    return { target, relations, text: `<${target}>${params.map((param) => `${space};${space}${param}`).join('')}` };
  });

describe('nextLink, property-based', () => {
  it('follows the first link-value whose rel lists next, whatever else the header holds', () => {
    fc.assert(
      fc.property(fc.array(link, { minLength: 1, maxLength: 4 }), ows, (links, space) => {
        const header = links.map((one) => one.text).join(`${space},${space}`);
        const expected = links.find((one) => one.relations.some((rel) => rel.toLowerCase() === 'next'))?.target;
        expect(nextLink(header)).toBe(expected);
        expect(parseLinkHeader(header).problem).toBeUndefined();
        expect(nextLinkOf(header)).toEqual({ next: expected });
      }),
      { numRuns: 3_000 },
    );
  });

  it('a header with a part that is not a link-value, and no readable next, is unreadable rather than the last page', () => {
    const noNext = link.filter((one) => !one.relations.some((rel) => rel.toLowerCase() === 'next'));
    const junk = fc
      .string({ unit: fc.constantFrom(...'abc ;="next'), minLength: 1, maxLength: 12 })
      .filter((text) => /^[a-c;="n]/.test(text));
    fc.assert(
      fc.property(fc.array(noNext, { maxLength: 3 }), junk, (links, garbage) => {
        const header = [...links.map((one) => one.text), garbage].join(', ');
        expect(nextLinkOf(header)).toMatchObject({
          unreadable: expect.stringMatching(/^the Link header cannot be read \(at character \d+ of /),
        });
      }),
      { numRuns: 2_000 },
    );
  });

  it('never throws on any text, and answers with text taken from the header', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'<>;,="\\ relnxt\t') }), (header) => {
        const found = nextLink(header);
        if (found !== undefined) expect(header).toContain(`<${found}>`);
        const problem = parseLinkHeader(header).problem;
        if (problem) expect(problem.at).toBeLessThanOrEqual(header.length);
      }),
      { numRuns: 3_000 },
    );
  });
});
