import { AuthError, ShutdownAbortError, SluiceError, errorMessage } from '../errors.js';
import type { HttpClient } from '../http/http-client.js';
import { RETRYABLE_STATUSES } from '../http/classify.js';
import { sleep } from '../support/sleep.js';
import type { Logger } from '../observability/logger.js';
import type { ExpiringToken } from './oauth2-token-seal.js';

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

export interface TokenRequestOptions {
  settings: OAuth2Settings;
  http: HttpClient;
  log: Logger;
  /** Token requests before giving up. */
  attempts: number;
  /** Base of the backoff between token requests. */
  backoffMs: number;
  /** Called before each request, with its attempt number (from 1). */
  beforeRequest: (attempt: number) => Promise<void>;
  /** Told of every token request made. */
  onRequest?: ((outcome: TokenRequestOutcome) => void) | undefined;
  /** Aborts the request and the waits between requests (ShutdownAbortError): the worker is stopping. */
  signal?: AbortSignal | undefined;
}

const DEFAULT_LIFETIME_S = 3_600;

/**
 * Asks the token endpoint (client credentials, RFC 6749 §4.4) up to `attempts` times, with
 * exponential backoff and jitter between failures that may pass; a refusal is thrown at once.
 */
export async function requestTokenWithRetries(options: TokenRequestOptions): Promise<ExpiringToken> {
  const { attempts, backoffMs, log, signal } = options;
  for (let attempt = 1; ; attempt++) {
    await options.beforeRequest(attempt);
    try {
      const token = await requestToken(options.settings, options.http, log, signal);
      options.onRequest?.('success');
      return token;
    } catch (error) {
      if (error instanceof ShutdownAbortError) throw error;
      const retryable = error instanceof AuthError && error.retryable;
      options.onRequest?.(retryable ? 'failed' : 'refused');
      if (!retryable || attempt >= attempts) throw error;
      const delay = backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random());
      log.warn({ err: error, attempt, delayMs: Math.round(delay) }, 'OAuth2 token request failed; retrying');
      if (!(await sleep(delay, signal))) throw new ShutdownAbortError();
    }
  }
}

async function requestToken(
  settings: OAuth2Settings,
  http: HttpClient,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<ExpiringToken> {
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
    response = await http.send(
      {
        method: 'POST',
        url: new URL(settings.tokenUrl),
        headers,
        body: form.toString(),
        timeouts: { connect: 5_000, headers: 15_000, total: 20_000 },
        // The client secret may be in the body: it follows no redirect. The whole answer is read (a JWT can be long).
        followRedirects: false,
        keepBodyText: true,
      },
      signal,
    );
  } catch (error) {
    if (error instanceof ShutdownAbortError) throw error;
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

/** The token endpoint's JSON object, or undefined when it sent something else. */
function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text ?? '');
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
