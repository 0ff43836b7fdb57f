import { createHash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { ResponseBody } from './dispatched-response.js';
import { ContentDecodingError, FileAccessError, errorMessage } from '../errors.js';
import { decodeBody } from './decode-body.js';
import type { BodyProblem, CappedBody } from './read-body.js';
import type { DownloadPaths } from './safe-path.js';

/** An operation's `download`, resolved against the worker's config. */
export interface DownloadSpec {
  /** files.downloadDir (absolute). */
  downloadDir: string;
  /** Relative to downloadDir. */
  path: string;
  /** Largest body written, in decoded bytes. Default: no bound. */
  maxBytes?: number;
  /** Statuses whose body is downloaded: the operation's expect.status (default any 2xx). Others are read as usual. */
  acceptStatus?: number[];
}

/** A body written to its file: the path as configured, its decoded size and SHA-256 (hex). */
export interface DownloadedFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** The body as the result sees it (no value; a problem when it was not written), and the file when it was. */
export interface SavedDownload {
  body: CappedBody;
  file?: DownloadedFile;
}

/** Stops the copy at download.maxBytes; turned into a RESPONSE_TOO_LARGE problem. */
class TooLarge extends Error {}

/**
 * Streams a response body to `paths.tempPath` — content-encoding undone (decode-body.ts), hashed
 * as it goes — then renames it onto its final path, so a reader never sees a partial file.
 * Nothing more is read until a chunk is written, so memory stays flat whatever the size. A body
 * past `maxBytes` or one that cannot be decoded is a problem (the target answered; the attempt is
 * not retried); a broken connection, a timeout or a disk error is thrown. Either way the temporary
 * file is removed and the body destroyed.
 */
export async function saveDownload(
  body: ResponseBody,
  paths: DownloadPaths,
  options: { contentEncoding?: string | undefined; maxBytes?: number | undefined } = {},
): Promise<SavedDownload> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const hash = createHash('sha256');
  let bytes = 0;
  // Each write is awaited before the next chunk is read: that is the backpressure, and it tells a
  // failing disk (FileAccessError, retried) from a failing body (passed on as it is) for certain.
  const onFile = async <T>(what: string, action: () => Promise<T>): Promise<T> => {
    try {
      return await action();
    } catch (error) {
      throw new FileAccessError(`cannot ${what} download ${paths.path}: ${errorMessage(error)}`, error);
    }
  };
  let file: FileHandle | undefined;
  try {
    // `wx`: the random temporary name is ours alone.
    const handle = (file = await onFile('create', () => open(paths.tempPath, 'wx')));
    for await (const chunk of decodeBody(body, options.contentEncoding)) {
      bytes += chunk.byteLength;
      if (bytes > maxBytes) throw new TooLarge();
      hash.update(chunk);
      await onFile('write', () => writeAll(handle, chunk));
    }
    // On disk before the rename makes it visible under its final name.
    await onFile('write', async () => {
      await handle.sync();
      file = undefined;
      await handle.close();
    });
    await onFile('rename', () => rename(paths.tempPath, paths.realPath));
  } catch (error) {
    body.destroy();
    await file?.close().catch(() => undefined);
    await rm(paths.tempPath, { force: true });
    if (error instanceof TooLarge) {
      return unwritten(bytes, {
        code: 'RESPONSE_TOO_LARGE',
        message: `response body is larger than download.maxBytes (${maxBytes} bytes, decoded); the download was stopped`,
      });
    }
    if (error instanceof ContentDecodingError) return unwritten(bytes, { code: 'BAD_ENCODING', message: error.message });
    throw error;
  }
  return { body: { value: undefined, bytes, truncated: false }, file: { path: paths.path, bytes, sha256: hash.digest('hex') } };
}

async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength;) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

function unwritten(bytes: number, problem: BodyProblem): SavedDownload {
  return { body: { value: undefined, bytes, truncated: true, problem } };
}
