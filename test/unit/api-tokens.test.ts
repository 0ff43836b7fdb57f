import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parseApiTokens, roleAllows } from '../../src/server/api-tokens.js';

describe('SLUICE_API_TOKENS', () => {
  it('maps each token to its role; unknown tokens have none', () => {
    const tokens = parseApiTokens(' admin-0123456789abcdef:admin , reader-0123456789abcdef:read,feeder:with:colons-0123:enqueue ');
    expect(tokens.count).toBe(3);
    expect(tokens.roleOf('admin-0123456789abcdef')).toBe('admin');
    expect(tokens.roleOf('reader-0123456789abcdef')).toBe('read');
    expect(tokens.roleOf('feeder:with:colons-0123')).toBe('enqueue');
    expect(tokens.roleOf('admin-0123456789abcdeF')).toBeUndefined();
    expect(tokens.roleOf('')).toBeUndefined();
  });

  it('lists every problem by entry position, never echoing a token', () => {
    let error: unknown;
    try {
      parseApiTokens(
        'tiny1:admin,no-role-here-0123456789,good-token-0123456789:root,good-token-0123456789:read,good-token-0123456789:read',
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { issues, message } = error as ConfigError;
    expect(issues).toEqual([
      { path: 'SLUICE_API_TOKENS entry 1', message: 'token too short (5 characters; at least 16)' },
      { path: 'SLUICE_API_TOKENS entry 2', message: 'expected token:role' },
      { path: 'SLUICE_API_TOKENS entry 3', message: 'unknown role "root": expected read, enqueue or admin' },
      { path: 'SLUICE_API_TOKENS entry 4', message: 'the same token is listed twice' },
      { path: 'SLUICE_API_TOKENS entry 5', message: 'the same token is listed twice' },
    ]);
    expect(message).not.toContain('good-token');
    expect(message).not.toContain('tiny1');
  });

  it('refuses to run without any token', () => {
    expect(() => parseApiTokens(undefined)).toThrow(/no API tokens/);
    expect(() => parseApiTokens(' , ')).toThrow(/no API tokens/);
  });

  it('fingerprints a token for a session: keyed by the session id, matched only by a configured token under that id', () => {
    const tokens = parseApiTokens('first-token-0123456789:admin,second-token-0123456789:read');
    const id = 'a'.repeat(43);
    const fingerprint = tokens.fingerprint('second-token-0123456789', id);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint).not.toBe(tokens.fingerprint('second-token-0123456789', 'b'.repeat(43)));
    expect(tokens.roleOfFingerprint(fingerprint, id)).toBe('read');
    expect(tokens.roleOfFingerprint(fingerprint, 'b'.repeat(43))).toBeUndefined();
    expect(tokens.roleOfFingerprint(tokens.fingerprint('not-configured-0123456789', id), id)).toBeUndefined();
    expect(tokens.roleOfFingerprint('not hex', id)).toBeUndefined();
    // Another process with the same tokens recognises it; one without that token does not.
    expect(parseApiTokens('second-token-0123456789:read').roleOfFingerprint(fingerprint, id)).toBe('read');
    expect(parseApiTokens('first-token-0123456789:admin').roleOfFingerprint(fingerprint, id)).toBeUndefined();
  });

  it('admin can do everything, enqueue can also read, read only reads', () => {
    expect(roleAllows('admin', 'admin') && roleAllows('admin', 'enqueue') && roleAllows('admin', 'read')).toBe(true);
    expect(roleAllows('enqueue', 'read') && roleAllows('enqueue', 'enqueue')).toBe(true);
    expect(roleAllows('enqueue', 'admin')).toBe(false);
    expect(roleAllows('read', 'enqueue') || roleAllows('read', 'admin')).toBe(false);
  });
});
