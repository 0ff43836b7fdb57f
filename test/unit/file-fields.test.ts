import { describe, expect, it } from 'vitest';
import type { Issue } from '../../src/errors.js';
import { parseSluiceConfig, type SluiceConfig } from '../../src/config/sluice-config.js';
import { buildRequestSpec } from '../../src/http/request-spec.js';
import { mediaTypeOf } from '../../src/http/media-types.js';
import { fileNameForJob } from '../../src/http/safe-path.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import type { Operation } from '../../src/operation/schema.js';

const FILES = { uploadDir: '/srv/uploads', downloadDir: '/srv/downloads' };
const WITH_FILES: SluiceConfig = parseSluiceConfig({ allowedHosts: ['api.example.com'], files: FILES });
const WITHOUT_FILES: SluiceConfig = parseSluiceConfig({ allowedHosts: ['api.example.com'] });
const URL_ = 'https://api.example.com/upload';

function valid(input: Record<string, unknown>, config = WITH_FILES): Operation {
  const result = parseOperation({ method: 'POST', url: URL_, ...input }, config);
  if (!result.ok) throw new Error(`expected a valid operation, got issues: ${JSON.stringify(result.issues)}`);
  return result.operation;
}

function issues(input: Record<string, unknown>, config = WITH_FILES): Issue[] {
  const result = parseOperation({ method: 'POST', url: URL_, ...input }, config);
  if (result.ok) throw new Error(`expected issues, got a valid operation: ${JSON.stringify(result.operation)}`);
  return result.issues;
}

describe('multipart, bodyFile and download in the operation schema', () => {
  it('accepts text and file parts, a body file and both forms of download', () => {
    const op = valid({
      multipart: [
        { name: 'kind', value: 'orders' },
        { name: 'file', file: 'exports/2026/orders.csv', filename: 'x.csv', contentType: 'text/csv; charset=utf-8' },
      ],
      download: true,
    });
    expect(op.multipart).toHaveLength(2);
    // `true` is the same as `{}`: the default path and no size bound.
    expect(op.download).toEqual({});
    expect(valid({ bodyFile: 'a/b.bin', download: { path: 'out/reply.json', maxBytes: 1_000 } }).download).toEqual({
      path: 'out/reply.json',
      maxBytes: 1_000,
    });
  });

  it('refuses absolute paths, .. segments, NUL and directory-like paths, naming the part', () => {
    expect(
      issues({
        multipart: [
          { name: 'ok', value: 'x' },
          { name: 'f', file: '../secrets.txt' },
          { name: 'g', file: '/etc/passwd' },
          { name: 'h', file: 'a\0b' },
          { name: 'i', file: 'dir/' },
        ],
      }),
    ).toEqual([
      { path: 'multipart[1].file', message: 'may not contain a .. segment: "../secrets.txt"' },
      { path: 'multipart[2].file', message: expect.stringContaining('expected a path relative to the configured directory') },
      { path: 'multipart[3].file', message: 'may not contain a NUL character' },
      { path: 'multipart[4].file', message: 'expected a file name at the end: "dir/"' },
    ]);
    expect(issues({ bodyFile: 'a/../../b' })).toEqual([{ path: 'bodyFile', message: expect.stringContaining('..') }]);
    expect(issues({ download: { path: 'x/..' } })).toEqual([{ path: 'download.path', message: expect.stringContaining('..') }]);
    // A name that merely starts with two dots is a file name, not a segment.
    expect(valid({ bodyFile: '..hidden/..x' }).bodyFile).toBe('..hidden/..x');
  });

  it('wants exactly one of value and file in a part, and filename/contentType only with a file', () => {
    expect(
      issues({ multipart: [{ name: 'a' }, { name: 'b', value: 'v', file: 'f.txt' }, { name: 'c', value: 'v', filename: 'n' }] }),
    ).toEqual([
      { path: 'multipart[0]', message: 'give either value (a text field) or file (a file under files.uploadDir)' },
      { path: 'multipart[1]', message: 'give either value (a text field) or file (a file under files.uploadDir)' },
      { path: 'multipart[2].filename', message: 'only for a file part' },
    ]);
    expect(issues({ multipart: [{ name: 'a', file: 'f', contentType: 'not a type' }] })).toEqual([
      { path: 'multipart[0].contentType', message: 'expected a media type such as text/csv' },
    ]);
    expect(issues({ multipart: [{ name: 'a', value: 'v', extra: 1 }] })).toEqual([
      { path: 'multipart[0].extra', message: 'unknown field' },
    ]);
    expect(issues({ multipart: [] })).toEqual([{ path: 'multipart', message: 'list at least one part' }]);
  });

  it('extends the at-most-one-body rule to multipart and bodyFile', () => {
    expect(issues({ json: { a: 1 }, multipart: [{ name: 'a', value: 'v' }] })).toEqual([
      { path: 'multipart', message: 'give at most one body; also got json' },
    ]);
    expect(issues({ multipart: [{ name: 'a', value: 'v' }], bodyFile: 'x.bin' })).toEqual([
      { path: 'bodyFile', message: 'give at most one body; also got multipart' },
    ]);
    expect(issues({ body: 'x', bodyFile: 'x.bin' })).toEqual([{ path: 'bodyFile', message: 'give at most one body; also got body' }]);
  });

  it('refuses a multipart content-type header and a download with expect.schema', () => {
    expect(issues({ multipart: [{ name: 'a', value: 'v' }], headers: { 'Content-Type': 'multipart/form-data' } })).toEqual([
      { path: 'headers', message: expect.stringContaining('multipart body sets its own content-type') },
    ]);
    expect(issues({ download: true, expect: { schema: { type: 'object' } } })).toEqual([
      { path: 'expect.schema', message: expect.stringContaining('not checked against expect.schema') },
    ]);
    // Pagination reads every page's body for its items.
    expect(issues({ method: 'GET', paginate: { style: 'link' }, download: true, bodyFile: 'x.bin' })).toEqual([
      { path: 'download', message: 'not with paginate' },
      { path: 'bodyFile', message: 'not with paginate' },
    ]);
  });

  it('refuses files when the config has no directory for them, at enqueue', () => {
    expect(
      issues(
        {
          multipart: [
            { name: 'a', value: 'v' },
            { name: 'f', file: 'x.csv' },
          ],
          download: true,
        },
        WITHOUT_FILES,
      ),
    ).toEqual([
      { path: 'multipart[1].file', message: expect.stringContaining('files.uploadDir is not configured') },
      { path: 'download', message: expect.stringContaining('files.downloadDir is not configured') },
    ]);
    expect(issues({ bodyFile: 'x.bin' }, WITHOUT_FILES)).toEqual([
      { path: 'bodyFile', message: expect.stringContaining('files.uploadDir is not configured') },
    ]);
    // Text-only multipart needs no directory.
    expect(valid({ multipart: [{ name: 'a', value: 'v' }] }, WITHOUT_FILES).multipart).toEqual([{ name: 'a', value: 'v' }]);
  });

  it('refuses a streamed body for a target that signs its requests, at enqueue, but not one sent elsewhere', () => {
    const signing = parseSluiceConfig({
      allowedHosts: ['api.example.com'],
      files: FILES,
      targets: { hooks: { baseUrl: 'https://hooks.example.com', auth: { type: 'standardWebhooks', secretFromEnv: 'HOOKS_SECRET' } } },
    });
    const message =
      'target hooks signs its requests (auth standardWebhooks), which needs the whole body before it is sent; a streamed file body cannot be signed: send json, form or body';
    expect(issues({ target: 'hooks', url: '/in', bodyFile: 'x.bin' }, signing)).toEqual([{ path: 'bodyFile', message }]);
    // Even text-only multipart: its boundary is made when it is sent.
    expect(issues({ target: 'hooks', url: 'https://hooks.example.com/in', multipart: [{ name: 'a', value: 'v' }] }, signing)).toEqual([
      { path: 'multipart', message },
    ]);
    expect(valid({ target: 'hooks', url: '/in', json: { a: 1 } }, signing).json).toEqual({ a: 1 });
    // Requests to another origin get no credentials, so no signature either.
    expect(valid({ target: 'hooks', url: URL_, bodyFile: 'x.bin' }, signing).bodyFile).toBe('x.bin');
  });
});

describe('buildRequestSpec with files', () => {
  const files = { ...FILES, jobId: 'u-1234' };

  it('describes a body file by name with a content type from headers, else the extension', () => {
    const spec = buildRequestSpec(valid({ bodyFile: 'in/data.csv', headers: { 'content-length': '3' } }), undefined, 'k', files);
    expect(spec.body).toBeUndefined();
    expect(spec.upload).toEqual({ kind: 'file', uploadDir: '/srv/uploads', path: 'in/data.csv' });
    expect(spec.headers['content-type']).toBe('text/csv');
    // The file's size decides the length, not a header.
    expect(spec.headers['content-length']).toBeUndefined();
    const own = buildRequestSpec(
      valid({ bodyFile: 'in/data.csv', headers: { 'content-type': 'application/vnd.x' } }),
      undefined,
      'k',
      files,
    );
    expect(own.headers['content-type']).toBe('application/vnd.x');
    expect(buildRequestSpec(valid({ bodyFile: 'blob' }), undefined, 'k', files).headers['content-type']).toBe('application/octet-stream');
  });

  it('fills multipart defaults (base name, type by extension) and leaves content-type to the encoder', () => {
    const target = { baseUrl: 'https://api.example.com', headers: { 'content-type': 'application/json' }, allowPrivateAddresses: false };
    const spec = buildRequestSpec(
      valid(
        {
          url: '/upload',
          target: 't',
          multipart: [
            { name: 'a', value: 'v' },
            { name: 'f', file: 'd/Report.PDF' },
          ],
        },
        parseSluiceConfig({ targets: { t: target }, files: FILES }),
      ),
      target,
      'k',
      files,
    );
    expect(spec.upload).toEqual({
      kind: 'multipart',
      uploadDir: '/srv/uploads',
      parts: [
        { name: 'a', value: 'v' },
        { name: 'f', file: 'd/Report.PDF', filename: 'Report.PDF', contentType: 'application/pdf' },
      ],
    });
    expect(spec.headers['content-type']).toBeUndefined();
  });

  it('names a download after the job unless a path is given, and downloads only accepted statuses', () => {
    expect(buildRequestSpec(valid({ download: true }), undefined, 'k', files).download).toEqual({
      downloadDir: '/srv/downloads',
      path: 'u-1234',
    });
    const spec = buildRequestSpec(
      valid({ download: { path: 'a/b.bin', maxBytes: 9 }, expect: { status: [200, 206] } }),
      undefined,
      'k',
      files,
    );
    expect(spec.download).toEqual({ downloadDir: '/srv/downloads', path: 'a/b.bin', maxBytes: 9, acceptStatus: [200, 206] });
  });

  it('refuses an upload or download when the worker has no directory for it', () => {
    expect(() => buildRequestSpec(valid({ bodyFile: 'x' }), undefined, 'k')).toThrow('files.uploadDir is not configured on this worker');
    expect(() => buildRequestSpec(valid({ download: true }), undefined, 'k', { jobId: 'j' })).toThrow(
      'files.downloadDir is not configured on this worker',
    );
  });

  it('turns any job id into a safe file name', () => {
    expect(fileNameForJob('u-0b1c')).toBe('u-0b1c');
    expect(fileNameForJob('../../etc/passwd')).toBe('.._.._etc_passwd');
    expect(fileNameForJob('..')).toBe('job-..');
    expect(fileNameForJob('')).toBe('job-');
  });

  it('knows common media types by extension', () => {
    expect(mediaTypeOf('a/b.CSV')).toBe('text/csv');
    expect(mediaTypeOf('x.json')).toBe('application/json');
    expect(mediaTypeOf('noext')).toBe('application/octet-stream');
  });
});
