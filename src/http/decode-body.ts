import { Readable, pipeline, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { ContentDecodingError } from '../errors.js';

/** What the client asks for when the operation does not set its own `accept-encoding`. */
export const ACCEPT_ENCODING = 'gzip, br';

type Coding = 'gzip' | 'deflate' | 'br';

const CODINGS: Readonly<Record<string, Coding>> = { gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate', br: 'br' };

/**
 * The codings to undo, last applied first (`content-encoding: deflate, br` was deflated, then
 * brotli-compressed). Undefined when there is nothing to undo, or when one of them is unknown
 * (`zstd`, `compress`): such a body is read as it was sent.
 */
export function codingsToUndo(contentEncoding: string | undefined): Coding[] | undefined {
  if (contentEncoding === undefined) return undefined;
  const names = contentEncoding
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '' && name !== 'identity');
  if (names.length === 0) return undefined;
  const codings: Coding[] = [];
  for (const name of names) {
    const coding = Object.hasOwn(CODINGS, name) ? CODINGS[name] : undefined;
    if (coding === undefined) return undefined;
    codings.push(coding);
  }
  return codings.reverse();
}

/**
 * The body with its `content-encoding` undone by node:zlib streams. Backpressure holds through the
 * chain, so a small compressed body that inflates to gigabytes is decoded only as far as the
 * reader reads it. Corrupt or cut compressed data fails the iteration with a ContentDecodingError;
 * a failure of the body itself (a reset connection, a timeout) is passed on as it is.
 */
export function decodeBody(body: AsyncIterable<Uint8Array>, contentEncoding: string | undefined): AsyncIterable<Uint8Array> {
  const codings = codingsToUndo(contentEncoding);
  return codings ? decoded(body, codings, contentEncoding!) : body;
}

async function* decoded(body: AsyncIterable<Uint8Array>, codings: Coding[], contentEncoding: string): AsyncGenerator<Uint8Array> {
  const source = body[Symbol.asyncIterator]();
  // An empty body (HEAD, 204, 304) has nothing to decode; a decoder would call it cut short.
  let first: Uint8Array | undefined;
  while (first === undefined) {
    const next = await source.next();
    if (next.done) return;
    if (next.value.byteLength > 0) first = next.value;
  }
  const head = first;

  let sourceFailed = false;
  let decoderError: Error | undefined;
  async function* raw(): AsyncGenerator<Uint8Array> {
    try {
      yield head;
      for (let next = await source.next(); !next.done; next = await source.next()) yield next.value;
    } catch (error) {
      // Recorded before the pipeline passes the error on to the decoders.
      sourceFailed = true;
      throw error;
    } finally {
      await source.return?.();
    }
  }

  const decoders = codings.map((coding, index) => createDecoder(coding, index === 0 ? head : undefined));
  for (const decoder of decoders) {
    decoder.on('error', (error) => {
      if (!sourceFailed) decoderError ??= error;
    });
  }
  // Errors surface through the iteration below; the callback only keeps pipeline from throwing.
  pipeline([Readable.from(raw(), { objectMode: false }), ...decoders], () => undefined);
  const output = decoders.at(-1)!;
  try {
    for await (const chunk of output) yield chunk as Uint8Array;
  } catch (error) {
    if (decoderError) throw new ContentDecodingError(contentEncoding, decoderError);
    throw error;
  }
}

function createDecoder(coding: Coding, first: Uint8Array | undefined): Transform {
  // Strict: data cut short (no final block, no gzip trailer) is an error, not a shorter body.
  switch (coding) {
    case 'gzip':
      return zlib.createGunzip();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'deflate':
      // `deflate` should be zlib-wrapped, but some servers send raw deflate; the first byte of a
      // zlib header names method 8 in its low nibble (the same test as undici's fetch). Only the
      // outermost coding can be sniffed; an inner deflate is taken to be zlib-wrapped.
      return first === undefined || (first[0]! & 0x0f) === 0x08 ? zlib.createInflate() : zlib.createInflateRaw();
  }
}
