import type { RedisClient } from '../redis/client.js';
import { ConfigError, RequestError } from '../errors.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import type { HttpClient } from '../http/http-client.js';
import type { RequestSpec } from '../http/request-spec.js';
import type { Logger } from '../observability/logger.js';
import { envNamesOf, secretIssues, type AuthConfig } from './auth-config.js';
import { createTokenSource, type TokenRequestOutcome, type TokenSource } from './oauth2-token.js';
import { hmacHeaders, standardWebhooksHeaders, standardWebhooksKey, type SignedRequest } from './request-signature.js';

export interface CredentialsOptions {
  config: SluiceConfig;
  /** Where the secrets are read from: the worker's environment, passed in by its composition root. */
  env: Record<string, string | undefined>;
  /** Borrowed: OAuth2 tokens are shared through it. */
  redis: RedisClient;
  /** Borrowed: token requests use it. */
  http: HttpClient;
  logger: Logger;
  /** Told of every OAuth2 token request this process makes, with the target's name (for metrics). */
  onTokenRequest?: (target: string, outcome: TokenRequestOutcome) => void;
}

/** A request with its credentials, and how to report that the target refused them. */
export interface Authorized {
  spec: RequestSpec;
  /** Present when a 401 may be cured by fresh credentials (OAuth2): drops the refused token. */
  refuse?: () => Promise<void>;
  /** With `refuse`: whether the token sent is still the one every worker uses (else a 401 for it says nothing of the current one). */
  isCurrent?: () => Promise<boolean>;
  /**
   * Present for a target that signs its requests: `spec` with the signature headers, for a request
   * sent at `nowMs`. Called just before each send, so every attempt carries a fresh timestamp.
   */
  sign?: (nowMs: number) => RequestSpec;
}

export interface AuthorizeOptions {
  /** The previous attempt was refused (401): take the fleet's current token, not this process's copy of it. */
  afterRefusal?: boolean;
  /** The job's abort signal: a worker that stops does not wait for a token request (ShutdownAbortError). */
  signal?: AbortSignal | undefined;
  /** The ids a signature may cover, the same for every attempt (required by targets that sign requests). */
  message?: { id: string; idempotencyKey: string };
}

export interface Credentials {
  /** Adds the target's credentials to a request (a copy; `spec` is not changed). */
  authorize(target: string | undefined, spec: RequestSpec, options?: AuthorizeOptions): Promise<Authorized>;
  /**
   * `text` with the target's secret values replaced by `[redacted]`: for what a target may echo
   * (an apiKey sent in the query comes back in Link and Location headers and next-page URLs).
   */
  scrub(target: string | undefined, text: string): string;
  /** OAuth2 token requests this process made, per target. */
  tokenRequests(): Record<string, number>;
}

/** Throws a ConfigError naming every secret the targets need and `env` lacks. */
export function assertSecrets(config: SluiceConfig, env: Record<string, string | undefined>): void {
  const missing = secretIssues(config.targets, env);
  if (missing.length > 0) throw new ConfigError('the worker environment (target auth)', missing);
}

/**
 * Credentials per target, from the worker's environment. Checked once, when the worker starts: a
 * missing variable stops it with every problem listed. The values go into request headers (or the
 * query) at send time only; jobs, results, dead letters, Redis and logs never see them.
 */
export function createCredentials(options: CredentialsOptions): Credentials {
  const { config, env } = options;
  assertSecrets(config, env);

  // Per target with auth, worked out once (authorize and scrub run on every job): its origin, and
  // the secret values a target might echo back.
  const origins = new Map<string, string>();
  const secrets = new Map<string, string[]>();
  for (const [name, target] of Object.entries(config.targets)) {
    if (!target.auth) continue;
    origins.set(name, new URL(target.baseUrl).origin);
    secrets.set(
      name,
      envNamesOf(target.auth)
        .map(([, variable]) => env[variable]!)
        .filter((value) => value.length >= 4),
    );
  }

  // Signers per target that signs its requests; each holds its key, read from the environment once.
  const signers = new Map<string, (request: SignedRequest, nowMs: number) => Record<string, string>>();
  for (const [name, target] of Object.entries(config.targets)) {
    const auth = target.auth;
    if (auth?.type === 'hmac') {
      const secret = env[auth.secretFromEnv]!;
      signers.set(name, (request, nowMs) => hmacHeaders(auth, secret, request, nowMs));
    } else if (auth?.type === 'standardWebhooks') {
      // assertSecrets checked that it is one.
      const key = standardWebhooksKey(env[auth.secretFromEnv]!)!;
      signers.set(name, (request, nowMs) => standardWebhooksHeaders(key, request, nowMs));
    }
  }

  const tokenSources = new Map<string, TokenSource>();
  for (const [name, target] of Object.entries(config.targets)) {
    const auth = target.auth;
    if (auth?.type !== 'oauth2ClientCredentials') continue;
    tokenSources.set(
      name,
      createTokenSource({
        settings: {
          target: name,
          tokenUrl: auth.tokenUrl,
          clientId: env[auth.clientIdFromEnv]!,
          clientSecret: env[auth.clientSecretFromEnv]!,
          scope: auth.scope,
          audience: auth.audience,
          clientAuth: auth.clientAuth,
        },
        redis: options.redis,
        http: options.http,
        logger: options.logger,
        ...(options.onTokenRequest ? { onRequest: (outcome: TokenRequestOutcome) => options.onTokenRequest!(name, outcome) } : {}),
      }),
    );
  }

  async function authorize(
    targetName: string | undefined,
    spec: RequestSpec,
    authorizeOptions: AuthorizeOptions = {},
  ): Promise<Authorized> {
    const auth: AuthConfig | undefined = targetName ? config.targets[targetName]?.auth : undefined;
    // Credentials go to the target's own origin only: not to an absolute URL on another host, nor
    // to a next page or child operation that points elsewhere (or to plain http on the same host).
    if (!auth || spec.url.origin !== origins.get(targetName!)) return { spec };
    const headers = { ...spec.headers };
    switch (auth.type) {
      case 'apiKey': {
        const value = env[auth.valueFromEnv]!;
        const name = auth.name.toLowerCase();
        if (auth.in === 'header')
          return { spec: { ...spec, headers: { ...headers, [name]: value }, secretHeaders: [...(spec.secretHeaders ?? []), name] } };
        const url = new URL(spec.url);
        url.searchParams.set(auth.name, value);
        return { spec: { ...spec, url } };
      }
      case 'bearer':
        return { spec: { ...spec, headers: { ...headers, authorization: `Bearer ${env[auth.tokenFromEnv]!}` } } };
      case 'basic': {
        const pair = `${env[auth.usernameFromEnv]!}:${env[auth.passwordFromEnv]!}`;
        return { spec: { ...spec, headers: { ...headers, authorization: `Basic ${Buffer.from(pair).toString('base64')}` } } };
      }
      case 'oauth2ClientCredentials': {
        const source = tokenSources.get(targetName!)!;
        const token = await source.token({ recheck: authorizeOptions.afterRefusal === true, signal: authorizeOptions.signal });
        return {
          spec: { ...spec, headers: { ...headers, authorization: `Bearer ${token}` } },
          refuse: () => source.invalidate(token),
          isCurrent: () => source.isCurrent(token),
        };
      }
      case 'hmac':
      case 'standardWebhooks': {
        const message = authorizeOptions.message;
        if (!message) throw new RequestError(`target ${targetName!} signs its requests: authorize() needs the message ids`);
        // Refused at enqueue (parse-operation.ts); a streamed body is not known before its headers go.
        if (spec.upload)
          throw new RequestError(`target ${targetName!} signs its requests and cannot sign a streamed (file or multipart) body`);
        const signer = signers.get(targetName!)!;
        const request = { method: spec.method, url: spec.url, body: spec.body, ...message };
        return {
          spec,
          sign(nowMs) {
            const signature = signer(request, nowMs);
            // Bound to this target and this request: not sent on to another origin after a redirect.
            const secretHeaders = [...(spec.secretHeaders ?? []), ...Object.keys(signature)];
            return { ...spec, headers: { ...headers, ...signature }, secretHeaders };
          },
        };
      }
    }
  }

  return {
    authorize,
    scrub(targetName, text) {
      let out = text;
      for (const secret of (targetName ? secrets.get(targetName) : undefined) ?? []) {
        out = out.split(secret).join('[redacted]').split(encodeURIComponent(secret)).join('[redacted]');
      }
      return out;
    },
    tokenRequests: () => Object.fromEntries([...tokenSources].map(([name, source]) => [name, source.requests])),
  };
}
