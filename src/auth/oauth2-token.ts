import { createHash, randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/client.js';
import { AuthError, ShutdownAbortError } from '../errors.js';
import type { HttpClient } from '../http/http-client.js';
import { untilAborted } from '../support/abortable.js';
import { sleep } from '../support/sleep.js';
import type { Logger } from '../observability/logger.js';
import { defineScript } from '../redis/scripts.js';
import { oauth2Keys } from '../redis/keys.js';
import { openToken, sealToken, tokenSealingKey, type ExpiringToken } from './oauth2-token-seal.js';
import { requestTokenWithRetries, type OAuth2Settings, type TokenRequestOutcome } from './oauth2-token-request.js';

export type { OAuth2Settings, TokenRequestOutcome } from './oauth2-token-request.js';

export interface TokenSourceOptions {
  settings: OAuth2Settings;
  /** Borrowed client: the token is shared by every worker through it. */
  redis: RedisClient;
  /** Borrowed: token requests go through the same bounded client as operations. */
  http: HttpClient;
  logger: Logger;
  /** Token requests per refresh before giving up (the operation then retries by its own policy). Default 3. */
  requestAttempts?: number;
  /** Base of the backoff between token requests. Default 250 ms. */
  backoffMs?: number;
  /** How long a worker waits for another worker's token request. Default 30 s. */
  waitForOthersMs?: number;
  /** Told of every token request this process makes (for metrics). */
  onRequest?: (outcome: TokenRequestOutcome) => void;
}

export interface TokenSource {
  /**
   * A valid access token: from this process, else from Redis, else requested (once for the whole
   * fleet). `recheck` skips this process's copy: after a 401 another worker may have dropped or
   * replaced the token this process still holds. When `signal` aborts (the worker is stopping), the
   * wait ends with a ShutdownAbortError, and so does the token request once nobody waits for it.
   */
  token(options?: { recheck?: boolean; signal?: AbortSignal | undefined }): Promise<string>;
  /** The target refused `used` (a 401): drop it everywhere, unless someone already replaced it. */
  invalidate(used: string): Promise<void>;
  /**
   * Whether `used` is still the fleet's token (in Redis) and no worker is asking for a new one: a 401
   * for a token that was dropped, replaced, or is being replaced says nothing of the next one.
   */
  isCurrent(used: string): Promise<boolean>;
  /** Token requests this process made (for tests and metrics). */
  readonly requests: number;
}

interface CachedToken extends ExpiringToken {
  /** The ciphertext it is stored under in Redis, to invalidate exactly that one. */
  stored: string;
}

/** A token request shared by this process's callers; aborted once all of them stopped waiting. */
interface SharedRequest {
  token: Promise<string>;
  controller: AbortController;
  waiting: number;
}

/** Longer than one token request (its total timeout is 20 s); renewed before each further one. */
const LOCK_MS = 30_000;
const POLL_MS = 100;
/** Refused tokens this process remembers, so that it never takes one back from a read that raced the drop. */
const REFUSED_KEPT = 16;

/**
 * OAuth2 client credentials (RFC 6749 §4.4), one token for the whole fleet. The token lives in Redis,
 * encrypted (AES-256-GCM) under a key derived from the client secret, so Redis alone does not give
 * it away; it expires there a little before the token itself does (a tenth of its lifetime, at most
 * a minute), after which the next worker to need it refreshes it. Only the worker holding a short
 * Redis lock asks the token endpoint; the others wait for its answer, so 200 jobs starting at once
 * on a cold fleet cost one token request.
 */
export function createTokenSource(options: TokenSourceOptions): TokenSource {
  const { settings, redis, http, logger } = options;
  const log = logger.child({ component: 'oauth2', target: settings.target });
  const attempts = options.requestAttempts ?? 3;
  const backoffMs = options.backoffMs ?? 250;
  const waitForOthersMs = options.waitForOthersMs ?? 30_000;
  const { token: tokenKey, lock: lockKey } = oauth2Keys(fingerprintOf(settings));
  const key = tokenSealingKey(settings.clientSecret);
  const deleteIfSame = defineScript<[string, string]>(redis, 'delete-if-same-1');
  const unlock = deleteIfSame;
  const extendLock = defineScript<[string, string, number]>(redis, 'extend-lock-1');
  let cached: CachedToken | undefined;
  /** Tokens a target refused (most recent last): in memory only. */
  const refused: string[] = [];
  let pending: SharedRequest | undefined;
  let requests = 0;

  async function fromRedis(): Promise<CachedToken | undefined> {
    const stored = await redis.get(tokenKey);
    if (!stored) return undefined;
    const token = openToken(key, stored);
    return token && token.refreshAt > Date.now() && !refused.includes(token.value) ? { ...token, stored } : undefined;
  }

  async function obtain(signal: AbortSignal): Promise<string> {
    const giveUpAt = Date.now() + waitForOthersMs;
    for (;;) {
      const shared = await fromRedis();
      if (shared) {
        cached = shared;
        return shared.value;
      }
      const holder = randomUUID();
      if ((await redis.set(lockKey, holder, 'PX', LOCK_MS, 'NX')) === 'OK') {
        try {
          // Looked at again under the lock: the worker that held it before may have stored its
          // token (and let go) since the read above. Asking again would replace that token, which
          // the others are already using.
          const meanwhile = await fromRedis();
          if (meanwhile) {
            cached = meanwhile;
            return meanwhile.value;
          }
          const fresh = await requestWithRetries(holder, signal);
          const sealed = sealToken(key, fresh.value, fresh.refreshAt);
          // Stored only while the lock is still this worker's (renewed just before, so it cannot lapse
          // in between): once it lapsed, another worker may have asked after this one, and its token,
          // the one the target accepts if it accepts only the latest, must not be overwritten.
          if ((await extendLock(lockKey, holder, LOCK_MS)) === 1) {
            await redis.set(tokenKey, sealed, 'PX', Math.max(1_000, fresh.refreshAt - Date.now()));
            cached = { ...fresh, stored: sealed };
            return fresh.value;
          }
          log.warn('OAuth2 token lock lapsed during the token request; waiting for the token another worker requested');
        } finally {
          await unlock(lockKey, holder).catch(() => undefined);
        }
      }
      if (Date.now() > giveUpAt) {
        throw new AuthError(
          `target ${settings.target}: no OAuth2 token after waiting ${waitForOthersMs} ms for another worker's token request`,
          { retryable: true },
        );
      }
      if (!(await sleep(POLL_MS / 2 + Math.random() * POLL_MS, signal))) throw new ShutdownAbortError();
    }
  }

  function requestWithRetries(holder: string, signal: AbortSignal): Promise<ExpiringToken> {
    return requestTokenWithRetries({
      settings,
      http,
      log,
      attempts,
      backoffMs,
      signal,
      beforeRequest: async (attempt) => {
        // The lock outlives one request, not several: renewed for each further one (if it lapsed
        // anyway, the token is not stored: see obtain).
        if (attempt > 1) await extendLock(lockKey, holder, LOCK_MS).catch(() => undefined);
        requests++;
      },
      onRequest: options.onRequest,
    });
  }

  function start(): SharedRequest {
    const controller = new AbortController();
    const request: SharedRequest = { token: obtain(controller.signal), controller, waiting: 0 };
    const settled = () => {
      if (pending === request) pending = undefined;
    };
    // Settled, or abandoned by every caller: the next caller starts afresh.
    request.token.then(settled, settled);
    controller.signal.addEventListener('abort', settled, { once: true });
    return request;
  }

  /** Waits for the shared request, or until `signal` aborts; the last caller to stop waiting aborts the request. */
  async function waitFor(request: SharedRequest, signal: AbortSignal | undefined): Promise<string> {
    request.waiting++;
    try {
      return await untilAborted(request.token, signal);
    } finally {
      request.waiting--;
      if (request.waiting === 0 && signal?.aborted) request.controller.abort();
    }
  }

  return {
    async token(tokenOptions = {}) {
      if (!tokenOptions.recheck && cached && cached.refreshAt > Date.now()) return cached.value;
      if (tokenOptions.signal?.aborted) throw new ShutdownAbortError();
      pending ??= start();
      return waitFor(pending, tokenOptions.signal);
    },
    async invalidate(used) {
      if (!refused.includes(used)) {
        refused.push(used);
        if (refused.length > REFUSED_KEPT) refused.shift();
      }
      if (cached?.value !== used) return;
      const stored = cached.stored;
      cached = undefined;
      await deleteIfSame(tokenKey, stored);
      log.info('OAuth2 token refused by the target (401); dropped for every worker');
    },
    async isCurrent(used) {
      const [current, asking] = await Promise.all([fromRedis(), redis.exists(lockKey)]);
      return current?.value === used && asking === 0;
    },
    get requests() {
      return requests;
    },
  };
}

/** One token per endpoint, client, scope and audience. */
function fingerprintOf(settings: OAuth2Settings): string {
  return createHash('sha256')
    .update([settings.tokenUrl, settings.clientId, settings.scope ?? '', settings.audience ?? ''].join('\n'))
    .digest('hex')
    .slice(0, 24);
}
