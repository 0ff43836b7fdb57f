// After tsc: copies the files under src/ that are not TypeScript (Lua scripts, the dashboard's
// browser assets) to the same places under dist/src/, where the compiled modules read them.
import { cpSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../src', import.meta.url));
const to = fileURLToPath(new URL('../dist/src', import.meta.url));
cpSync(from, to, {
  recursive: true,
  filter: (source) => statSync(source).isDirectory() || !source.endsWith('.ts'),
});
