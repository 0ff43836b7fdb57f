/**
 * CSV in and out as a user runs it: `sluice enqueue rows.csv --template op.json` with the built
 * binary against a private redis-server, a worker sending the operations to a local target, and
 * `sluice results --format csv` joining the outcomes back to the input rows.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer } from '../helpers/redis.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

const redis = useRedisServer();
const cli = useCli(() => ({ REDIS_URL: redis().url }));

let target: TargetServer;
let config: string;
let template: string;
beforeAll(async () => {
  target = await startTargetServer();
  config = await cli.file(
    'crm.config.json',
    JSON.stringify({ targets: { crm: { baseUrl: `${target.url}/api`, allowPrivateAddresses: true } } }),
  );
  template = await cli.file(
    'upsert.json',
    JSON.stringify({
      method: 'PUT',
      target: 'crm',
      url: '/contacts/{{id}}',
      idempotencyKey: 'upsert-{{id}}',
      json: { name: '{{name}}', zip: '{{zip}}', postcode: '{{zip:string}}', active: '{{active}}', age: '{{age:number}}', note: '{{note}}' },
    }),
  );
});
afterAll(async () => {
  await target?.close();
});

/** Rows as a spreadsheet writes them: a BOM, CRLF line ends, quoted fields with commas, quotes and a newline. */
const csv = (rows: string[]): string => `\uFEFF${rows.join('\r\n')}\r\n`;
const HEADER = 'id,name,zip,active,age,note';

const queueKeys = (queue: string): Promise<string[]> => redis().client.keys(`sluice:{${queue}}:*`);

describe('sluice enqueue FILE.csv --template / sluice results --format csv (built binary)', () => {
  it('refuses a CSV with a bad row: exit 2, the row (as a spreadsheet counts it) and the field named, nothing enqueued', async () => {
    const queue = uniqueQueue('e2e-csv');
    const file = await cli.file(
      'bad-row.csv',
      csv([HEADER, '1,"Lovelace, Ada",01234,true,36,"first line\nsecond line"', '2,Bob,99999,false,forty,plain', '3,Cy,10115,TRUE,,x']),
    );

    const result = await cli.run(['--config', config, 'enqueue', file, '--template', template], { env: { SLUICE_QUEUE: queue } });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file} line 3 (text line 4): json.age: expected number (column age: "forty")\n`);
    expect(result.stderr).toContain('nothing enqueued: 1 of 3 rows are invalid (fix them, or pass --skip-invalid)');
    // Only the bad row is reported.
    expect(result.stderr.split('\n').filter((line) => line.startsWith(file))).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(await queueKeys(queue)).toEqual([]);
  });

  it('usage errors: a CSV without --template, a template naming a column the header lacks', async () => {
    const queue = uniqueQueue('e2e-csv');
    const file = await cli.file('plain.csv', csv([HEADER, '1,a,01234,true,1,x']));
    const typo = await cli.file('typo.json', JSON.stringify({ method: 'GET', target: 'crm', url: '/contacts/{{id}}?email={{emial}}' }));

    const noTemplate = await cli.run(['--config', config, 'enqueue', file], { env: { SLUICE_QUEUE: queue } });
    expect(noTemplate.code).toBe(2);
    expect(noTemplate.stderr).toBe(
      `sluice: ${file} is read as CSV, which needs --template FILE: an operation whose {{column}} placeholders are filled from each row\n`,
    );

    const unknownColumn = await cli.run(['--config', config, 'enqueue', file, '--template', typo], { env: { SLUICE_QUEUE: queue } });
    expect(unknownColumn.code).toBe(2);
    expect(unknownColumn.stderr).toBe(
      `sluice: ${typo} with ${file}: {{emial}} names no column of the CSV header; its columns: id, name, zip, active, age, note\n`,
    );
    expect(await queueKeys(queue)).toEqual([]);
  });

  it('reads CSV from stdin (-) when a template is given, spooled and validated like a file', async () => {
    const queue = uniqueQueue('e2e-csv');
    const input = csv([HEADER, '1,a,01234,true,1,x', '2,b,02345,false,2,"y\nz"']);

    const result = await cli.run(['--config', config, 'enqueue', '-', '--template', template, '--dry-run', '--json'], {
      env: { SLUICE_QUEUE: queue },
      input,
    });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      batchId: null,
      enqueued: 0,
      duplicates: 0,
      alreadyEnqueued: 0,
      invalid: 0,
      valid: 2,
      dryRun: true,
    });

    const bad = await cli.run(['--config', config, 'enqueue', '-', '--template', template], {
      env: { SLUICE_QUEUE: queue },
      input: `${input}3,c,1,maybe,x,y,extra\r\n`,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('stdin line 4 (text line 5): expected 6 fields (id, name, zip, active, age, note), found 7');
    expect(await queueKeys(queue)).toEqual([]);
  });

  it('enqueues one operation per row, a worker sends them, and the results export as CSV joined to the input', async () => {
    const queue = uniqueQueue('e2e-csv');
    const file = await cli.file(
      'contacts.csv',
      csv([
        HEADER,
        '1,"Lovelace, Ada",01234,true,36,"first line\nsecond line"',
        '2,"Bob ""The Builder""",99999,false,41,plain',
        '3,Cy,10115,TRUE,,x',
      ]),
    );
    target.script('PUT /api/contacts/3', [{ status: 422, json: { error: 'zip not served' } }]);

    const enqueued = await cli.run(['--config', config, 'enqueue', file, '--template', template, '--batch', 'csv-e2e', '--json'], {
      env: { SLUICE_QUEUE: queue },
    });
    expect(enqueued.stderr).toBe('');
    expect(enqueued.code).toBe(0);
    expect(JSON.parse(enqueued.stdout)).toEqual({ batchId: 'csv-e2e', enqueued: 3, duplicates: 0, alreadyEnqueued: 0, invalid: 0 });

    // The job data in Redis: typed cells, text kept as text, the row copied into meta.
    const jobIds = await redis().client.zrange(`sluice:{${queue}}:prioritized`, 0, -1);
    const ops = await Promise.all(
      jobIds.map(
        async (id) =>
          (JSON.parse((await redis().client.hget(`sluice:{${queue}}:${id}`, 'data')) ?? 'null') as { op: Record<string, unknown> }).op,
      ),
    );
    const byKey = Object.fromEntries(ops.map((op) => [op['idempotencyKey'], op]));
    expect(Object.keys(byKey).sort()).toEqual(['upsert-1', 'upsert-2', 'upsert-3']);
    expect(byKey['upsert-1']).toEqual({
      method: 'PUT',
      target: 'crm',
      url: '/contacts/1',
      idempotencyKey: 'upsert-1',
      json: { name: 'Lovelace, Ada', zip: '01234', postcode: '01234', active: true, age: 36, note: 'first line\nsecond line' },
      meta: { id: '1', name: 'Lovelace, Ada', zip: '01234', active: 'true', age: '36', note: 'first line\nsecond line' },
    });
    // 99999 is a plain number, so {{zip}} gives a number; {{zip:string}} keeps text.
    expect(byKey['upsert-2']?.['json']).toEqual({
      name: 'Bob "The Builder"',
      zip: 99999,
      postcode: '99999',
      active: false,
      age: 41,
      note: 'plain',
    });
    // An empty cell as a whole value is left out.
    expect(byKey['upsert-3']?.['json']).toEqual({ name: 'Cy', zip: 10115, postcode: '10115', active: true, note: 'x' });

    await cli.startWorkers(1, { concurrency: 3, env: { SLUICE_QUEUE: queue, SLUICE_CONFIG: config } });
    const waited = await cli.run(['wait', 'csv-e2e', '--timeout', '20', '--json'], { env: { SLUICE_QUEUE: queue }, timeoutMs: 25_000 });
    expect(JSON.parse(waited.stdout)).toMatchObject({ total: 3, succeeded: 2, deadLettered: 1 });
    expect(waited.code).toBe(1);

    const sent = Object.fromEntries(
      target.requests.filter((request) => request.path.startsWith('/api/contacts/')).map((request) => [request.path, request]),
    );
    expect(sent['/api/contacts/1']?.headers['idempotency-key']).toBe('upsert-1');
    expect(JSON.parse(sent['/api/contacts/1']?.body ?? '')).toEqual({
      name: 'Lovelace, Ada',
      zip: '01234',
      postcode: '01234',
      active: true,
      age: 36,
      note: 'first line\nsecond line',
    });

    const out = join(cli.dir(), 'results.csv');
    const exported = await cli.run(['results', 'csv-e2e', '--format', 'csv', '--out', out], { env: { SLUICE_QUEUE: queue } });
    expect(exported.code).toBe(0);
    expect(exported.stderr).toBe(`wrote 3 results to ${out}\n`);
    // A path that cannot be written is named as given, before anything is read (exit 2).
    const nowhere = join(cli.dir(), 'no-such-dir', 'results.csv');
    const refused = await cli.run(['results', 'csv-e2e', '--format', 'csv', '--out', nowhere], { env: { SLUICE_QUEUE: queue } });
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 2,
      stderr: `sluice: cannot write ${nowhere}: no such directory\n`,
    });
    const [header, ...rows] = parse(await readFile(out, 'utf8')) as string[][];
    // The input's `id` column becomes meta.id next to sluice's own id.
    expect(header).toEqual([
      'meta.id',
      'name',
      'zip',
      'active',
      'age',
      'note',
      'id',
      'outcome',
      'status',
      'attempts',
      'durationMs',
      'reason',
      'error',
      'finishedAt',
    ]);
    const byInputId = Object.fromEntries(rows.map((row) => [row[0], Object.fromEntries(header!.map((name, i) => [name, row[i]]))]));
    expect(byInputId['1']).toMatchObject({
      name: 'Lovelace, Ada',
      zip: '01234',
      note: 'first line\nsecond line',
      outcome: 'succeeded',
      status: '200',
      attempts: '1',
      reason: '',
      error: '',
    });
    expect(byInputId['2']).toMatchObject({ name: 'Bob "The Builder"', zip: '99999', outcome: 'succeeded', status: '200' });
    expect(byInputId['3']).toMatchObject({ name: 'Cy', age: '', outcome: 'deadLettered', status: '422', reason: 'permanent-status' });
    expect(byInputId['3']?.['error']).not.toBe('');

    // --failed keeps the dead letter only; stdout works like --out.
    const failed = await cli.run(['results', 'csv-e2e', '--format', 'csv', '--failed'], { env: { SLUICE_QUEUE: queue } });
    expect(failed.code).toBe(0);
    expect((parse(failed.stdout) as string[][]).map((row) => row[0])).toEqual(['meta.id', '3']);
  });
});
