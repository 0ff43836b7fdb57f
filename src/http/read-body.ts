/** A response body as kept in a result: parsed JSON or text, at most `maxBytes` of it. */
export interface CappedBody {
  /** Parsed JSON when the body is complete JSON; otherwise the (possibly cut) text; absent when empty. */
  value: unknown;
  /** Bytes the target sent. */
  bytes: number;
  /** True when only the first `maxBytes` were kept. */
  truncated: boolean;
}

/**
 * Reads a response body to its end (so the connection can be reused) while keeping only the first
 * `maxBytes`. Memory stays bounded whatever the target sends.
 */
export async function readCappedBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  contentType: string | undefined,
): Promise<CappedBody> {
  const kept: Uint8Array[] = [];
  let keptBytes = 0;
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
    if (keptBytes < maxBytes) {
      const slice = chunk.byteLength > maxBytes - keptBytes ? chunk.subarray(0, maxBytes - keptBytes) : chunk;
      kept.push(slice);
      keptBytes += slice.byteLength;
    }
  }
  const truncated = bytes > keptBytes;
  if (bytes === 0) return { value: undefined, bytes, truncated };
  const text = Buffer.concat(kept).toString('utf8');
  if (!truncated && contentType !== undefined && /\bjson\b/i.test(contentType)) {
    try {
      return { value: JSON.parse(text) as unknown, bytes, truncated };
    } catch {
      // Not the JSON it claims to be: keep the text.
    }
  }
  return { value: text, bytes, truncated };
}
