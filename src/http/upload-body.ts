import { openAsBlob } from 'node:fs';
import { FormData } from 'undici';
import { FileAccessError, RequestError, errorMessage } from '../errors.js';
import { resolveUploadFile } from './safe-path.js';

/**
 * A request body read from files under files.uploadDir. The spec holds only names; the files are
 * opened by `openUploadBody` each time the request is dispatched — every attempt and every 307/308
 * redirect — because a streamed body cannot be replayed.
 */
export type UploadSpec =
  { kind: 'file'; uploadDir: string; path: string } | { kind: 'multipart'; uploadDir: string | undefined; parts: UploadPart[] };

export type UploadPart = { name: string; value: string } | { name: string; file: string; filename: string; contentType: string };

/**
 * The body to dispatch: a file-backed Blob (`fs.openAsBlob`) for a raw file, or undici's FormData
 * holding such Blobs for multipart. Both have a known size, so undici sends `content-length` (the
 * multipart length is the parts' headers plus the files' sizes) and streams the files from disk in
 * chunks: nothing is read whole into memory. A file changed while it is sent fails the attempt
 * (Node refuses to read a file-backed Blob whose file changed), and the next attempt reads it anew.
 */
export async function openUploadBody(upload: UploadSpec): Promise<Blob | FormData> {
  if (upload.kind === 'file') return openFile(upload.uploadDir, upload.path, '');
  const form = new FormData();
  for (const part of upload.parts) {
    if ('value' in part) {
      form.append(part.name, part.value);
      continue;
    }
    // fileConfigIssues refuses a file part without files.uploadDir before an operation gets here.
    if (upload.uploadDir === undefined) throw new RequestError('multipart file part without files.uploadDir');
    form.append(part.name, await openFile(upload.uploadDir, part.file, part.contentType), part.filename);
  }
  return form;
}

async function openFile(uploadDir: string, path: string, type: string): Promise<Blob> {
  const file = await resolveUploadFile(uploadDir, path);
  try {
    return await openAsBlob(file.realPath, { type });
  } catch (error) {
    throw new FileAccessError(`cannot open upload file ${JSON.stringify(path)}: ${errorMessage(error)}`, error);
  }
}
