import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { isRedisUnavailable, outageReason } from '../../src/redis/unavailable.js';
import { isRedisFailure } from '../../src/redis/redis-errors.js';

const named = (name: string, message: string) => Object.assign(new Error(message), { name });
const withCode = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });

describe('isRedisUnavailable: whether a Redis error may go away by itself', () => {
  it.each([
    ['ioredis gave up on a command', named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 3).')],
    ['the connection closed', new Error('Connection is closed.')],
    ['refused', withCode('ECONNREFUSED')],
    ['reset', withCode('ECONNRESET')],
    // A Compose Redis that is stopped stops resolving by name; the first connection's check names a mistyped host apart.
    ['a host name that stopped resolving', withCode('ENOTFOUND')],
    ['Redis loading its data after a restart', named('ReplyError', 'LOADING Redis is loading the dataset in memory')],
    ['a replica without its master', named('ReplyError', 'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no')],
    ['a cluster failing over', named('ReplyError', 'CLUSTERDOWN The cluster is down')],
    ['a cluster none of whose seeds answers', new Error('None of startup nodes is available')],
    ['a cluster whose slots cannot be read', named('ClusterAllFailedError', 'Failed to refresh slots cache.')],
    [
      'a cluster that moved a slot more often than followed',
      new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
    ],
    ['a script running too long', named('ReplyError', 'BUSY Redis is busy running a script.')],
    ['the CLI check', new SluiceError('cannot reach Redis at redis://127.0.0.1:9', { code: 'REDIS_UNREACHABLE' })],
  ])('%s: yes', (_what, error) => {
    expect(isRedisUnavailable(error)).toBe(true);
  });

  it.each([
    ['a full Redis', named('ReplyError', 'OOM command not allowed when used memory > maxmemory.')],
    ['a read-only replica', named('ReplyError', "READONLY You can't write against a read only replica.")],
    ['a wrong command', named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['an aborted transaction', named('ReplyError', 'EXECABORT Transaction discarded because of previous errors.')],
    ['another sluice error', new SluiceError('no such batch', { code: 'NOT_FOUND' })],
    ['a string', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('%s: no', (_what, error) => {
    expect(isRedisUnavailable(error)).toBe(false);
  });

  it('names the first cause of an outage, without the advice wrapped around it', () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:9');
    expect(outageReason(new SluiceError('cannot reach Redis at …: Is it running?', { code: 'REDIS_UNREACHABLE', cause }))).toBe(
      'connect ECONNREFUSED 127.0.0.1:9',
    );
    expect(outageReason(new Error('Connection is closed.'))).toBe('Connection is closed.');
  });
});

describe('isRedisFailure: whether an error came from Redis or the way to it (a write is tried again)', () => {
  it.each([
    ['an error reply', named('ReplyError', 'READONLY You cannot write against a read only replica.')],
    ['a lost connection', withCode('ECONNRESET')],
    ['a cluster none of whose seeds answers', new Error('None of startup nodes is available')],
    ['a cluster whose slots cannot be read', named('ClusterAllFailedError', 'Failed to refresh slots cache.')],
    ['a cluster that moved a slot more often than followed', new Error('Too many Cluster redirections. Last error: ReplyError: TRYAGAIN')],
  ])('%s: yes', (_what, error) => {
    expect(isRedisFailure(error)).toBe(true);
  });

  it('a refusal of what was asked (BullMQ: a lost lock) or a bug: no', () => {
    expect(isRedisFailure(new Error('Missing lock for job 1. moveToFinished'))).toBe(false);
    expect(isRedisFailure(new TypeError('x is undefined'))).toBe(false);
  });
});
