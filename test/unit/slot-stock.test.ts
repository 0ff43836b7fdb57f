import { describe, expect, it } from 'vitest';
import type { AcquireReply } from '../../src/limits/acquire-call.js';
import type { RateMeter } from '../../src/limits/rate-meter.js';
import { createSlotStock, type SlotStock } from '../../src/limits/slot-stock.js';

/** A go reply for a fast key (slots under a millisecond apart) unless `intervalMs` says otherwise. */
const go = (slots: number, intervalMs = 0): AcquireReply => ({
  kind: 'go',
  waitMs: 0,
  leasedMask: 0,
  slackMs: 1,
  intervalMs,
  slots,
  probesMask: 0,
  behindMask: 0,
  followerWaitsMs: [],
});
const deferred: AcquireReply = { kind: 'queued', startInMs: 500, position: 100, window: 50, intervalMs: 5, behindMask: 0 };

function setup(rate = 0) {
  let t = 100_000;
  const meter: RateMeter = { count: () => undefined, rate: () => rate };
  const stock = createSlotStock(meter, () => t);
  return { stock, advance: (ms: number) => (t += ms) };
}

/** One script call on `keys` answering `reply`. */
const answer = (stock: SlotStock, keys: string[], reply: AcquireReply) =>
  stock.book(keys, async (onReply) => {
    onReply(reply);
    return 'called';
  });

function takeAll(stock: SlotStock, keys: string[]): number {
  let taken = 0;
  while (stock.take(keys)) taken += 1;
  return taken;
}

describe('slot stock', () => {
  it('holds nothing until a reply gives slots ahead', () => {
    const { stock } = setup();
    expect(stock.take(['fast'])).toBe(false);
    expect(stock.take(['fast', 'other'])).toBe(false);
  });

  it('keeps the slots a reply took ahead (all but the one for this start), taken one at a time', async () => {
    const { stock } = setup();
    expect(await answer(stock, ['fast'], go(5))).toBe('called');
    expect(takeAll(stock, ['fast'])).toBe(4);
  });

  it('uses slots in stock within 100 ms or not at all', async () => {
    const { stock, advance } = setup();
    await answer(stock, ['fast'], go(5));
    advance(100);
    expect(stock.take(['fast'])).toBe(true);
    advance(1);
    expect(stock.take(['fast'])).toBe(false);
    expect(takeAll(stock, ['fast'])).toBe(0);
  });

  it.each([
    { what: 'a reply for several keys (not stocked)', keys: ['fast', 'other'], reply: go(5), taken: 2 },
    { what: 'a slow key (slots 1 ms or more apart)', keys: ['fast'], reply: go(1, 10), taken: 0 },
    { what: 'a deferral', keys: ['fast'], reply: deferred, taken: 0 },
    { what: 'a concurrency block', keys: ['fast'], reply: { kind: 'blocked' } as const, taken: 0 },
    { what: 'a fast key given no slots ahead (what is left stays)', keys: ['fast'], reply: go(1), taken: 2 },
  ])('after 3 slots stocked and one taken, $what leaves $taken', async ({ keys, reply, taken }) => {
    const { stock } = setup();
    await answer(stock, ['fast'], go(4));
    stock.take(['fast']);
    await answer(stock, keys, reply);
    expect(takeAll(stock, ['fast'])).toBe(taken);
  });

  it('drops what is in stock when the target pushes back (a 429)', async () => {
    const { stock } = setup();
    await answer(stock, ['fast'], go(5));
    stock.drop(['other', 'fast']);
    expect(stock.take(['fast'])).toBe(false);
  });

  it.each([
    { rate: 0, keys: ['fast'], wanted: 1 },
    { rate: 5, keys: ['fast'], wanted: 1 },
    { rate: 200, keys: ['fast'], wanted: 20 },
    { rate: 201, keys: ['fast'], wanted: 21 },
    { rate: 100_000, keys: ['fast'], wanted: 64 },
    { rate: 200, keys: ['fast', 'other'], wanted: 1 },
  ])('$rate starts/s on $keys.length key(s): asks for $wanted slot(s)', ({ rate, keys, wanted }) => {
    expect(setup(rate).stock.wanted(keys)).toBe(wanted);
  });
});

describe('slot stock refills', () => {
  /** A script call held until `reply` is called; records that it was made. */
  function heldCall(calls: string[], name: string) {
    let reply!: (r: AcquireReply) => void;
    let fail!: (error: Error) => void;
    const call = (onReply: (r: AcquireReply) => void) => {
      calls.push(name);
      return new Promise<string>((resolve, reject) => {
        reply = (r) => {
          onReply(r);
          resolve(name);
        };
        fail = reject;
      });
    };
    return { call, reply: (r: AcquireReply) => reply(r), fail: (error: Error) => fail(error) };
  }

  async function emptyStock() {
    const { stock } = setup();
    await answer(stock, ['fast'], go(2));
    stock.take(['fast']);
    return stock;
  }

  it('a start on an emptied stock waits for the refill under way and takes a slot from it instead of calling', async () => {
    const stock = await emptyStock();
    const calls: string[] = [];
    const first = heldCall(calls, 'first');
    const refilling = stock.book(['fast'], first.call);
    const waiting = stock.book(['fast'], heldCall(calls, 'second').call);
    await Promise.resolve();
    expect(calls).toEqual(['first']);
    first.reply(go(3));
    expect(await waiting).toBe('stocked');
    expect(await refilling).toBe('first');
    expect(calls).toEqual(['first']);
    expect(takeAll(stock, ['fast'])).toBe(1);
  });

  it.each([
    { what: 'no slot to spare', reply: go(1) },
    { what: 'a deferral (no stock any more)', reply: deferred },
  ])('a refill with $what: the waiting start calls the script itself', async ({ reply }) => {
    const stock = await emptyStock();
    const calls: string[] = [];
    const first = heldCall(calls, 'first');
    const refilling = stock.book(['fast'], first.call);
    const waiting = stock.book(['fast'], (onReply) => {
      calls.push('second');
      onReply(go(1));
      return Promise.resolve('second');
    });
    first.reply(reply);
    expect(await waiting).toBe('second');
    expect(await refilling).toBe('first');
    expect(calls).toEqual(['first', 'second']);
  });

  it('a refill that fails lets the waiting start call the script itself', async () => {
    const stock = await emptyStock();
    const calls: string[] = [];
    const first = heldCall(calls, 'first');
    const refilling = stock.book(['fast'], first.call);
    const second = heldCall(calls, 'second');
    const waiting = stock.book(['fast'], second.call);
    first.fail(new Error('connection lost'));
    await expect(refilling).rejects.toThrow('connection lost');
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['first', 'second']);
    second.reply(go(1));
    expect(await waiting).toBe('second');
  });
});
