/**
 * No two key families of src/redis/keys.ts make the same key, for any valid names.
 *
 * Why: every family is a fixed prefix, then a fixed first segment of its own (`idem`, `outcome`,
 * `batch`, `batches`, `dlq`, `none`, the limiter's `state`, `leases`, …), then at most one name,
 * then at most a fixed suffix. A name may hold no `:` (queue names and batch ids: BATCH_ID,
 * QUEUE_NAME) or is hex / ends the key, so a key splits back into its family and its names one way
 * only. Each key below is decoded by the pattern table: exactly one family must match it, and
 * rebuilding from what was matched must give the same key. With `:` allowed in batch ids (before
 * issue 13) `batch:srv1:results` was both batch `srv1`'s results and batch `srv1:results`.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  BATCH_ID,
  QUEUE_NAME,
  SHARD_NAME,
  WORKER_SNAPSHOTS_KEY,
  authFailuresKey,
  bullQueueName,
  isBatchId,
  limiterKeys,
  oauth2Keys,
  queueKeys,
  sessionKey,
  sha256,
  shardName,
  shardOf,
} from '../../src/redis/keys.js';

const NAME = '[A-Za-z0-9_.-]+';
/** A queue's name, or one of its shards' (`q#2`). */
const QNAME = '[A-Za-z0-9_.-]+(?:#[1-9][0-9]*)?';
const HEX = '[0-9a-f]+';
/** Family → the shape of its keys; the groups are its names. */
const PATTERNS: Record<string, RegExp> = {
  idempotency: new RegExp(`^sluice:\\{(${QNAME})\\}:idem:(${HEX})$`),
  outcome: new RegExp(`^sluice:\\{(${QNAME})\\}:outcome:(.+)$`),
  chunk: new RegExp(`^sluice:\\{(${QNAME})\\}:chunk:(${HEX})$`),
  batch: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME})$`),
  batchResults: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME}):results$`),
  batchEnqueuing: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME}):enqueuing$`),
  batchPlaces: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME}):places$`),
  batchDeadLetters: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME}):dlq$`),
  batchDeadLetterGroups: new RegExp(`^sluice:\\{(${QNAME})\\}:batch:(${NAME}):dlq:groups$`),
  batchIndex: new RegExp(`^sluice:\\{(${QNAME})\\}:batches$`),
  deadLetters: new RegExp(`^sluice:\\{(${QNAME})\\}:dlq$`),
  deadLetterIndex: new RegExp(`^sluice:\\{(${QNAME})\\}:dlq:index$`),
  deadLetterGroups: new RegExp(`^sluice:\\{(${QNAME})\\}:dlq:groups$`),
  deadLetterGroupLatest: new RegExp(`^sluice:\\{(${QNAME})\\}:dlq:groups:latest$`),
  replaying: new RegExp(`^sluice:\\{(${QNAME})\\}:dlq:replaying$`),
  shards: new RegExp(`^sluice:\\{(${QNAME})\\}:shards$`),
  none: new RegExp(`^sluice:\\{(${QNAME})\\}:none$`),
  schedules: new RegExp(`^sluice:\\{(${QNAME})\\}:schedules$`),
  schedule: new RegExp(`^sluice:\\{(${QNAME})\\}:schedule:(${NAME})$`),
  scheduleOperations: new RegExp(`^sluice:\\{(${QNAME})\\}:schedule:(${NAME}):operations$`),
  scheduleRuns: new RegExp(`^sluice:\\{(${QNAME})\\}:schedule:(${NAME}):runs$`),
  scheduleRunData: new RegExp(`^sluice:\\{(${QNAME})\\}:schedule:(${NAME}):runs:data$`),
  // BullMQ's lock of a job: sluice's job ids start with k-, u- or p- (a replay adds .rN), a lane's with l-, so no other family ends so.
  stalled: new RegExp(`^sluice:\\{(${QNAME})\\}:stalled$`),
  jobLock: new RegExp(`^sluice:\\{(${QNAME})\\}:([kupl]-[^:]+):lock$`),
  'limits.index': /^sluice:limits:keys$/,
  'limits.version': /^sluice:limits:version$/,
  'limits.processes': /^sluice:limits:processes$/,
  // A limit key's keys are in its group's slot: the group is the key up to its first `:`, so holds
  // none, or an IPv6 host in brackets.
  'limits.state': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:state:(.+)$/,
  'limits.override': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:override:(.+)$/,
  'limits.leases': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:leases:(.+)$/,
  'limits.line': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:line:(.+)$/,
  'limits.catchUpClaim': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:catch-up:(.+)$/,
  'limits.recent429': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:429:(.+)$/,
  'limits.circuitWindow': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:circuit:(.+)$/,
  'limits.circuitWaiting': /^sluice:\{limits:(\[[^\]]*\]|[^:]*)\}:circuit-waiting:(.+)$/,
  'oauth2.token': new RegExp(`^sluice:auth:(${HEX}):token$`),
  'oauth2.lock': new RegExp(`^sluice:auth:(${HEX}):lock$`),
  workerSnapshots: /^sluice:metrics:workers$/,
  session: new RegExp(`^sluice:session:(${HEX})$`),
  authFailures: /^sluice:auth-failures:(.+)$/,
};

// Names chosen to look like other families' segments and suffixes.
const QUEUES = [
  'default',
  'q',
  'limits',
  'batch',
  'dlq',
  'q.batch',
  'auth',
  'metrics',
  '-',
  '.',
  'x'.repeat(100),
  'q#1',
  'q.batch#12',
  'x'.repeat(100) + '#63',
];
const BATCHES = [
  'b',
  'results',
  'enqueuing',
  'dlq',
  'groups',
  'dlq.groups',
  'batches',
  'none',
  'srv1',
  'srv1.results',
  'operations',
  'runs',
  'runs.data',
  'schedules',
  '_',
  'y'.repeat(128),
];
const LIMIT_KEYS = [
  'orders',
  'api.example.com:443',
  'state:x',
  'a:429:b',
  'keys',
  'a}b',
  '{x}',
  'x}}:line:x',
  'limits',
  '[::1]:8080',
  '[2001:db8::1]',
];

function* everyKey(): Generator<[family: string, key: string]> {
  for (const queue of QUEUES) {
    for (const [family, value] of Object.entries(queueKeys(queue))) {
      if (typeof value === 'string') yield [family, value];
      else if (family === 'idempotency') for (const key of ['k', 'order-1', 'a:b']) yield [family, value(key)];
      else if (family === 'outcome')
        for (const instance of ['k-abc:1700000000000', 'u-1:2', '17:3', 'l-00112233445566778899aabb:1700000000000'])
          yield [family, value(instance)];
      else if (family === 'chunk') for (const hash of [sha256('a'), sha256('b')]) yield [family, value(hash)];
      else if (family === 'jobLock')
        for (const jobId of ['k-abc', 'u-1', 'p-batch', 'k-abc.r2', 'l-00112233445566778899aabb']) yield [family, value(jobId)];
      else for (const batch of BATCHES) yield [family, value(batch)];
    }
  }
  for (const [family, value] of Object.entries(limiterKeys)) {
    if (typeof value === 'string') yield [`limits.${family}`, value];
    else for (const key of LIMIT_KEYS) yield [`limits.${family}`, value(key)];
  }
  for (const client of [sha256('a'), sha256('b')]) {
    const { token, lock } = oauth2Keys(client);
    yield ['oauth2.token', token];
    yield ['oauth2.lock', lock];
  }
  yield ['workerSnapshots', WORKER_SNAPSHOTS_KEY];
  for (const id of ['a', 'b']) yield ['session', sessionKey(id)];
  for (const address of ['127.0.0.1', '2001:db8:1:2::/64', 'token']) yield ['authFailures', authFailuresKey(address)];
}

describe('Redis key families', () => {
  it('every key splits back into one family only, so no two families (or two names) make the same key', () => {
    const seen = new Map<string, string>();
    for (const [family, key] of everyKey()) {
      expect(PATTERNS[family], `family ${family} has no pattern in this test: add one`).toBeDefined();
      const matching = Object.entries(PATTERNS)
        .filter(([, pattern]) => pattern.test(key))
        .map(([name]) => name);
      expect(matching, key).toEqual([family]);
      const before = seen.get(key);
      expect(before, `${key} made by ${family} and by ${before}`).toBeUndefined();
      seen.set(key, family);
    }
    expect(seen.size).toBeGreaterThan(200);
  });

  it('names hold no `:`, `{` or `}`: batch ids and queue names that do are refused', () => {
    for (const batch of BATCHES) expect(isBatchId(batch), batch).toBe(true);
    for (const bad of ['srv1:results', 'srv1:enqueuing', 'a{b}', 'with space', '', 'z'.repeat(129), 'ünï']) {
      expect(isBatchId(bad), bad).toBe(false);
      expect(BATCH_ID.test(bad)).toBe(false);
    }
    for (const queue of QUEUES) expect(QUEUE_NAME.test(queue) || SHARD_NAME.test(queue), queue).toBe(true);
    // A shard's name is made by sluice (shardName): a queue's own name may not hold `#`.
    for (const shard of QUEUES.filter((queue) => queue.includes('#'))) {
      expect(QUEUE_NAME.test(shard), shard).toBe(false);
      expect(shardName(shardOf(shard).queue, shardOf(shard).index)).toBe(shard);
    }
    for (const bad of ['a:b', 'a}b', '{a}', 'with space', '', 'q#0', 'q#', '#1', 'q#1#2', 'q#x']) {
      expect(() => queueKeys(bad), bad).toThrow(ValidationError);
      expect(() => bullQueueName(bad), bad).toThrow(/invalid queue name/);
    }
  });

  it('with `:` allowed, a batch id would name another batch`s keys (what the rule prevents)', () => {
    const keys = queueKeys('q');
    expect(keys.batch('srv1:results')).toBe(keys.batchResults('srv1'));
    expect(keys.batch('srv1:enqueuing')).toBe(keys.batchEnqueuing('srv1'));
  });
});
