#!/usr/bin/env node
// The installed command. The package ships dist/ (built by `prepack`); a checkout builds it with `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('sluice is not built yet: run `npm run build` in the sluice folder (after `npm install`).\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
