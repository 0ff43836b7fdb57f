import { describe, expect, it } from 'vitest';
import { describeConnectionFailure, type ConnectionFailureInput } from '../../src/redis/connection-failure.js';
import { redactUrl } from '../../src/redis/connection.js';

const named = (name: string, message: string) => Object.assign(new Error(message), { name });
const socket = (code: string, message = `connect ${code} 10.0.0.7:6380`) => Object.assign(new Error(message), { code });
const maxRetries = named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 3).');

const base: ConnectionFailureInput = { timedOut: false, timeoutMs: 2_000, status: 'reconnecting', host: 'redis.internal' };

describe('describeConnectionFailure: what a failed first PING says', () => {
  it.each<[string, Partial<ConnectionFailureInput>, string, string]>([
    [
      'refused, behind the retry wrapper',
      { error: maxRetries, lastError: socket('ECONNREFUSED') },
      'REDIS_UNREACHABLE',
      'connection refused (ECONNREFUSED)',
    ],
    [
      'an unknown host',
      { error: maxRetries, lastError: socket('ENOTFOUND', 'getaddrinfo ENOTFOUND redis.internal') },
      'REDIS_UNREACHABLE',
      'unknown host "redis.internal" (ENOTFOUND)',
    ],
    [
      'DNS not answering',
      { error: maxRetries, lastError: socket('EAI_AGAIN') },
      'REDIS_UNREACHABLE',
      'the host name "redis.internal" could not be resolved (EAI_AGAIN: DNS did not answer)',
    ],
    [
      'connect timed out',
      { error: maxRetries, lastError: socket('ETIMEDOUT') },
      'REDIS_UNREACHABLE',
      'the connection timed out (ETIMEDOUT)',
    ],
    ['no route', { error: maxRetries, lastError: socket('EHOSTUNREACH') }, 'REDIS_UNREACHABLE', 'no route to the host (EHOSTUNREACH)'],
    ['reset', { error: socket('ECONNRESET') }, 'REDIS_UNREACHABLE', 'the connection was reset (ECONNRESET)'],
    [
      'a wrong password',
      { error: named('ReplyError', 'WRONGPASS invalid username-password pair or user is disabled.') },
      'REDIS_AUTH_FAILED',
      'refused the user or password (WRONGPASS: a wrong password, or an ACL user that does not exist or is disabled)',
    ],
    [
      'a wrong password, seen on the connection only (a worker never gives up on its command)',
      { timedOut: true, lastError: named('ReplyError', 'WRONGPASS invalid username-password pair or user is disabled.') },
      'REDIS_AUTH_FAILED',
      'refused the user or password (WRONGPASS: a wrong password, or an ACL user that does not exist or is disabled)',
    ],
    [
      'no password given',
      { error: named('ReplyError', 'NOAUTH Authentication required.') },
      'REDIS_AUTH_FAILED',
      'wants a password, and REDIS_URL gives none (NOAUTH)',
    ],
    [
      'an HTTP server on the port',
      { error: maxRetries, lastError: new Error('Protocol error, got "H" as reply type byte. Please report this.') },
      'REDIS_UNREACHABLE',
      'something that is not Redis answered (Protocol error, got "H" as reply type byte)',
    ],
    ['connected, then silence', { timedOut: true, status: 'connect' }, 'REDIS_UNREACHABLE', 'connected, but no answer within 2000 ms'],
    [
      'no connection at all (a firewall dropping packets)',
      { timedOut: true, status: 'connecting' },
      'REDIS_UNREACHABLE',
      'no connection within 2000 ms',
    ],
    [
      'rediss:// to a Redis without TLS: the handshake never ends',
      { timedOut: true, status: 'connecting', tls: true },
      'REDIS_UNREACHABLE',
      'no TLS connection within 2000 ms',
    ],
    [
      'refusals until the timeout (a worker never gives up on its command)',
      { timedOut: true, status: 'reconnecting', lastError: socket('ECONNREFUSED') },
      'REDIS_UNREACHABLE',
      'connection refused (ECONNREFUSED)',
    ],
    ['anything else: its message', { error: new Error('Connection is closed.') }, 'REDIS_UNREACHABLE', 'Connection is closed'],
  ])('%s', (_what, input, code, reason) => {
    const failure = describeConnectionFailure({ ...base, ...input });
    expect(failure.code).toBe(code);
    expect(failure.reason).toBe(reason);
    expect(failure.hint).toMatch(/REDIS_URL/);
  });
});

describe('redactUrl: the URL a message shows', () => {
  it.each([
    ['redis://127.0.0.1:6380', 'redis://127.0.0.1:6380'],
    ['redis://:s3cret@redis.invalid:6379/0', 'redis://:***@redis.invalid:6379/0'],
    ['rediss://app:s3cret@10.0.0.7:6380/2', 'rediss://app:***@10.0.0.7:6380/2'],
    // Unencoded, the last `@` ends the password (as ioredis's URL parser reads it): none of it shows.
    ['redis://:p@ss@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['redis://app:a:b@c@127.0.0.1:6379/1', 'redis://app:***@127.0.0.1:6379/1'],
    ['redis://:p%40ss@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    // ioredis reads options from the query, a password too.
    ['redis://127.0.0.1:6379/?password=s3cret', 'redis://127.0.0.1:6379/?password=***'],
    ['redis://127.0.0.1:6379/0?db=1&password=s3cret&family=6', 'redis://127.0.0.1:6379/0?db=1&password=***&family=6'],
    // An ACL user without a password has nothing to hide; an `@` in the path is no user part.
    ['redis://app@127.0.0.1:6379', 'redis://app@127.0.0.1:6379'],
    ['redis://127.0.0.1:6379/0#a:b@c', 'redis://127.0.0.1:6379/0#a:b@c'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});
