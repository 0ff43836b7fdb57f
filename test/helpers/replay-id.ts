import type { DeadLetter } from '../../src/outcomes/dead-letter.js';

/**
 * The job id a replay of this dead letter as a job of its own gets, written out as the docs give
 * it: `<op id>.r<N>-<the dead letter's time in base 36>`, N one more than its replays so far.
 */
export async function replayIdOf(deadLetters: { get(id: string): Promise<DeadLetter | undefined> }, id: string): Promise<string> {
  const letter = await deadLetters.get(id);
  if (!letter) throw new Error(`no dead letter ${id}`);
  return `${letter.opId}.r${letter.replays + 1}-${Date.parse(letter.deadLetteredAt).toString(36)}`;
}
