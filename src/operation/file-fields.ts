import { z } from 'zod';
import type { Issue } from '../errors.js';
import type { SluiceConfig, Target } from '../config/sluice-config.js';
import { signsRequests } from '../auth/auth-config.js';

/**
 * The operation fields that read or write files on the worker: `multipart` and `bodyFile` (uploads,
 * read from `files.uploadDir`) and `download` (the response body written under `files.downloadDir`).
 * Paths are relative to those directories; here only their shape is checked. Where they really
 * lead (symbolic links included) is checked again when the file is opened (http/safe-path.ts).
 */

const NO_CR_LF = /^[^\r\n]*$/;
/** `type/subtype`, optionally with parameters: `text/csv; charset=utf-8`. */
const MEDIA_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;[\x20-\x7e]*)?$/;

/** A path relative to a configured directory: not absolute, no `..` segment, no NUL. */
export const relativeFilePathSchema = z
  .string()
  .min(1, 'expected a relative file path')
  .max(1_024, 'at most 1024 characters')
  .superRefine((path, ctx) => {
    const problem = relativePathProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export function relativePathProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'may not contain a NUL character';
  if (path.startsWith('/')) return `expected a path relative to the configured directory, got the absolute path ${JSON.stringify(path)}`;
  if (path.split('/').includes('..')) return `may not contain a .. segment: ${JSON.stringify(path)}`;
  if (path.endsWith('/') || path.split('/').at(-1) === '.') return `expected a file name at the end: ${JSON.stringify(path)}`;
  return undefined;
}

const partName = z.string().min(1, 'expected a field name').max(1_024).regex(NO_CR_LF, 'may not contain CR or LF');

/** `{name, value}` (a text field) or `{name, file, filename?, contentType?}` (a file, streamed from disk on every attempt). */
export const multipartPartSchema = z
  .strictObject({
    name: partName,
    value: z.string().optional(),
    /** Relative to files.uploadDir. */
    file: relativeFilePathSchema.optional(),
    /** Default: the file's base name. */
    filename: z.string().min(1).max(1_024).regex(NO_CR_LF, 'may not contain CR or LF').optional(),
    /** Default: by the file's extension, else application/octet-stream. */
    contentType: z.string().regex(MEDIA_TYPE, 'expected a media type such as text/csv').optional(),
  })
  .superRefine((part, ctx) => {
    if ((part.value === undefined) === (part.file === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give either value (a text field) or file (a file under files.uploadDir)' });
    } else if (part.value !== undefined) {
      for (const field of ['filename', 'contentType'] as const) {
        if (part[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'only for a file part' });
      }
    }
  });

export const multipartSchema = z.array(multipartPartSchema).min(1, 'list at least one part').max(1_000, 'at most 1000 parts');

export const downloadSchema = z
  .union(
    [
      z.literal(true),
      z.strictObject({
        /** Relative to files.downloadDir. Default: the job id. */
        path: relativeFilePathSchema.optional(),
        /** Largest body written, in decoded bytes. Default: no bound (SLUICE_MAX_RESPONSE_BYTES does not apply). */
        maxBytes: z.number().int().positive().optional(),
      }),
    ],
    { error: 'expected true or {"path"?, "maxBytes"?}' },
  )
  .transform((download) => (download === true ? {} : download));

export type MultipartPart = z.output<typeof multipartPartSchema>;
export type DownloadOption = z.output<typeof downloadSchema>;

interface FileFields {
  multipart?: MultipartPart[] | undefined;
  bodyFile?: string | undefined;
  download?: DownloadOption | undefined;
  headers?: Record<string, string> | undefined;
  expect?: { schema?: unknown } | undefined;
  paginate?: unknown;
}

/** Rules between fields, for the operation schema's superRefine. */
export function fileFieldConflicts(op: FileFields): Issue[] {
  const issues: Issue[] = [];
  if (op.multipart !== undefined && Object.keys(op.headers ?? {}).some((name) => name.toLowerCase() === 'content-type')) {
    issues.push({
      path: 'headers',
      message: 'a multipart body sets its own content-type (with its boundary); remove content-type from headers',
    });
  }
  if (op.download !== undefined && op.expect?.schema !== undefined) {
    issues.push({
      path: 'expect.schema',
      message: 'a downloaded body goes to a file and is not checked against expect.schema; give one or the other',
    });
  }
  if (op.paginate !== undefined) {
    // Pagination reads every page's body for its items (and writes them itself).
    const fields = (['download', 'multipart', 'bodyFile'] as const).filter((field) => op[field] !== undefined);
    for (const field of fields) issues.push({ path: field, message: 'not with paginate' });
  }
  return issues;
}

/**
 * Files need their directory in the config: refused at enqueue (and again by the worker) when it
 * is missing, rather than failing on every attempt.
 */
export function fileConfigIssues(op: FileFields, config: SluiceConfig): Issue[] {
  const issues: Issue[] = [];
  if (!config.files?.uploadDir) {
    const missing = 'files.uploadDir is not configured (the config file names the directory uploads are read from)';
    if (op.bodyFile !== undefined) issues.push({ path: 'bodyFile', message: missing });
    op.multipart?.forEach((part, index) => {
      if (part.file !== undefined) issues.push({ path: `multipart[${index}].file`, message: missing });
    });
  }
  if (op.download !== undefined && !config.files?.downloadDir) {
    issues.push({
      path: 'download',
      message: 'files.downloadDir is not configured (the config file names the directory downloads are written to)',
    });
  }
  return issues;
}

/**
 * A target that signs its requests (auth `hmac`, `standardWebhooks`) signs the body's bytes, and the
 * signature is a header, sent before the body: a body streamed from disk (`bodyFile`, `multipart`,
 * whose boundary is also made at send time) cannot be signed. Refused at enqueue, for a request that
 * goes to the target's origin (only those are signed).
 */
export function signedBodyIssues(
  op: FileFields & { target?: string | undefined },
  target: Target | undefined,
  destination: string,
): Issue[] {
  if (!signsRequests(target?.auth) || !URL.canParse(destination)) return [];
  if (new URL(destination).origin !== new URL(target!.baseUrl).origin) return [];
  const message = `target ${op.target ?? ''} signs its requests (auth ${target!.auth!.type}), which needs the whole body before it is sent; a streamed file body cannot be signed: send json, form or body`;
  return (['bodyFile', 'multipart'] as const).filter((field) => op[field] !== undefined).map((path) => ({ path, message }));
}
