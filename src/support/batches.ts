/**
 * Items read in batches (the lines of a read chunk, the rows of a CSV) and handed on one by one: a
 * million-line input read through nested async generators costs a few promises and microtask
 * steps per line and layer, more than parsing it.
 */

/**
 * The items of batches, one by one: one promise a step and no async generator between, and a step
 * whose batch is already read resolves at once.
 */
export function flatten<T>(batches: AsyncIterable<readonly T[]>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const source = batches[Symbol.asyncIterator]();
      let batch: readonly T[] = [];
      let at = 0;
      const next = async (): Promise<IteratorResult<T>> => {
        while (at >= batch.length) {
          const read = await source.next();
          if (read.done) return { done: true, value: undefined };
          [batch, at] = [read.value, 0];
        }
        at += 1;
        return { done: false, value: batch[at - 1]! };
      };
      const stop = async (): Promise<IteratorResult<T>> => {
        await source.return?.();
        return { done: true, value: undefined };
      };
      return { next, return: stop };
    },
  };
}

/** Items from one at a time into batches of up to `size` (a source read row by row, see cli/csv-source.ts). */
export async function* batched<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Each batch through `map`, in order. */
export async function* mapBatches<T, U>(batches: AsyncIterable<readonly T[]>, map: (batch: readonly T[]) => U[]): AsyncGenerator<U[]> {
  for await (const batch of batches) yield map(batch);
}
