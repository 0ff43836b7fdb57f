/**
 * REDIS_URL read as one server or a Redis Cluster's seeds (redis/redis-url.ts), and the env's
 * check of it: a wrong cluster URL is refused naming what is wrong, before anything connects.
 */
import { describe, expect, it } from 'vitest';
import { hostOf, isClusterUrl, parseRedisUrl, redactUrl } from '../../src/redis/redis-url.js';
import { envSchema } from '../../src/config/env.js';

describe('parseRedisUrl', () => {
  it('one server: the URL as ioredis reads it', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379')).toEqual({ cluster: false, url: 'redis://127.0.0.1:6379' });
    expect(isClusterUrl('rediss://h:1')).toBe(false);
  });

  it('a cluster: seeds, the ACL user and password (decoded), TLS, a NAT map', () => {
    expect(
      parseRedisUrl(
        'rediss+cluster://sluice:p%40ss:w@10.0.0.1:6379,[::1]:7000?natMap=172.18.0.2:6379=127.0.0.1:7001,172.18.0.3:6379=127.0.0.1:7002',
      ),
    ).toEqual({
      cluster: true,
      seeds: [
        { host: '10.0.0.1', port: 6379 },
        { host: '::1', port: 7000 },
      ],
      username: 'sluice',
      password: 'p@ss:w',
      tls: true,
      natMap: { '172.18.0.2:6379': { host: '127.0.0.1', port: 7001 }, '172.18.0.3:6379': { host: '127.0.0.1', port: 7002 } },
    });
    expect(parseRedisUrl('redis+cluster://:secret@h:1')).toEqual({
      cluster: true,
      seeds: [{ host: 'h', port: 1 }],
      password: 'secret',
      tls: false,
      natMap: {},
    });
    expect(hostOf('redis+cluster://a:1,b:2')).toBe('a');
  });

  it('names what is wrong', () => {
    expect(() => parseRedisUrl('redis+cluster://h')).toThrow('seed node "h": expected HOST:PORT (a port from 1 to 65535)');
    expect(() => parseRedisUrl('redis+cluster://h:1,h:70000')).toThrow('seed node "h:70000"');
    expect(() => parseRedisUrl('redis+cluster://h:1?db=2')).toThrow('unknown parameter "db" (a cluster URL takes natMap only)');
    expect(() => parseRedisUrl('redis+cluster://h:1?natMap=a:1')).toThrow('natMap: "a:1": expected ADVERTISED_HOST:PORT=HOST:PORT');
  });

  it('hides the password of either kind of URL', () => {
    expect(redactUrl('rediss+cluster://u:secret@a:1,b:2')).toBe('rediss+cluster://u:***@a:1,b:2');
    expect(redactUrl('redis://:secret@a:1')).toBe('redis://:***@a:1');
  });
});

describe('REDIS_URL in the environment', () => {
  const read = (url: string) => envSchema.safeParse({ REDIS_URL: url });
  it('takes one server or a cluster, and refuses a wrong cluster URL with the reason', () => {
    expect(read('redis+cluster://127.0.0.1:7000,127.0.0.1:7001').success).toBe(true);
    expect(read('rediss://h:6380').success).toBe(true);
    const wrong = read('redis+cluster://127.0.0.1:7000,nohost');
    expect(wrong.success).toBe(false);
    expect(wrong.error?.issues[0]?.message).toBe('seed node "nohost": expected HOST:PORT (a port from 1 to 65535)');
    expect(read('http://h:1').error?.issues[0]?.message).toBe('expected a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL');
  });
});
