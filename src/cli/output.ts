import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * Watches where the CLI writes for a reader that went away: `sluice results B | head -1` closes the
 * pipe after one line, and the next write fails with EPIPE. That is no error of ours: like git and
 * ripgrep, the command stops producing, closes what it opened and exits 0, saying nothing.
 */
export interface OutputWatch {
  /** Aborted once the stream failed (its reason: the stream's error). */
  readonly signal: AbortSignal;
  /** The reader went away (EPIPE), as opposed to another write error. */
  readerGone(): boolean;
}

/**
 * Listens for the stream's 'error' for the rest of the process: an EPIPE may be reported after the
 * last write, and without a listener it would crash the process.
 */
export function watchOutput(stream: Writable): OutputWatch {
  const controller = new AbortController();
  let gone = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') gone = true;
    if (!controller.signal.aborted) controller.abort(error);
  });
  return { signal: controller.signal, readerGone: () => gone };
}

/** Writes `chunk`, waiting for 'drain' when `out` asks to; throws once `signal` aborts (the reader went away). */
export async function writeChunk(out: Writable, chunk: string | Buffer, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  if (!out.write(chunk)) await once(out, 'drain', { signal });
}
