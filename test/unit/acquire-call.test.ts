import { describe, expect, it } from 'vitest';
import { ACQUIRE_KIND, acquireArgs, decodeAcquireReply } from '../../src/limits/acquire-call.js';
import { SluiceError } from '../../src/errors.js';
import { readFileSync } from 'node:fs';
import type { LimitSpec } from '../../src/limits/limit-keys.js';
import { limiterKeys } from '../../src/redis/keys.js';

describe('ACQUIRE_KIND', () => {
  it('are the numbers limit-acquire.lua answers with (lua/includes/acquire-kinds.lua)', () => {
    const lua = readFileSync(new URL('../../src/redis/lua/includes/acquire-kinds.lua', import.meta.url), 'utf8');
    const line = /^local ([A-Z_, ]+) = ([\d, ]+)$/m.exec(lua);
    expect(line, 'the constants line of acquire-kinds.lua').not.toBeNull();
    const names = line![1]!.split(', ');
    const values = line![2]!.split(', ').map(Number);
    // GO → go, CIRCUIT_OPEN → circuitOpen
    const camel = (name: string) => name.toLowerCase().replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    expect(Object.fromEntries(names.map((name, i) => [camel(name), values[i]]))).toEqual(ACQUIRE_KIND);
  });
});

describe('decodeAcquireReply', () => {
  it.each([
    {
      raw: [ACQUIRE_KIND.go, 40, 0b10, 15, 10, 1, 0, 0, 0],
      reply: {
        kind: 'go',
        waitMs: 40,
        leasedMask: 2,
        slackMs: 15,
        intervalMs: 10,
        slots: 1,
        probesMask: 0,
        behindMask: 0,
        followerWaitsMs: [],
      },
    },
    {
      raw: [1, 0, 0, 3_600_000, 0, 12, 0, 0, 0b10],
      reply: {
        kind: 'go',
        waitMs: 0,
        leasedMask: 0,
        slackMs: 3_600_000,
        intervalMs: 0,
        slots: 12,
        probesMask: 0,
        behindMask: 2,
        followerWaitsMs: [],
      },
    },
    {
      raw: [ACQUIRE_KIND.go, 0, 0, 15, 10, 1, 0b1, 0, 0],
      reply: {
        kind: 'go',
        waitMs: 0,
        leasedMask: 0,
        slackMs: 15,
        intervalMs: 10,
        slots: 1,
        probesMask: 1,
        behindMask: 0,
        followerWaitsMs: [],
      },
    },
    {
      // Two followers of a lane booked with it: their slots, in order.
      raw: [ACQUIRE_KIND.go, 5, 0, 15, 5, 1, 0, 0, 0, 10, 15],
      reply: {
        kind: 'go',
        waitMs: 5,
        leasedMask: 0,
        slackMs: 15,
        intervalMs: 5,
        slots: 1,
        probesMask: 0,
        behindMask: 0,
        followerWaitsMs: [10, 15],
      },
    },
    {
      raw: [ACQUIRE_KIND.queued, 12, 140, 50, 5_000, 1],
      reply: { kind: 'queued', startInMs: 12, position: 140, window: 50, intervalMs: 5, behindMask: 1 },
    },
    { raw: [ACQUIRE_KIND.blocked, 0], reply: { kind: 'blocked' } },
    { raw: [ACQUIRE_KIND.paused, 2_000], reply: { kind: 'paused', waitMs: 2_000 } },
    { raw: [ACQUIRE_KIND.circuitOpen, 4_000, 0, 0, 0, 0, 0, 61_000], reply: { kind: 'circuit-open', waitMs: 4_000, openForMs: 61_000 } },
  ])('$raw → $reply.kind', ({ raw, reply }) => {
    expect(decodeAcquireReply(raw)).toEqual(reply);
  });

  it.each([
    { what: 'not an array', raw: 'OK' },
    { what: 'empty', raw: [] },
    { what: 'an unknown kind', raw: [9, 0] },
    { what: 'a go without its slots', raw: [1, 40, 0, 15, 10] },
    { what: 'a go without its probes', raw: [1, 40, 0, 15, 10, 1] },
    { what: 'a go without its lines behind', raw: [1, 40, 0, 15, 10, 1, 0, 0] },
    { what: 'an open circuit without how long it has been open', raw: [5, 4_000] },
    { what: 'a queued reply without its place', raw: [2, 12, 140, 50] },
    { what: 'a queued reply without its lines behind', raw: [2, 12, 140, 50, 5_000] },
    { what: 'a pause without its wait', raw: [4] },
    { what: 'a value that is not a number', raw: [1, '40', 0, 15, 10, 1] },
    { what: 'a value that is not finite', raw: [2, Number.NaN, 0, 0, 0, 1] },
  ])('refuses $what', ({ raw }) => {
    expect(() => decodeAcquireReply(raw)).toThrow(SluiceError);
  });

  it('names each kind once, with its own number', () => {
    expect(new Set(Object.values(ACQUIRE_KIND)).size).toBe(Object.keys(ACQUIRE_KIND).length);
  });
});

describe('acquireArgs', () => {
  it('puts the key count first, then KEYS (five per limit key), then ARGV (eight, then five per key)', () => {
    const specs: Record<string, LimitSpec> = { a: { rate: 10, burst: 5, concurrency: 0 }, b: { rate: 0, burst: 1, concurrency: 2 } };
    const args = acquireArgs({
      keys: ['a', 'b'],
      holder: '{q}job-1',
      leaseId: 'job-1:abcd',
      leaseMs: 30_000,
      maxInSlotWaitMs: 250,
      wantSlots: 1,
      waiter: '{q}job-1',
      restore: true,
      specOf: (key) => specs[key]!,
      circuitOn: (key) => key === 'a',
    });
    const perKey = (key: string) => [
      limiterKeys.state(key),
      limiterKeys.override(key),
      limiterKeys.leases(key),
      limiterKeys.line(key),
      limiterKeys.circuitWaiting(key),
    ];
    expect(args).toEqual([
      10,
      ...perKey('a'),
      ...perKey('b'),
      2,
      '{q}job-1',
      'job-1:abcd',
      30_000,
      250,
      1,
      '{q}job-1',
      1,
      'a',
      10,
      5,
      0,
      1,
      'b',
      0,
      1,
      2,
      0,
    ]);
  });

  it('ends with the followers, counted, when a lane names some', () => {
    const args = acquireArgs({
      keys: ['a'],
      holder: '{q}l-1-0',
      leaseId: 'l-1-0:abcd',
      leaseMs: 30_000,
      maxInSlotWaitMs: 250,
      wantSlots: 1,
      waiter: '{q}l-1-0',
      restore: false,
      followers: ['{q}l-1-1', '{q}l-1-2'],
      specOf: () => ({ rate: 200, burst: 10, concurrency: 0 }),
      circuitOn: () => false,
    });
    expect(args.slice(-3)).toEqual([2, '{q}l-1-1', '{q}l-1-2']);
    expect(args).toHaveLength(1 + 5 + 8 + 5 + 3);
  });
});
