import { randomBytes } from 'node:crypto';
import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { join, relative, resolve, sep, isAbsolute } from 'node:path';
import { FileAccessError, RequestError, errorMessage } from '../errors.js';
import { relativePathProblem } from '../operation/file-fields.js';

/**
 * Where an operation's relative file path really leads, checked when the file is used (the
 * operation's schema checked only its shape). The path is resolved against its configured
 * directory and every symbolic link on the way is followed: the real path must stay inside the
 * directory's real path, so a link pointing out of it is refused. (A local user who can swap links
 * inside the directory between this check and the open is outside what this guards against.)
 */

/** An upload file that exists, is a regular file and lies inside files.uploadDir. */
export interface UploadFile {
  /** Its real path (links resolved). */
  realPath: string;
  size: number;
}

/** Resolves `path` under `uploadDir`: a RequestError (never retried) when it is missing or leads outside. */
export async function resolveUploadFile(uploadDir: string, path: string): Promise<UploadFile> {
  const problem = relativePathProblem(path);
  if (problem) throw new RequestError(`upload file: ${problem}`);
  const root = await realRoot(uploadDir, 'files.uploadDir');
  let real: string;
  try {
    real = await realpath(resolve(root, path));
  } catch (error) {
    if (isMissing(error))
      throw new RequestError(`upload file ${JSON.stringify(path)} does not exist in files.uploadDir (${uploadDir})`, error);
    throw new FileAccessError(
      `cannot read upload file ${JSON.stringify(path)} in files.uploadDir (${uploadDir}): ${errorMessage(error)}`,
      error,
    );
  }
  if (!isInside(root, real))
    throw new RequestError(`upload file ${JSON.stringify(path)} leads outside files.uploadDir (through a symbolic link); refused`);
  const info = await stat(real).catch((error: unknown) => {
    throw new FileAccessError(`cannot read upload file ${JSON.stringify(path)}: ${errorMessage(error)}`, error);
  });
  if (!info.isFile()) throw new RequestError(`upload file ${JSON.stringify(path)} in files.uploadDir is not a regular file`);
  return { realPath: real, size: info.size };
}

/** Where a download goes: its final path, and a temporary file next to it (same directory, so the rename is atomic). */
export interface DownloadPaths {
  /** The final path as configured (files.downloadDir joined with the relative path), for results. */
  path: string;
  /** The final path with its directory's links resolved: what is renamed onto. */
  realPath: string;
  /** `.<name>.<random>.part` in the same directory. */
  tempPath: string;
}

/**
 * Prepares `path` under `downloadDir`: creates the missing parent directories one by one, each
 * checked to stay inside the directory (an existing link that leads out is refused).
 */
export async function prepareDownloadPaths(downloadDir: string, path: string): Promise<DownloadPaths> {
  const problem = relativePathProblem(path);
  if (problem) throw new RequestError(`download path: ${problem}`);
  const root = await realRoot(downloadDir, 'files.downloadDir');
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.');
  const name = segments.pop()!;
  const outside = () =>
    new RequestError(`download path ${JSON.stringify(path)} leads outside files.downloadDir (through a symbolic link); refused`);
  let dir = root;
  try {
    for (const segment of segments) {
      const next = join(dir, segment);
      await mkdir(next).catch((error: unknown) => {
        if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
      });
      const real = await realpath(next);
      if (!isInside(root, real)) throw outside();
      if (!(await stat(real)).isDirectory())
        throw new RequestError(`download path ${JSON.stringify(path)}: ${JSON.stringify(segment)} is not a directory`);
      dir = real;
    }
    const existing = await lstat(join(dir, name)).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (existing?.isDirectory()) throw new RequestError(`download path ${JSON.stringify(path)} is a directory`);
  } catch (error) {
    if (error instanceof RequestError) throw error;
    throw new FileAccessError(
      `cannot prepare download path ${JSON.stringify(path)} in files.downloadDir (${downloadDir}): ${errorMessage(error)}`,
      error,
    );
  }
  return {
    path: join(downloadDir, ...segments, name),
    realPath: join(dir, name),
    // A name near NAME_MAX (255) must still leave room for the temporary file's prefix and suffix.
    tempPath: join(dir, `.${name.slice(0, 200)}.${randomBytes(6).toString('hex')}.part`),
  };
}

/** A file name for a job id (the default download name): ids of other clients may hold `/` or be `..`. */
export function fileNameForJob(jobId: string): string {
  const name = jobId.replace(/[^\w.-]/g, '_');
  return /^\.*$/.test(name) ? `job-${name}` : name;
}

async function realRoot(dir: string, option: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if (!(await stat(real)).isDirectory()) throw new RequestError(`${option} ${dir} is not a directory on this worker`);
    return real;
  } catch (error) {
    if (error instanceof RequestError) throw error;
    if (isMissing(error)) throw new RequestError(`${option} ${dir} does not exist on this worker`, error);
    throw new FileAccessError(`cannot use ${option} ${dir}: ${errorMessage(error)}`, error);
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
