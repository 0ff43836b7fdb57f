/**
 * What a target's rate-limit headers do, through the real pipeline: a response (even a 200) that
 * says the quota is spent pauses the key until the reset, so the next operation on it waits. The
 * same for every form sluice reads — the separate and X- headers, the combined `limit=, remaining=,
 * reset=` header, and the structured fields of the IETF draft (RateLimit / RateLimit-Policy).
 */
import { describe, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();

/** Sends one operation that the target answers with `headers`, then a second one; returns the gap between the two requests. */
async function gapAfter(p: Pipeline, headers: Record<string, string>): Promise<number> {
  p.target.script('POST /quota', [
    { status: 200, json: { n: 1 }, headers },
    { status: 200, json: { n: 2 } },
  ]);
  await p.producer.enqueue(p.op('/quota'), { batchId: 'first' });
  expect(await p.settled('first')).toMatchObject({ succeeded: 1 });
  await p.producer.enqueue(p.op('/quota'), { batchId: 'second' });
  expect(await p.settled('second')).toMatchObject({ succeeded: 1 });
  const [first, second] = p.requestsTo('/quota');
  return second!.startedAt - first!.endedAt!;
}

describe('a spent quota in the response headers pauses the key until the reset', () => {
  it.each<[string, Record<string, string>]>([
    ['RateLimit-Remaining / RateLimit-Reset', { 'ratelimit-remaining': '0', 'ratelimit-reset': '2' }],
    ['X-RateLimit-Remaining / X-RateLimit-Reset', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' }],
    ['RateLimit: limit=, remaining=, reset=', { ratelimit: 'limit=10, remaining=0, reset=2' }],
    ['structured RateLimit with t', { ratelimit: '"default";r=0;t=2', 'ratelimit-policy': '"default";q=10;w=60' }],
    ['structured RateLimit without t: the policy window', { ratelimit: '"default";r=0', 'ratelimit-policy': '"default";q=10;w=2' }],
    [
      'structured, several policies: the spent one',
      { ratelimit: '"burst";r=5;t=1, "hourly";r=0;t=2', 'ratelimit-policy': '"burst";q=10;w=1, "hourly";q=100;w=3600' },
    ],
  ])('%s', async (_, headers) => {
    const p = await startPipeline(redis());
    // The reset is 2 s after the first response was sent, a little before the client read it.
    expect(await gapAfter(p, headers)).toBeGreaterThanOrEqual(1_900);
  });

  it('a quota that is not spent does not pause the key', async () => {
    const p = await startPipeline(redis());
    const gap = await gapAfter(p, { ratelimit: '"default";r=5;t=10', 'ratelimit-policy': '"default";q=10;w=10' });
    expect(gap).toBeLessThan(5_000);
  });
});
