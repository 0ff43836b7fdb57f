/**
 * Request bodies sent compressed (`Content-Encoding: gzip`, `deflate` or `br`), decoded as they
 * stream in. The body limit holds for the decoded bytes too: a small body that inflates past it is
 * a 413 as soon as it does, never held in memory.
 */
import { Transform, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, sendsBody } from './api-errors.js';

const DECODERS = { gzip: createGunzip, deflate: createInflate, br: createBrotliDecompress } as const;

export type BodyEncoding = keyof typeof DECODERS;

/** RFC 9110 §8.4.1.3: a recipient should take `x-gzip` as `gzip`. */
const ALIASES: Readonly<Record<string, string>> = { 'x-gzip': 'gzip' };

/**
 * The coding a `Content-Encoding` header asks for: null for none (or `identity`), else one the
 * route accepts; anything else (another coding, or several stacked) is a 415 naming those it takes.
 */
export function requestCoding(header: string | undefined, accepted: readonly BodyEncoding[], where: string): BodyEncoding | null {
  const sent = (header ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  const codings = sent.map((coding) => ALIASES[coding] ?? coding);
  if (codings.length === 0) return null;
  if (codings.length === 1 && (accepted as readonly string[]).includes(codings[0]!)) return codings[0] as BodyEncoding;
  const takes = accepted.length > 0 ? `Content-Encoding ${accepted.join(', ')} or none` : 'no Content-Encoding';
  // RFC 7694: a 415 for an unsupported coding says in Accept-Encoding which ones are.
  throw new ApiError(
    415,
    'UNSUPPORTED_CONTENT_ENCODING',
    `Content-Encoding ${sent.join(', ')} is not supported: ${where} takes ${takes}`,
    undefined,
    {
      'accept-encoding': accepted.length > 0 ? accepted.join(', ') : 'identity',
    },
  );
}

/** The stream fastify's body parsers read, with the compressed bytes counted for its Content-Length check. */
type DecodedBody = Transform & { receivedEncodedLength: number };

/** A fastify `preParsing` hook: decodes an accepted Content-Encoding; refuses others (415). */
export function bodyDecoder(accepted: readonly BodyEncoding[], limitBytes: number) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: Readable): Promise<Readable> => {
    if (!sendsBody(request)) return payload;
    const coding = requestCoding(
      request.headers['content-encoding'],
      accepted,
      `${request.method} ${request.routeOptions.url ?? request.url}`,
    );
    return coding === null ? payload : decoded(payload, coding, limitBytes, reply);
  };
}

function decoded(payload: Readable, coding: BodyEncoding, limitBytes: number, reply: FastifyReply): DecodedBody {
  const decoder = DECODERS[coding]();
  let decodedBytes = 0;
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      decodedBytes += chunk.length;
      if (decodedBytes <= limitBytes) return callback(null, chunk);
      fail(
        new ApiError(
          413,
          'BODY_TOO_LARGE',
          `the body decompresses to more than ${limitBytes} bytes (SLUICE_API_MAX_BODY_BYTES counts the decompressed body): send fewer operations per request`,
        ),
      );
      callback();
    },
  }) as DecodedBody;
  out.receivedEncodedLength = 0;
  const count = (chunk: Buffer) => {
    out.receivedEncodedLength += chunk.length;
  };
  // Nothing more is decoded; the request's own stream is left alone, so the answer can still be sent.
  const stop = () => {
    payload.off('data', count);
    payload.unpipe(decoder);
    decoder.unpipe(out);
    decoder.destroy();
  };
  // Only while the body is being read is there a reader to tell (as in timeouts.ts bodyDeadline).
  const fail = (error: Error) => {
    stop();
    out.destroy(out.listenerCount('error') > 0 ? error : undefined);
  };
  decoder.on('error', (error) =>
    fail(new ApiError(400, 'BAD_CONTENT_ENCODING', `the body is not valid ${coding} (Content-Encoding: ${coding}): ${error.message}`)),
  );
  payload.on('error', fail);
  out.once('close', stop);
  // Answered (maybe without reading the body): what still arrives is dropped, not decoded.
  reply.raw.once('close', () => {
    stop();
    payload.resume();
  });
  payload.on('data', count);
  payload.pipe(decoder).pipe(out);
  return out;
}
