/**
 * `sluice enqueue rows.csv --template` streams: its peak memory does not grow with the row count.
 *
 * The built CLI validates 10,000 and then 100,000 rows (`--dry-run`: the read that the enqueue
 * pass repeats; enqueuing 100,000 jobs takes ~30 s on a small machine) with V8's old space capped
 * at 64 MiB, so garbage is collected rather than left to pile up, and reports its peak RSS
 * (`process.resourceUsage().maxRSS`, from a module preloaded with NODE_OPTIONS). The bound is a
 * ratio to the 10,000-row run, not a guess at absolute numbers. Measured on a 2-core machine:
 * 123–126 MiB and 127 MiB. Keeping only each row's cells (the smallest leak there could be) took
 * the 100,000-row run to 156 MiB; keeping the operations would exhaust the 64 MiB heap.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';

const cli = useCli();
beforeAll(() => cli.allowLocal('http://127.0.0.1:9'));

async function writeRows(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('\uFEFFid,email,zip,active,note\r\n');
  for (let i = 1; i <= count; i++) {
    await write(
      `${i},user${i}@example.test,${String(i % 100_000).padStart(5, '0')},${i % 2 === 0},"note ${i}, with a comma\nand a second line"\r\n`,
    );
  }
  out.end();
  await once(out, 'close');
}

async function peakRss(rows: number, template: string, preload: string): Promise<number> {
  const file = join(cli.dir(), `rows-${rows}.csv`);
  await writeRows(file, rows);
  const result = await cli.run(['enqueue', file, '--template', template, '--dry-run', '--json'], {
    env: { NODE_OPTIONS: `--max-old-space-size=64 --import ${preload}` },
    timeoutMs: 45_000,
  });
  expect(result.code, result.stderr).toBe(0);
  expect(JSON.parse(result.stdout)).toMatchObject({ valid: rows, invalid: 0, dryRun: true });
  const kib = /^max-rss-kib (\d+)$/m.exec(result.stderr)?.[1];
  expect(kib, result.stderr).toBeDefined();
  return Number(kib) / 1024;
}

describe('sluice enqueue FILE.csv --template: memory', () => {
  it('100,000 rows peak at about the memory of 10,000', { timeout: 90_000 }, async () => {
    const preload = await cli.file(
      'report-max-rss.mjs',
      [
        "import { writeSync } from 'node:fs';",
        "process.on('exit', () => writeSync(2, `max-rss-kib ${process.resourceUsage().maxRSS}\\n`));",
      ].join('\n'),
    );
    const template = await cli.file(
      'op.json',
      JSON.stringify({
        method: 'POST',
        url: 'http://127.0.0.1:9/contacts/{{id}}',
        idempotencyKey: 'upsert-{{id}}',
        json: { email: '{{email}}', zip: '{{zip:string}}', active: '{{active}}', note: '{{note}}' },
      }),
    );

    const small = await peakRss(10_000, template, preload);
    const large = await peakRss(100_000, template, preload);

    expect(large, `peak RSS: 10,000 rows ${small.toFixed(0)} MiB, 100,000 rows ${large.toFixed(0)} MiB`).toBeLessThan(small * 1.2);
  });
});
