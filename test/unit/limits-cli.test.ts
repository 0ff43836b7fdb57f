import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/commands/limits.js';
import { UsageError } from '../../src/errors.js';
import { runCliInProcess, type InProcessResult } from '../helpers/cli-in-process.js';

describe('parseDuration (limits set --ttl)', () => {
  it.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1500ms', 1_500],
    ['1000ms', 1_000],
    ['1s', 1_000],
    ['0.5m', 30_000],
    ['1.5h', 5_400_000],
    [' 30s ', 30_000],
  ])('reads %j as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('rounds a fractional millisecond count', () => {
    expect(parseDuration('1.0006s')).toBe(1_001);
  });

  it.each(['500ms', '0', '0s', '0.5s', '999ms'])('refuses %j: shorter than a second', (text) => {
    expect(() => parseDuration(text)).toThrow(UsageError);
    expect(() => parseDuration(text)).toThrow(`--ttl ${text}: at least 1s`);
  });

  it.each(['', 'soon', '5 m', '-5s', '5x', '5mins', 'm5', '1e3', '.5m', '5.m', '1h30m'])('refuses %j with the accepted forms', (text) => {
    expect(() => parseDuration(text)).toThrow(UsageError);
    expect(() => parseDuration(text)).toThrow('expected a duration such as 90s, 5m, 2h or 1d');
  });
});

/** Runs the CLI in-process; these cases fail before any Redis connection is made. */
function cli(argv: string[]): Promise<InProcessResult> {
  // A port nothing listens on: reaching Redis would fail with exit 1, not the usage exit 2.
  return runCliInProcess(argv, { REDIS_URL: 'redis://127.0.0.1:9' });
}

describe('sluice limits set: usage errors (exit 2, nothing changed)', () => {
  it.each([
    [['--rps', '5', '--rpm', '300'], 'give --rps or --rpm, not both'],
    [[], 'give at least one of --rps, --rpm, --burst, --concurrency'],
    [['--ttl', '5m'], 'give at least one of --rps, --rpm, --burst, --concurrency'],
    [['--rps', '0'], '--rps 0: expected a number above 0'],
    [['--rps', 'fast'], '--rps fast: expected a number above 0'],
    [['--rpm', '-60'], '--rpm -60: expected a number above 0'],
    [['--burst', '1.5'], '--burst 1.5: expected a whole number'],
    [['--concurrency', '0'], '--concurrency 0: expected a number above 0'],
    [['--rps', '5', '--ttl', '500ms'], '--ttl 500ms: at least 1s'],
    [['--rps', '5', '--ttl', 'forever'], '--ttl forever: expected a duration'],
  ])('limits set KEY %j → %s', async (args, message) => {
    const result = await cli(['limits', 'set', 'orders', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });
});
