import { basename } from 'node:path';
import { RequestError } from '../errors.js';
import type { Operation } from '../operation/schema.js';
import type { DownloadSpec } from './download.js';
import { mediaTypeOf } from './media-types.js';
import { fileNameForJob } from './safe-path.js';
import type { UploadSpec } from './upload-body.js';

/** What building a request with files needs from the worker: its configured directories and the job's id. */
export interface RequestFiles {
  uploadDir?: string | undefined;
  downloadDir?: string | undefined;
  /** Names a download that gives no `path`. */
  jobId: string;
}

/**
 * The file parts of a request: an upload body (`multipart`, `bodyFile`) described by names, opened
 * at send time, and where an accepted response's body is written (`download`). Sets the upload's
 * headers in `headers`: a raw file's content type (the operation's, else by extension), none for
 * multipart (undici writes it with its boundary), and never a given `content-length` (the body's
 * size decides it).
 */
export function fileTransfersOf(
  operation: Operation,
  headers: Record<string, string>,
  files: RequestFiles | undefined,
): { upload?: UploadSpec; download?: DownloadSpec } {
  const out: { upload?: UploadSpec; download?: DownloadSpec } = {};
  const uploadDir = files?.uploadDir;
  if (operation.bodyFile !== undefined) {
    if (!uploadDir) throw new RequestError('bodyFile: files.uploadDir is not configured on this worker');
    headers['content-type'] ??= mediaTypeOf(operation.bodyFile);
    delete headers['content-length'];
    out.upload = { kind: 'file', uploadDir, path: operation.bodyFile };
  } else if (operation.multipart !== undefined) {
    const parts = operation.multipart.map((part) =>
      part.file === undefined
        ? { name: part.name, value: part.value ?? '' }
        : {
            name: part.name,
            file: part.file,
            filename: part.filename ?? basename(part.file),
            contentType: part.contentType ?? mediaTypeOf(part.file),
          },
    );
    if (!uploadDir && parts.some((part) => 'file' in part))
      throw new RequestError('multipart: files.uploadDir is not configured on this worker');
    delete headers['content-type'];
    delete headers['content-length'];
    out.upload = { kind: 'multipart', uploadDir, parts };
  }
  if (operation.download !== undefined) {
    const downloadDir = files?.downloadDir;
    if (!downloadDir || !files) throw new RequestError('download: files.downloadDir is not configured on this worker');
    out.download = {
      downloadDir,
      path: operation.download.path ?? fileNameForJob(files.jobId),
      ...(operation.download.maxBytes !== undefined ? { maxBytes: operation.download.maxBytes } : {}),
      ...(operation.expect?.status !== undefined ? { acceptStatus: operation.expect.status } : {}),
    };
  }
  return out;
}
