import { describe, expect, it } from 'vitest';
import { fetchConcurrency, type FetchGateState } from '../../src/worker/fetch-gate.js';

const idle: FetchGateState = { concurrency: 20, inHand: 0, fetched: 0, fetchedLanes: 0, freePermits: 20 };

describe('fetchConcurrency', () => {
  it.each<[string, Partial<FetchGateState>, number]>([
    ['an idle process fetches up to its concurrency', {}, 20],
    ['single jobs fetched and not started each claim a free permit', { fetched: 5 }, 20],
    ['single jobs running hold their permits', { inHand: 8, freePermits: 12 }, 20],
    // BullMQ fetches several jobs before it starts any: the first lane stops it.
    ['a lane fetched and not started: nothing more is fetched', { fetched: 1, fetchedLanes: 1 }, 1],
    ['a lane fetched behind single jobs fetched', { fetched: 4, fetchedLanes: 1 }, 4],
    ['a lane running with every permit: no more lanes', { inHand: 1, freePermits: 0 }, 1],
    ['a lane running and another waiting for its permits', { inHand: 2, freePermits: 0 }, 2],
    ['a lane ending frees permits for more jobs', { inHand: 1, freePermits: 15 }, 16],
    ['a lane running, one fetched while it ends', { inHand: 1, fetched: 1, fetchedLanes: 1, freePermits: 15 }, 2],
    ['never past the concurrency', { inHand: 25, freePermits: 0 }, 20],
    ['never below 1', { freePermits: 0 }, 1],
  ])('%s', (_, state, expected) => {
    expect(fetchConcurrency({ ...idle, ...state })).toBe(expected);
  });
});
