import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A token as the fleet shares it: the access token and when to stop using it. */
export interface ExpiringToken {
  value: string;
  /** When to stop using it (some time before it expires). */
  refreshAt: number;
}

/** The AES-256-GCM key a target's token is sealed under in Redis, derived from its client secret. */
export function tokenSealingKey(clientSecret: string): Buffer {
  return createHash('sha256').update(`sluice oauth2 token\n${clientSecret}`).digest();
}

/** The token encrypted under `key`, as stored in Redis: IV, auth tag and ciphertext, in Base64. */
export function sealToken(key: Buffer, value: string, refreshAt: number): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify({ value, refreshAt }), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** What `sealToken` stored, or undefined when it cannot be opened under `key`. */
export function openToken(key: Buffer, stored: string): ExpiringToken | undefined {
  try {
    const raw = Buffer.from(stored, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    const { value, refreshAt } = JSON.parse(text) as { value: string; refreshAt: number };
    return { value, refreshAt };
  } catch {
    // Sealed under another secret (it was rotated): treat as absent; the token source then replaces it.
    return undefined;
  }
}
