import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AuthError, SluiceError, errorMessage } from '../errors.js';
import type { HttpClient } from '../http/http-client.js';
import { RETRYABLE_STATUSES } from '../http/classify.js';
import { sleep } from '../support/sleep.js';
import type { Logger } from '../observability/logger.js';
import { defineScript } from '../redis/scripts.js';
import { oauth2Keys } from '../redis/keys.js';

export interface OAuth2Settings {
  /** The target's name, for messages and logs. */
  target: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string | undefined;
  audience?: string | undefined;
  clientAuth: 'basic' | 'body';
}

/** How one token request ended: a token; a failure that may pass (network, 5xx, 429); or a refusal that will not (4xx, no access_token). */
export type TokenRequestOutcome = 'success' | 'failed' | 'refused';

export interface TokenSourceOptions {
  settings: OAuth2Settings;
  /** Borrowed client: the token is shared by every worker through it. */
  redis: Redis;
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
   * replaced the token this process still holds.
   */
  token(options?: { recheck?: boolean }): Promise<string>;
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

interface CachedToken {
  value: string;
  /** When to stop using it (some time before it expires). */
  refreshAt: number;
  /** The ciphertext it is stored under in Redis, to invalidate exactly that one. */
  stored: string;
}

/** Longer than one token request (its total timeout is 20 s); renewed before each further one. */
const LOCK_MS = 30_000;
const POLL_MS = 100;
const DEFAULT_LIFETIME_S = 3_600;
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
  const fingerprint = createHash('sha256')
    .update([settings.tokenUrl, settings.clientId, settings.scope ?? '', settings.audience ?? ''].join('\n'))
    .digest('hex')
    .slice(0, 24);
  const { token: tokenKey, lock: lockKey } = oauth2Keys(fingerprint);
  const key = createHash('sha256').update(`sluice oauth2 token\n${settings.clientSecret}`).digest();
  const deleteIfSame = defineScript<[string, string]>(redis, 'delete-if-same-1');
  const unlock = deleteIfSame;
  const extendLock = defineScript<[string, string, number]>(redis, 'extend-lock-1');
  let cached: CachedToken | undefined;
  /** Tokens a target refused (most recent last): in memory only. */
  const refused: string[] = [];
  let pending: Promise<string> | undefined;
  let requests = 0;

  function seal(value: string, refreshAt: number): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify({ value, refreshAt }), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  function open(stored: string): CachedToken | undefined {
    try {
      const raw = Buffer.from(stored, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      const { value, refreshAt } = JSON.parse(text) as { value: string; refreshAt: number };
      return { value, refreshAt, stored };
    } catch {
      // Sealed under another secret (it was rotated): treat as absent; it is replaced below.
      return undefined;
    }
  }

  async function fromRedis(): Promise<CachedToken | undefined> {
    const stored = await redis.get(tokenKey);
    const token = stored ? open(stored) : undefined;
    return token && token.refreshAt > Date.now() && !refused.includes(token.value) ? token : undefined;
  }

  async function obtain(): Promise<string> {
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
          const fresh = await requestWithRetries(holder);
          const sealed = seal(fresh.value, fresh.refreshAt);
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
      await sleep(POLL_MS / 2 + Math.random() * POLL_MS);
    }
  }

  async function requestWithRetries(holder: string): Promise<{ value: string; refreshAt: number }> {
    for (let attempt = 1; ; attempt++) {
      // The lock outlives one request, not several: renewed for each further one (if it lapsed
      // anyway, the token is not stored: see obtain).
      if (attempt > 1) await extendLock(lockKey, holder, LOCK_MS).catch(() => undefined);
      try {
        const token = await requestToken();
        options.onRequest?.('success');
        return token;
      } catch (error) {
        const retryable = error instanceof AuthError && error.retryable;
        options.onRequest?.(retryable ? 'failed' : 'refused');
        if (!retryable || attempt >= attempts) throw error;
        const delay = backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random());
        log.warn({ err: error, attempt, delayMs: Math.round(delay) }, 'OAuth2 token request failed; retrying');
        await sleep(delay);
      }
    }
  }

  async function requestToken(): Promise<{ value: string; refreshAt: number }> {
    requests++;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (settings.scope) form.set('scope', settings.scope);
    if (settings.audience) form.set('audience', settings.audience);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (settings.clientAuth === 'basic') {
      // RFC 6749 §2.3.1: both parts form-encoded before Base64.
      const user = encodeURIComponent(settings.clientId);
      const password = encodeURIComponent(settings.clientSecret);
      headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    } else {
      form.set('client_id', settings.clientId);
      form.set('client_secret', settings.clientSecret);
    }
    const where = `target ${settings.target}: OAuth2 token request to ${new URL(settings.tokenUrl).origin}${new URL(settings.tokenUrl).pathname}`;
    let response;
    try {
      response = await http.send({
        method: 'POST',
        url: new URL(settings.tokenUrl),
        headers,
        body: form.toString(),
        timeouts: { connect: 5_000, headers: 15_000, total: 20_000 },
        // The client secret may be in the body: it follows no redirect. The whole answer is read (a JWT can be long).
        followRedirects: false,
        keepBodyText: true,
      });
    } catch (error) {
      const retryable = !(error instanceof SluiceError) || !['REQUEST_INVALID', 'ADDRESS_REFUSED'].includes(error.code);
      throw new AuthError(`${where} failed: ${errorMessage(error)}`, { retryable, cause: error });
    }
    const body = parseJson(response.body.text);
    if (response.status < 200 || response.status >= 300) {
      // The OAuth2 error fields only: the body could echo what we sent.
      const reason =
        typeof body?.['error'] === 'string'
          ? `${body['error']}${typeof body['error_description'] === 'string' ? ` (${body['error_description'].slice(0, 200)})` : ''}`
          : 'no OAuth2 error given';
      throw new AuthError(`${where} answered HTTP ${response.status}: ${reason}`, { retryable: RETRYABLE_STATUSES.has(response.status) });
    }
    const value = body?.['access_token'];
    if (typeof value !== 'string' || value === '') {
      throw new AuthError(`${where} answered HTTP ${response.status} without an access_token`, { retryable: false });
    }
    const expiresIn = typeof body?.['expires_in'] === 'number' && body['expires_in'] > 0 ? body['expires_in'] : DEFAULT_LIFETIME_S;
    const lifetimeMs = expiresIn * 1_000;
    log.info({ expiresInS: expiresIn }, 'OAuth2 token obtained');
    return { value, refreshAt: Date.now() + lifetimeMs - Math.min(60_000, lifetimeMs / 10) };
  }

  return {
    async token(tokenOptions = {}) {
      if (!tokenOptions.recheck && cached && cached.refreshAt > Date.now()) return cached.value;
      pending ??= obtain().finally(() => {
        pending = undefined;
      });
      return pending;
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

/** The token endpoint's JSON object, or undefined when it sent something else. */
function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text ?? '');
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
