import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError, type Issue } from '../errors.js';

/**
 * API tokens and their roles. `enqueue` may enqueue and read, `read` may only read, `admin` may do
 * everything (replay and delete dead letters, change limits). Tokens are kept as SHA-256 digests and
 * compared in constant time; the plain text is never stored past parsing, nor logged.
 */
export type Role = 'read' | 'enqueue' | 'admin';

export const ROLES: readonly Role[] = ['read', 'enqueue', 'admin'];

/** What each role may do, by the role a route requires. */
const GRANTS: Record<Role, readonly Role[]> = {
  read: ['read'],
  enqueue: ['read', 'enqueue'],
  admin: ['read', 'enqueue', 'admin'],
};

export function roleAllows(held: Role, required: Role): boolean {
  return GRANTS[held].includes(required);
}

export interface ApiTokens {
  /** The role of a presented token, or undefined when it matches none. Takes the same time either way. */
  roleOf(presented: string): Role | undefined;
  /**
   * A fingerprint of a token for a session to keep: an HMAC of the token's digest keyed by the
   * session's id. Without the id (which only the browser holds) it tells nothing about the token.
   */
  fingerprint(token: string, sessionId: string): string;
  /** The role of the configured token with this fingerprint under `sessionId`, if it is still configured. */
  roleOfFingerprint(fingerprint: string, sessionId: string): Role | undefined;
  readonly count: number;
}

const MIN_TOKEN_LENGTH = 16;

/**
 * Parses `SLUICE_API_TOKENS`: `token:role,token:role`. Every problem is listed at once, naming the
 * entry by position (never by its token). Tokens must be at least 16 characters.
 */
export function parseApiTokens(text: string | undefined, source = 'SLUICE_API_TOKENS'): ApiTokens {
  const issues: Issue[] = [];
  const entries: { digest: Buffer; role: Role }[] = [];
  const seen = new Set<string>();
  const parts = (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) {
    issues.push({
      path: source,
      message: 'no API tokens: set it to token:role pairs, e.g. "<random 32 chars>:admin" (roles: read, enqueue, admin)',
    });
  }
  parts.forEach((part, index) => {
    const where = `${source} entry ${index + 1}`;
    const colon = part.lastIndexOf(':');
    if (colon <= 0) {
      issues.push({ path: where, message: 'expected token:role' });
      return;
    }
    const token = part.slice(0, colon);
    const role = part.slice(colon + 1) as Role;
    if (!ROLES.includes(role))
      issues.push({ path: where, message: `unknown role ${JSON.stringify(role)}: expected read, enqueue or admin` });
    if (token.length < MIN_TOKEN_LENGTH)
      issues.push({ path: where, message: `token too short (${token.length} characters; at least ${MIN_TOKEN_LENGTH})` });
    const digest = sha256(token);
    const hex = digest.toString('hex');
    if (seen.has(hex)) issues.push({ path: where, message: 'the same token is listed twice' });
    seen.add(hex);
    entries.push({ digest, role });
  });
  if (issues.length) throw new ConfigError('the environment', issues);

  /** Every entry is compared, so the time taken does not tell which (or whether one) matched. */
  function roleOfDigest(digest: Buffer, keyOf: (entry: { digest: Buffer }) => Buffer): Role | undefined {
    let found: Role | undefined;
    for (const entry of entries) {
      if (timingSafeEqual(keyOf(entry), digest) && found === undefined) found = entry.role;
    }
    return found;
  }

  return {
    count: entries.length,
    roleOf: (presented) => roleOfDigest(sha256(presented), (entry) => entry.digest),
    fingerprint: (token, sessionId) => keyed(sha256(token), sessionId).toString('hex'),
    roleOfFingerprint(fingerprint, sessionId) {
      const given = Buffer.from(fingerprint, 'hex');
      if (given.length !== 32) return undefined;
      return roleOfDigest(given, (entry) => keyed(entry.digest, sessionId));
    },
  };
}

function keyed(digest: Buffer, key: string): Buffer {
  return createHmac('sha256', key).update(digest).digest();
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
