#!/usr/bin/env node
/**
 * Runs the e2e accuracy test (1,500 POSTs, 50/s burst 5, a strict target, 4 worker processes) N
 * times in a row and counts how often it passed: `npm run test:accuracy-loop [-- --runs N]`. A
 * test that fails one run in eight blocks someone's landing every week; this is how to know.
 * Builds once first (the test runs the built CLI). Each run's figures line ("accuracy: …") is
 * printed as it comes; the exit code is 1 if any run failed.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs ${values.runs}: expected a whole number ≥ 1`);
  process.exit(2);
}
const TEST = 'test/e2e/limits.test.ts';
const NAME = '4 workers keep 1,500 POSTs';

const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const failed = [];
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  const result = spawnSync('npx', ['vitest', 'run', TEST, '-t', NAME], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
  const output = `${result.stdout}\n${result.stderr}`;
  const figures = /accuracy: .*/.exec(output)?.[0] ?? '(no figures line)';
  const ok = result.status === 0;
  if (!ok) failed.push(run);
  console.log(`run ${run}/${runs}: ${ok ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s; ${figures}`);
  if (!ok)
    console.log(
      output
        .split('\n')
        .filter((line) => /AssertionError|expected|Error/.test(line))
        .slice(0, 10)
        .join('\n'),
    );
}
console.log(`\n${runs - failed.length} of ${runs} runs passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
process.exit(failed.length ? 1 : 0);
