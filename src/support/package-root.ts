import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../errors.js';

let cached: string | undefined;

/** The sluice package folder, found from this module's location (works from src/ and dist/). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'sluice') {
      cached = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new SluiceError('cannot find the sluice package folder (package.json named "sluice")', { code: 'PACKAGE_ROOT' });
    dir = parent;
  }
}

/** The `sluice` command's entry file. */
export function sluiceBin(): string {
  return join(packageRoot(), 'bin', 'sluice.js');
}

let version: string | undefined;

/** The `version` of sluice's package.json (shipped in every packed package, next to `dist/`). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}
