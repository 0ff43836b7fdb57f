import { describe, expect, it } from 'vitest';
import { isLaneData, laneEnvelope, laneOfOpId, MAX_LANE_BYTES, packChunk } from '../../src/queue/lanes.js';
import type { PreparedJob } from '../../src/queue/prepare-job.js';
import { jobIdForPlace } from '../../src/redis/keys.js';

/** As prepareJob makes it: a line of a resumable input without a key of its own has its place's id. */
function prepared(n: number, extra: Partial<PreparedJob> = {}): PreparedJob {
  const opJson = JSON.stringify({ method: 'POST', url: `https://api.example/${n}`, meta: { n } });
  const jobId = extra.place && extra.givenKey === undefined ? jobIdForPlace(extra.place) : `u-${n}`;
  return {
    jobId,
    shard: 0,
    routedWith: 1,
    batchId: 'b-1',
    dedupKey: undefined,
    idempotencyKey: `sluice-u-${n}`,
    place: '',
    placeBucket: '',
    meta: { n },
    limitKeys: ['api.example'],
    opJson,
    givenKey: undefined,
    packable: true,
    ...extra,
  };
}

const laneData = (lane: { before: string; after: string; members: readonly { json: string }[] }): unknown =>
  JSON.parse(lane.before + lane.members.map((member) => member.json).join(',') + lane.after);

describe('packChunk', () => {
  it('cuts operations of the same keys into lanes of the size their keys allow, in the order they came', () => {
    const chunk = Array.from({ length: 7 }, (_, n) => prepared(n));
    const { singles, lanes } = packChunk(chunk, 'b-1', () => 3);
    expect(lanes.map((lane) => lane.indexes)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    // The last cut holds one operation: a single job.
    expect(singles.map((single) => single.index)).toEqual([6]);
    expect(lanes[0]!.lane.members.map((member) => member.id)).toEqual([0, 1, 2].map((i) => `${lanes[0]!.lane.id}-${i}`));
  });

  it('groups by limit keys, leaves paginated and lone operations as single jobs', () => {
    const chunk = [
      prepared(0),
      prepared(1, { limitKeys: ['other'] }),
      prepared(2),
      prepared(3, { packable: false }),
      prepared(4, { limitKeys: ['a', 'b'] }),
    ];
    const { singles, lanes } = packChunk(chunk, 'b-1', () => 500);
    expect(lanes.map((lane) => lane.indexes)).toEqual([[0, 2]]);
    expect(singles.map((single) => single.index)).toEqual([1, 3, 4]);
  });

  it('cuts a lane at MAX_LANE_BYTES of operation JSON', () => {
    const body = 'x'.repeat(100 * 1024);
    const chunk = Array.from({ length: 5 }, (_, n) => {
      const item = prepared(n);
      return { ...item, opJson: JSON.stringify({ method: 'POST', url: 'https://api.example/', json: body, n }) };
    });
    const { lanes, singles } = packChunk(chunk, 'b-1', () => 500);
    expect(lanes.map((lane) => lane.indexes)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(singles.map((single) => single.index)).toEqual([4]);
    for (const lane of lanes)
      expect(lane.lane.members.reduce((sum, member) => sum + member.json.length, 0)).toBeLessThan(MAX_LANE_BYTES + 1_000);
  });

  it('writes data a worker reads back as the envelopes single jobs would have had', () => {
    const chunk = [prepared(0), prepared(1, { givenKey: 'order-1', dedupKey: 'sluice:{q}:idem:x' }), prepared(2)];
    const [packed] = packChunk(chunk, 'b-7', () => 500).lanes;
    const data = laneData(packed!.lane);
    expect(isLaneData(data)).toBe(true);
    if (!isLaneData(data)) return;
    const id = packed!.lane.id;
    expect(laneEnvelope(data, 0)).toEqual({
      op: JSON.parse(chunk[0]!.opJson),
      opId: `${id}-0`,
      idempotencyKey: `sluice-${id}-0`,
      batchId: 'b-7',
    });
    expect(laneEnvelope(data, 1)).toMatchObject({ opId: `${id}-1`, idempotencyKey: 'order-1', batchId: 'b-7' });
    expect(packed!.lane.members[1]!.dedupKey).toBe('sluice:{q}:idem:x');
    expect(laneOfOpId(`${id}-2`)).toEqual({ lane: id, index: 2 });
    expect(laneOfOpId('u-1')).toBeUndefined();
  });

  it('gives a resumable input the same lane ids and keys on every run, and random ids otherwise', () => {
    const placed = Array.from({ length: 3 }, (_, n) => prepared(n, { place: `place-${n}` }));
    const first = packChunk(placed, 'b-1', () => 500).lanes[0]!.lane;
    const again = packChunk(placed, 'b-1', () => 500).lanes[0]!.lane;
    expect(again.id).toBe(first.id);
    const data = laneData(first);
    if (!isLaneData(data)) throw new Error('not a lane');
    // The key a single job at that place would have had: a resumed input sends the same key however it is packed.
    expect(laneEnvelope(data, 1).idempotencyKey).toBe('sluice-p-place-1');
    // Not written in the lane: it follows from the operation's id.
    expect(first.members[1]!.json).not.toContain('idempotencyKey');
    const loose = Array.from({ length: 3 }, (_, n) => prepared(n));
    expect(packChunk(loose, 'b-1', () => 500).lanes[0]!.lane.id).not.toBe(packChunk(loose, 'b-1', () => 500).lanes[0]!.lane.id);
  });

  it('refuses data that is not a lane of this version', () => {
    expect(isLaneData({ v: 3, lane: 'l-x', batchId: 'b', ops: [] })).toBe(false);
    // Version 2: a lane with empty places (duplicates left out at enqueue).
    expect(isLaneData({ v: 2, lane: 'l-x', batchId: 'b', ops: [null] })).toBe(true);
    expect(isLaneData({ op: {} })).toBe(false);
    expect(isLaneData(null)).toBe(false);
  });
});
