/**
 * `sluice server` as a real process refusing large bodies it will not read: every client still
 * sending its 30 MB body gets the answer (401), not a connection reset. In one process with the
 * clients the race does not show; against a server process, closing at once lost answers (4 of 5
 * rounds of 30 clients had one that saw a reset instead).
 */
import { describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { openRaw } from '../helpers/raw-http.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

const BODY = 30 * 1024 * 1024;

describe('sluice server (built binary): refusing a body it will not read', () => {
  it('answers every client still sending its 30 MB body without a token with 401, then closes', async () => {
    const server = cli.spawn(['server', '--port', '0'], { env: { SLUICE_API_TOKENS: 'e2e-admin-token-0123456789:admin' } });
    const base = String((await server.waitForLog('server listening'))['address']);
    const host = new URL(base).host;
    for (let round = 0; round < 3; round += 1) {
      const statuses = await Promise.all(
        Array.from({ length: 30 }, async () => {
          const raw = await openRaw(base);
          raw.write(`POST /v1/operations HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${BODY}\r\n\r\n`);
          raw.flood(BODY);
          expect(await raw.closedWithin(10_000)).toBe('closed');
          return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.received())?.[1] ?? 0);
        }),
      );
      expect(statuses, `round ${round + 1}`).toEqual(Array.from({ length: 30 }, () => 401));
    }
  }, 60_000);
});
