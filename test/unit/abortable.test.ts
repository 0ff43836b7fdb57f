import { describe, expect, it } from 'vitest';
import { ShutdownAbortError } from '../../src/errors.js';
import { onAbort, untilAborted } from '../../src/support/abortable.js';
import { sleep } from '../../src/support/sleep.js';
import { createOpPermits } from '../../src/worker/op-permits.js';

describe('onAbort', () => {
  it('calls each listener still listening once when the signal aborts, and one that stopped not at all', () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const stopA = onAbort(controller.signal, () => calls.push('a'));
    onAbort(controller.signal, () => calls.push('b'));
    const stopC = onAbort(controller.signal, () => calls.push('c'));
    stopC();
    stopC();
    controller.abort();
    controller.abort();
    stopA();
    expect(calls).toEqual(['a', 'b']);
  });

  it('a listener that throws does not keep the others from being called; its error is thrown on its own', async () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const thrown: unknown[] = [];
    const onUncaught = (error: unknown) => thrown.push(error);
    process.prependListener('uncaughtException', onUncaught);
    try {
      onAbort(controller.signal, () => calls.push('a'));
      onAbort(controller.signal, () => {
        throw new Error('listener failed');
      });
      onAbort(controller.signal, () => calls.push('c'));
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
    expect(calls).toEqual(['a', 'c']);
    expect(thrown).toEqual([new Error('listener failed')]);
  });

  it('calls a listener at once on a signal that has aborted already', () => {
    const calls: number[] = [];
    onAbort(AbortSignal.abort(), () => calls.push(1));
    expect(calls).toEqual([1]);
  });

  it('hundreds of listeners come and go on one signal with one listener on the signal itself', () => {
    const controller = new AbortController();
    let added = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added += 1;
      add(...args);
    }) as typeof add;
    for (let i = 0; i < 500; i++) onAbort(controller.signal, () => undefined)();
    let last = 0;
    onAbort(controller.signal, () => (last += 1));
    controller.abort();
    expect(added).toBe(1);
    expect(last).toBe(1);
  });
});

describe('what listens through onAbort', () => {
  it('untilAborted gives up after its grace once the signal aborts; the work settling first wins', async () => {
    const controller = new AbortController();
    const never = new Promise<never>(() => undefined);
    const waiting = untilAborted(never, controller.signal, 20);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(ShutdownAbortError);
    await expect(untilAborted(Promise.resolve(7), controller.signal, 1_000)).resolves.toBe(7);
  });

  it('sleep ends early with false on abort, true when it runs its course', async () => {
    const controller = new AbortController();
    const sleeping = sleep(60_000, controller.signal);
    controller.abort();
    await expect(sleeping).resolves.toBe(false);
    await expect(sleep(1, new AbortController().signal)).resolves.toBe(true);
  });

  it('a permit waiter whose signal aborts leaves the line; the next give goes to the one behind it', async () => {
    const permits = createOpPermits(1);
    await permits.take();
    const first = new AbortController();
    const leaving = permits.take(first.signal);
    const staying = permits.take(new AbortController().signal);
    first.abort(new Error('gone'));
    await expect(leaving).rejects.toThrow('gone');
    permits.give();
    await staying;
    expect(permits.inUse).toBe(1);
  });
});
