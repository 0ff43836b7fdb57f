/**
 * `sluice --version` and `-V`: the package's version on stdout, exit 0 — from this folder, and from
 * the package `npm pack` makes (unpacked elsewhere, with this folder's dependencies), since an
 * installed sluice finds its package.json from dist/, not from the current directory.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/support/package-root.js';
import { useCli } from '../helpers/cli-process.js';

const run = promisify(execFile);
const cli = useCli();
const ROOT = packageRoot();
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('sluice --version', () => {
  it.each(['--version', '-V'])('%s prints the package version and exits 0', async (flag) => {
    const result = await cli.run([flag]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
    expect(result.stderr).toBe('');
  });

  it('works from the packed package, run from another directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-pack-'));
    dirs.push(dir);
    // --ignore-scripts: `prepack` would rebuild dist/ under the other tests' feet.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 60_000 });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    await run('tar', ['-xzf', join(dir, filename), '-C', dir]);
    await symlink(join(ROOT, 'node_modules'), join(dir, 'package', 'node_modules'), 'dir');
    const result = await run(process.execPath, [join(dir, 'package', 'bin', 'sluice.js'), '--version'], { cwd: tmpdir(), timeout: 20_000 });
    expect(result.stdout).toBe(`${version}\n`);
    expect(result.stderr).toBe('');
  }, 90_000);
});
