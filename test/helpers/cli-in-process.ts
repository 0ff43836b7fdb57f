/**
 * Runs the CLI in-process through `main(argv)` with captured stdout/stderr, against a given Redis:
 * for tests that check what a command prints without spawning a process.
 */
import { PassThrough, Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCliInProcess(argv: string[], env: Record<string, string>): Promise<InProcessResult> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        append(chunk.toString());
        callback();
      },
    });
  const stdin = new PassThrough();
  stdin.end();
  const code = await main(argv, {
    stdout: sink((text) => (stdout += text)),
    stderr: sink((text) => (stderr += text)),
    stdin,
    env,
    cwd: '/nonexistent-sluice-cwd',
  });
  return { code, stdout, stderr };
}
