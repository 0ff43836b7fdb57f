/**
 * `/openapi.json` is ready for clients: a real linter (Redocly CLI, its `recommended` rules) finds no
 * error in it, and a real generator (openapi-typescript) makes named types of its schemas and one
 * entry per operationId. Both read the document the server answers, written to a temporary file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EMPTY_CONFIG } from '../../src/config/sluice-config.js';
import { startApiServer } from '../helpers/api-server.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/** The operations a client calls, by operationId: every route of the table, none twice. */
const OPERATION_IDS = [
  'checkLiveness',
  'checkReadiness',
  'getMetrics',
  'enqueueOperations',
  'getOperation',
  'listBatches',
  'getBatch',
  'getBatchResults',
  'listDeadLetters',
  'replayDeadLetters',
  'purgeDeadLetters',
  'listLimits',
  'setLimit',
  'resetLimit',
  'pauseLimit',
  'resumeLimit',
  'openCircuit',
  'closeCircuit',
  'getOverview',
  'getQueue',
  'setQueueShards',
  'signIn',
  'signOut',
  'listSchedules',
  'getSchedule',
  'addSchedule',
  'pauseSchedule',
  'resumeSchedule',
  'removeSchedule',
];

type Operation = { operationId: string; 'x-sluice-role'?: string; responses: Record<string, Record<string, unknown>> };
interface Document {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, { content: Record<string, unknown> }> };
}

/** The document a running server answers (with `/metrics`, so every route is in it), and a temp file holding it. */
async function servedDocument(): Promise<{ doc: Document; file: string }> {
  const api = await startApiServer({
    redis: redis().client,
    config: EMPTY_CONFIG,
    queue: uniqueQueue('openapi'),
    version: '1.2.3',
    metrics: { contentType: 'text/plain', render: async () => '' },
  });
  const response = await api.call('/openapi.json', { role: null });
  expect(response.status).toBe(200);
  const text = await response.text();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-openapi-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'openapi.json');
  await writeFile(file, text);
  return { doc: JSON.parse(text) as Document, file };
}

const operationsOf = (doc: Document) => Object.values(doc.paths).flatMap((methods) => Object.values(methods));

describe('GET /openapi.json', () => {
  it('names every operation, refers to named schemas and documents the shared error answers as problem details', async () => {
    const { doc } = await servedDocument();
    expect(doc.servers).toEqual([{ url: '/', description: 'this server' }]);
    expect(
      operationsOf(doc)
        .map((operation) => operation.operationId)
        .sort(),
    ).toEqual([...OPERATION_IDS].sort());
    for (const name of ['Operation', 'Batch', 'Result', 'DeadLetter', 'Error', 'Limit', 'OperationState', 'Overview']) {
      expect(doc.components.schemas, name).toHaveProperty(name);
    }
    const getBatch = doc.paths['/v1/batches/{id}']!['get']!;
    expect(getBatch['x-sluice-role']).toBe('read');
    expect(getBatch.responses['200']).toEqual({
      description: 'the counters',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Batch' } } },
    });
    expect(getBatch.responses['404']!['content']).toEqual({
      'application/problem+json': { schema: { $ref: '#/components/schemas/Error' } },
    });
    for (const [status, name] of [
      ['401', 'Unauthorized'],
      ['429', 'TooManyAuthFailures'],
      ['503', 'ServiceUnavailable'],
    ]) {
      expect(getBatch.responses[status!], status).toEqual({ $ref: `#/components/responses/${name}` });
    }
    const setLimit = doc.paths['/v1/limits/{key}']!['put']!;
    expect(setLimit.responses['413']).toEqual({ $ref: '#/components/responses/BodyTooLarge' });
    expect(setLimit.responses['415']).toEqual({ $ref: '#/components/responses/UnsupportedMediaType' });
    expect(setLimit.responses['403']!['description']).toContain('needs admin');
    const enqueue = doc.paths['/v1/operations']!['post']!;
    expect(enqueue.responses['413']!['content']).toEqual({
      'application/problem+json': { schema: { $ref: '#/components/schemas/Error' } },
    });
    for (const response of Object.values(doc.components.responses)) {
      expect(response.content).toEqual({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Error' } } });
    }
    expect(JSON.stringify(doc.components.schemas['DeadLetterList'])).toContain('"$ref":"#/components/schemas/DeadLetter"');
  });

  it("passes Redocly's recommended lint rules with no error", async () => {
    const { file } = await servedDocument();
    const lint = await run(
      process.execPath,
      [
        join(root, 'node_modules/@redocly/cli/bin/cli.js'),
        'lint',
        file,
        '--config',
        join(root, 'test/fixtures/redocly.yaml'),
        '--format',
        'json',
      ],
      // No telemetry, no update check: the test runs offline.
      { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 16 * 1024 * 1024 },
    ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`redocly lint failed: ${error.stdout ?? ''}\n${error.stderr ?? error.message}`);
    });
    const report = JSON.parse(lint.stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    expect(report.problems.filter((problem) => problem.severity === 'error')).toEqual([]);
    expect(report.totals.errors).toBe(0);
    // The probes take no input and no token: they have no 4xx answer to document.
    expect(report.problems.map((problem) => `${problem.ruleId} ${problem.location[0]!.pointer}`).sort()).toEqual([
      'operation-4xx-response #/paths/~1healthz/get/responses',
      'operation-4xx-response #/paths/~1readyz/get/responses',
    ]);
  });

  it('gives openapi-typescript a named type per schema and an operations entry per operationId', async () => {
    const { file } = await servedDocument();
    const types = astToString(await openapiTS(new URL(`file://${file}`)));
    for (const name of ['Operation', 'Batch', 'Result', 'DeadLetter', 'Error']) {
      expect(types).toMatch(new RegExp(`^        ${name}: \\{`, 'm'));
    }
    // Answers refer to the named types rather than repeat them.
    expect(types).toContain('"application/json": components["schemas"]["Batch"]');
    expect(types).toContain('"application/problem+json": components["schemas"]["Error"]');
    const operations = types.slice(types.indexOf('export interface operations {'));
    for (const id of OPERATION_IDS) expect(operations, id).toMatch(new RegExp(`^    ${id}: \\{`, 'm'));
  });
});
