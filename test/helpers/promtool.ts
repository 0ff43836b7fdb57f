/**
 * Prometheus's own check of an exposition: `promtool check metrics` parses it with Prometheus's
 * text parser and lints it against the naming conventions (snake_case names and labels, `_total`
 * on counters only, base units, no unit abbreviations). .ci/run installs promtool (from Debian's
 * `prometheus` package); PROMTOOL names another binary.
 */
import { spawn } from 'node:child_process';

/** The problems promtool reports, one per line (`name message`); throws when it cannot parse the text or cannot run. */
export function promtoolProblems(text: string): Promise<string[]> {
  const bin = process.env['PROMTOOL'] ?? 'promtool';
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) =>
      reject(new Error(`${bin}: ${error.message} (install promtool as .ci/run does, or set PROMTOOL)`, { cause: error })),
    );
    child.on('close', (code) => {
      // 0: clean; 3: lint problems; anything else: the text did not parse (or promtool failed).
      if (code === 0 || code === 3) resolve(output.split('\n').filter((line) => line.trim() !== ''));
      else reject(new Error(`${bin} check metrics exited ${String(code)}: ${output}`));
    });
    child.stdin.end(text);
  });
}
