/**
 * Every relative link in README.md, BENCHMARKS.md and docs/*.md resolves: the file it names exists and
 * its #anchor is a heading of the target, slugged as GitHub does. Web links and code are not checked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILES = [
  'README.md',
  'BENCHMARKS.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** The file's lines, with the lines of fenced code blocks (and their fences) emptied. */
function proseLines(text: string): string[] {
  let fence = '';
  return text.split('\n').map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = '';
      return '';
    }
    if (marker) fence = marker;
    return marker ? '' : line;
  });
}

/** GitHub's anchor for a heading: lowercase, punctuation but - and _ dropped, each space a -. */
const slug = (heading: string) =>
  heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');

/** The anchors of a Markdown text's headings, in order; a repeated one gets -1, -2, … */
function headingAnchors(text: string): string[] {
  const seen = new Map<string, number>();
  return proseLines(text).flatMap((line) => {
    const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line)?.[1];
    if (heading === undefined) return [];
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return [count === 0 ? base : `${base}-${count}`];
  });
}

const anchorCache = new Map<string, Set<string>>();
const anchorsOf = (path: string) =>
  anchorCache.get(path) ?? anchorCache.set(path, new Set(headingAnchors(readFileSync(path, 'utf8')))).get(path)!;

/** `file:line: link: problem` for every broken relative link of `text`, the content of `file` (relative to ROOT). */
function linkProblems(file: string, text: string): string[] {
  const self = join(ROOT, file);
  anchorCache.set(self, new Set(headingAnchors(text)));
  return proseLines(text).flatMap((line, index) =>
    [...line.replace(/(`+)[^`][\s\S]*?\1/g, '').matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)].flatMap(([, link = '']) => {
      if (/^(https?|mailto):/i.test(link)) return [];
      const [path = '', anchor] = link.split('#', 2);
      const target = path ? join(dirname(self), decodeURIComponent(path)) : self;
      const where = `${file}:${index + 1}: ${link}`;
      if (path && !existsSync(target)) return [`${where}: ${relative(ROOT, target)} does not exist`];
      if (anchor === undefined) return [];
      if (!target.endsWith('.md')) return [`${where}: an anchor into ${relative(ROOT, target)}, which is not Markdown`];
      return anchorsOf(target).has(decodeURIComponent(anchor)) ? [] : [`${where}: ${relative(ROOT, target)} has no heading #${anchor}`];
    }),
  );
}

describe('links in the Markdown docs', () => {
  it('slugs headings as GitHub does, outside code blocks', () => {
    const text = '# A b\n## Files: uploads and downloads\n```sh\n# not a heading\n```\n## A b\n### `sluice limits` — set_it ##\n## A b';
    expect(headingAnchors(text)).toEqual(['a-b', 'files-uploads-and-downloads', 'a-b-1', 'sluice-limits--set_it', 'a-b-2']);
  });

  it('reports missing files and anchors with file and line, and skips web links and code', () => {
    const text =
      '# Top\n[ok](#top) [web](https://example.com/x.md) `[code](gone.md)`\n[a](gone.md) [b](../README.md#no-such-heading)\n```\n[c](gone.md)\n```\n[d](#nope)';
    expect(linkProblems('docs/example.md', text)).toEqual([
      'docs/example.md:3: gone.md: docs/gone.md does not exist',
      'docs/example.md:3: ../README.md#no-such-heading: README.md has no heading #no-such-heading',
      'docs/example.md:7: #nope: docs/example.md has no heading #nope',
    ]);
  });

  it.each(FILES)('%s: every relative link and anchor resolves', (file) => {
    expect(linkProblems(file, readFileSync(join(ROOT, file), 'utf8'))).toEqual([]);
  });
});
