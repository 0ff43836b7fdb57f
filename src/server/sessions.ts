import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/client.js';
import { sessionKey } from '../redis/keys.js';
import { defineScript } from '../redis/scripts.js';
import { ROLES, type ApiTokens, type Role } from './api-tokens.js';

export interface SessionStoreOptions {
  /** Borrowed. */
  redis: RedisClient;
  tokens: ApiTokens;
  /** A session unused for this long ends. Default 1,800 s (30 min). */
  idleSeconds?: number;
  /** A session ends this long after sign-in, however busy. Default 43,200 s (12 h). */
  maxSeconds?: number;
}

export interface SessionStore {
  readonly maxSeconds: number;
  /** Opens a session for a token known to have `role`; returns its id (for the cookie, and nothing else). */
  open(token: string, role: Role): Promise<string>;
  /**
   * The role of a live session, whose idle time starts again. Undefined when there is none: unknown,
   * ended (idle, absolute limit, sign-out), or its token is no longer configured with that role.
   */
  roleOf(sessionId: string): Promise<Role | undefined>;
  /** Ends a session (sign-out). Unknown ids are ignored. */
  revoke(sessionId: string): Promise<void>;
}

/** 32 random bytes, base64url: what a session id looks like; anything else is not looked up. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Dashboard sessions in Redis, shared by every server replica. Redis holds the SHA-256 of the id as
 * the key, the role, and a fingerprint of the token keyed by the id: neither the id nor the token
 * can be read back from it. Each use checks the token is still configured with the same role, so
 * removing a token from SLUICE_API_TOKENS ends its sessions.
 */
export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const { redis, tokens } = options;
  const idleSeconds = options.idleSeconds ?? 1_800;
  const maxSeconds = options.maxSeconds ?? 43_200;
  for (const [name, value] of [
    ['idleSeconds', idleSeconds],
    ['maxSeconds', maxSeconds],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new TypeError(`sessions ${name}: expected a whole number of at least 1, received ${value}`);
  }
  const openScript = defineScript<[string, Role, string, number, number]>(redis, 'session-open-1');
  const touchScript = defineScript<[string, number]>(redis, 'session-touch-1');

  return {
    maxSeconds,
    async open(token, role) {
      const sessionId = randomBytes(32).toString('base64url');
      await openScript(sessionKey(sessionId), role, tokens.fingerprint(token, sessionId), idleSeconds * 1_000, maxSeconds * 1_000);
      return sessionId;
    },
    async roleOf(sessionId) {
      if (!SESSION_ID.test(sessionId)) return undefined;
      const found = (await touchScript(sessionKey(sessionId), idleSeconds * 1_000)) as [string, string] | null;
      if (!found) return undefined;
      const [role, fingerprint] = found;
      if (ROLES.includes(role as Role) && tokens.roleOfFingerprint(fingerprint, sessionId) === role) return role as Role;
      await redis.del(sessionKey(sessionId));
      return undefined;
    },
    async revoke(sessionId) {
      if (SESSION_ID.test(sessionId)) await redis.del(sessionKey(sessionId));
    },
  };
}
