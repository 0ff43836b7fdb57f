import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, SluiceError } from '../../src/errors.js';
import { parseEnv } from '../../src/config/env.js';
import { EMPTY_CONFIG, loadSluiceConfig, parseSluiceConfig } from '../../src/config/sluice-config.js';

/** Runs `fn`, expecting a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const VALID = {
  targets: {
    billing: {
      baseUrl: 'https://billing.example.com/v2',
      headers: { authorization: 'Bearer t', 'x-client': 'sluice' },
      limits: { requestsPerSecond: 10, burst: 20, concurrency: 5 },
      allowPrivateAddresses: false,
    },
    'crm.eu:1': { baseUrl: 'http://127.0.0.1:8080', allowPrivateAddresses: true },
  },
  limits: {
    'api.example.com': { requestsPerMinute: 600 },
    slow: { concurrency: 1 },
  },
  allowedHosts: ['api.example.com', '*.partner.example', 'files.example.org:8443'],
};

describe('parseSluiceConfig', () => {
  it('accepts a valid config and returns it unchanged', () => {
    expect(parseSluiceConfig(VALID)).toEqual(VALID);
  });

  it('fills empty targets and limits', () => {
    expect(parseSluiceConfig({})).toEqual({ targets: {}, limits: {}, allowedHosts: [] });
    expect(EMPTY_CONFIG).toEqual({ targets: {}, limits: {}, allowedHosts: [] });
  });

  it('lists every problem with its path in one ConfigError', () => {
    const error = configError(() =>
      parseSluiceConfig(
        {
          targets: {
            billing: { baseUrl: 'ftp://billing.example.com', limits: { requestsPerSecond: 5, requestsPerMinute: 100, rpm: 3 } },
            'bad name': { baseUrl: 'http://ok.example.com' },
          },
          limits: { slow: { burst: 3 }, empty: {} },
          extra: true,
        },
        'sluice.json',
      ),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { path: 'targets.billing.baseUrl', message: 'expected an absolute http(s) URL' },
        { path: 'targets.billing.limits.rpm', message: 'unknown field' },
        { path: 'targets.bad name', message: 'target names may hold letters, digits and _ . : -' },
        { path: 'limits.slow.burst', message: 'burst needs requestsPerSecond or requestsPerMinute' },
        { path: 'limits.empty', message: 'give at least one of requestsPerSecond, requestsPerMinute, concurrency' },
        { path: 'extra', message: 'unknown field' },
      ]),
    );
    // The rps+rpm conflict is reported even though the same object has an unknown field.
    expect(error.issues).toContainEqual({
      path: 'targets.billing.limits.requestsPerMinute',
      message: 'give requestsPerSecond or requestsPerMinute, not both',
    });
    expect(error.issues).toHaveLength(7);
    // The message names the source and every path, one per line.
    expect(error.message).toMatch(/^invalid configuration in sluice\.json:\n/);
    for (const issue of error.issues) expect(error.message).toContain(`  ${issue.path}: ${issue.message}`);
  });

  it('rejects a target header value with CR or LF', () => {
    const error = configError(() => parseSluiceConfig({ targets: { a: { baseUrl: 'http://h', headers: { 'x-a': 'v\r\nx: y' } } } }));
    expect(error.issues).toEqual([{ path: 'targets.a.headers.x-a', message: 'header values may not contain CR or LF' }]);
  });

  it('rejects a target header name that is not a token, as it would fail every request', () => {
    const error = configError(() => parseSluiceConfig({ targets: { a: { baseUrl: 'http://h', headers: { 'X Api Key': 'k' } } } }));
    expect(error.issues).toEqual([{ path: 'targets.a.headers.X Api Key', message: 'header names may only hold token characters' }]);
  });

  it.each([null, [], 'targets', 3])('rejects the non-object config %j', (value) => {
    const error = configError(() => parseSluiceConfig(value));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toBe('');
  });
});

describe('loadSluiceConfig', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-config-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and validates a file', async () => {
    const path = join(dir, 'ok.json');
    await writeFile(path, JSON.stringify(VALID));
    await expect(loadSluiceConfig(path)).resolves.toEqual(VALID);
  });

  it('reports a missing file with its path', async () => {
    const path = join(dir, 'missing.json');
    const error = await loadSluiceConfig(path).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'CONFIG_UNREADABLE', message: expect.stringContaining(path) });
    expect((error as SluiceError).message).toMatch(/ENOENT/);
  });

  it('reports invalid JSON as a ConfigError naming the file', async () => {
    const path = join(dir, 'broken.json');
    await writeFile(path, '{"targets": {');
    const error = await loadSluiceConfig(path).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues;
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ path: '', message: expect.stringMatching(/^not valid JSON: /) });
    expect((error as ConfigError).message).toContain(path);
  });

  it('reports schema problems with the file as source', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ targets: { a: { baseUrl: '/relative' } } }));
    const error = await loadSluiceConfig(path).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([{ path: 'targets.a.baseUrl', message: 'expected an absolute http(s) URL' }]);
    expect((error as ConfigError).message).toContain(`invalid configuration in ${path}`);
  });
});

describe('parseEnv', () => {
  it('fills every default from an empty environment', () => {
    expect(parseEnv({})).toEqual({
      REDIS_URL: 'redis://127.0.0.1:6379',
      SLUICE_QUEUE: 'default',
      SLUICE_CONCURRENCY: 50,
      LOG_LEVEL: 'info',
      SLUICE_SHUTDOWN_TIMEOUT_MS: 30_000,
      SLUICE_DEDUP_WINDOW_SECONDS: 86_400,
      SLUICE_LANES: 'off',
      SLUICE_LANE_SIZE: 100,
      SLUICE_ENQUEUE_REPLICAS: 0,
      SLUICE_ENQUEUE_REPLICAS_TIMEOUT_MS: 2_000,
      SLUICE_KEEP_COMPLETED_SECONDS: 3_600,
      SLUICE_KEEP_FAILED_SECONDS: 86_400,
      SLUICE_BATCH_RETENTION_SECONDS: 7 * 86_400,
      SLUICE_RESULT_MAX_BYTES: 8_192,
      SLUICE_MAX_RESPONSE_BYTES: 10 * 1024 * 1024,
      SLUICE_LOCK_DURATION_MS: 30_000,
      SLUICE_STALLED_INTERVAL_MS: 30_000,
      SLUICE_METRICS_INTERVAL_MS: 5_000,
      SLUICE_PROCESS_METRICS: 'true',
      SLUICE_SERVER_HOST: '127.0.0.1',
      SLUICE_SERVER_PORT: 3_000,
      SLUICE_API_MAX_BODY_BYTES: 32 * 1024 * 1024,
      SLUICE_API_HEADERS_TIMEOUT_MS: 10_000,
      SLUICE_API_REQUEST_TIMEOUT_MS: 60_000,
      SLUICE_SESSION_IDLE_SECONDS: 1_800,
      SLUICE_SESSION_MAX_SECONDS: 43_200,
    });
  });

  it('treats empty strings as unset and ignores unrelated variables', () => {
    const env = parseEnv({ SLUICE_CONCURRENCY: '', REDIS_URL: undefined, PATH: '/usr/bin', HOME: '/root' });
    expect(env.SLUICE_CONCURRENCY).toBe(50);
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env).not.toHaveProperty('PATH');
  });

  it('coerces numbers and keeps strings', () => {
    const env = parseEnv({
      REDIS_URL: 'rediss://user:pw@redis.example.com:6380/2',
      SLUICE_QUEUE: 'orders.v2',
      SLUICE_CONCURRENCY: '8',
      SLUICE_SHUTDOWN_TIMEOUT_MS: '0',
      SLUICE_CONFIG: '/etc/sluice.json',
      LOG_LEVEL: 'debug',
    });
    expect(env).toMatchObject({
      REDIS_URL: 'rediss://user:pw@redis.example.com:6380/2',
      SLUICE_QUEUE: 'orders.v2',
      SLUICE_CONCURRENCY: 8,
      SLUICE_SHUTDOWN_TIMEOUT_MS: 0,
      SLUICE_CONFIG: '/etc/sluice.json',
      LOG_LEVEL: 'debug',
    });
  });

  it('reports a bad REDIS_URL and a bad SLUICE_CONCURRENCY together', () => {
    const error = configError(() => parseEnv({ REDIS_URL: 'http://localhost:6379', SLUICE_CONCURRENCY: 'lots' }));
    expect(error.issues).toHaveLength(2);
    expect(error.issues).toContainEqual({
      path: 'REDIS_URL',
      message: 'expected a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL',
    });
    expect(error.issues.find((issue) => issue.path === 'SLUICE_CONCURRENCY')?.message).toMatch(/number/i);
    expect(error.message).toMatch(/^invalid configuration in the environment:/);
  });

  it.each(['redis://:s3cret@127.0.0.1:99999', 'redis://127.0.0.1:6379 /0', 'redis://[::1:6379'])(
    'rejects REDIS_URL=%s, which ioredis cannot parse',
    (url) => {
      const error = configError(() => parseEnv({ REDIS_URL: url }));
      expect(error.issues.map((issue) => issue.path)).toEqual(['REDIS_URL']);
      expect(error.issues[0]?.message).toMatch(/^not a valid URL/);
      expect(error.message).not.toContain('s3cret');
    },
  );

  it.each(['0', '1.5', '5001', '-3'])('rejects SLUICE_CONCURRENCY=%s', (value) => {
    const error = configError(() => parseEnv({ SLUICE_CONCURRENCY: value }));
    expect(error.issues.map((issue) => issue.path)).toEqual(['SLUICE_CONCURRENCY']);
  });

  it('rejects a queue name with characters outside the allowed set and an unknown LOG_LEVEL', () => {
    const error = configError(() => parseEnv({ SLUICE_QUEUE: 'a b', LOG_LEVEL: 'verbose' }));
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(['LOG_LEVEL', 'SLUICE_QUEUE']);
    expect(error.issues).toContainEqual({ path: 'SLUICE_QUEUE', message: 'letters, digits, _ . - (at most 100)' });
  });

  it('takes SLUICE_PROCESS_METRICS=true|false and names anything else', () => {
    expect(parseEnv({ SLUICE_PROCESS_METRICS: 'false' }).SLUICE_PROCESS_METRICS).toBe('false');
    const error = configError(() => parseEnv({ SLUICE_PROCESS_METRICS: 'no' }));
    expect(error.issues).toEqual([{ path: 'SLUICE_PROCESS_METRICS', message: 'expected true or false' }]);
  });
});
