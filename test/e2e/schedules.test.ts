/**
 * Schedules with real processes: the docs' example as written, and a schedule ticking every 2 s
 * with two `sluice worker` processes: exactly one batch per tick, each operation sent once.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/support/package-root.js';
import { useCli } from '../helpers/cli-process.js';
import { uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';
import { startTestTarget } from '../helpers/target-server.js';

const redis = useRedisServer();
/** waitFor, for a check that answers its value once ready (undefined before). */
const until = async <T>(check: () => Promise<T | undefined>, options?: Parameters<typeof waitFor>[1]): Promise<T> =>
  (await waitFor(check, options)) as T;
const cli = useCli(() => ({ REDIS_URL: redis().url }));

interface Shown {
  nextRunAt?: string;
  runs: { batchId: string; tickAt: string; status: string; enqueued: number; batch?: { total: number; pending: number } }[];
}

/** Targets in ./sluice.config.json of the CLI's working directory (found there by every command). */
async function configure(orders: string): Promise<void> {
  const config = { targets: { orders: { baseUrl: orders, allowPrivateAddresses: true } } };
  await writeFile(join(cli.dir(), 'sluice.config.json'), JSON.stringify(config));
}

/** The first `sh` block of the docs section: its heredoc files and its `npx sluice` commands (words). */
async function docsExample(): Promise<{ files: [string, string][]; commands: string[][] }> {
  const text = await readFile(join(packageRoot(), 'docs', 'operations.md'), 'utf8');
  const section = text.slice(text.indexOf('## Recurring operations (schedules)'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  const files = [...block.matchAll(/^cat > (\S+) <<'EOF'\n([\s\S]*?)^EOF$/gm)].map((match) => [match[1]!, match[2]!] as [string, string]);
  const commands = [...block.matchAll(/^npx sluice (.+)$/gm)].map((match) =>
    [...match[1]!.matchAll(/"([^"]*)"|(\S+)/g)].map((word) => word[1] ?? word[2]!),
  );
  return { files, commands };
}

describe('sluice schedule (built binary)', () => {
  it('the example in docs/operations.md runs as written', async () => {
    const target = await startTestTarget();
    await configure(target.url);
    const queue = uniqueQueue('e2e-sched-docs');
    const { files, commands } = await docsExample();
    expect(commands.map((words) => words.slice(0, 2).join(' '))).toEqual([
      'schedule add',
      'schedule add',
      'schedule list',
      'schedule show',
    ]);
    for (const [name, content] of files) await cli.file(name, content);
    for (const words of commands) {
      const result = await cli.run(words, { env: { SLUICE_QUEUE: queue } });
      expect(result.code, `sluice ${words.join(' ')}: ${result.stderr}`).toBe(0);
    }
    const listed = await cli.run(['schedule', 'list', '--json'], { env: { SLUICE_QUEUE: queue } });
    const schedules = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { name: string; operations: number; nextRunAt: string });
    expect(schedules.map(({ name, operations }) => ({ name, operations }))).toEqual([
      { name: 'hourly-pull', operations: 1 },
      { name: 'nightly-sync', operations: 2 },
    ]);
    expect(schedules[0]!.nextRunAt).toMatch(/T\d\d:00:00\.000Z$/);
    // 02:00 in Berlin is 00:00 or 01:00 UTC.
    expect(schedules[1]!.nextRunAt).toMatch(/T0[01]:00:00\.000Z$/);

    // An invalid line: its line and field, nothing added, exit 2.
    await cli.file('bad.jsonl', `${files[0]![1]}{"method":"GET","target":"nope","url":"/x/{{run}}"}\n`);
    const bad = await cli.run(['schedule', 'add', 'bad', 'bad.jsonl', '--every', '1h'], { env: { SLUICE_QUEUE: queue } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^line 2: target: /m);
    expect(bad.stderr).toContain('nothing added: 1 of 2 lines are invalid');
    const unknown = await cli.run(['schedule', 'show', 'bad'], { env: { SLUICE_QUEUE: queue } });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no schedule "bad"');
  });

  it('--every 2s with two worker processes: exactly one batch per tick over 10 s, each operation sent once', async () => {
    const target = await startTestTarget();
    await configure(target.url);
    const queue = uniqueQueue('e2e-sched-fleet');
    const env = { SLUICE_QUEUE: queue };
    const ops = [1, 2, 3].map((n) =>
      JSON.stringify({ method: 'POST', target: 'orders', url: `/pulse/${n}`, idempotencyKey: `pulse-{{run}}-${n}` }),
    );
    await cli.file('pulse.jsonl', `${ops.join('\n')}\n`);
    const workers = await cli.startWorkers(2, { concurrency: 5, env });

    const added = await cli.run(['schedule', 'add', 'pulse', 'pulse.jsonl', '--every', '2s', '--json'], { env });
    expect(added.code, added.stderr).toBe(0);
    const firstTick = Date.parse((JSON.parse(added.stdout) as Shown).nextRunAt!);
    // Ticks at firstTick, +2 s, … +8 s: five of them before the pause.
    await waitFor(() => Date.now() > firstTick + 9_000, { timeoutMs: 15_000, intervalMs: 100 });
    expect((await cli.run(['schedule', 'pause', 'pulse'], { env })).code).toBe(0);
    const pausedAt = Date.now();

    const shown = await until(
      async () => {
        const result = await cli.run(['schedule', 'show', 'pulse', '--json', '--runs', '50'], { env });
        const current = JSON.parse(result.stdout) as Shown;
        return current.runs.every((run) => run.batch?.total === 3 && run.batch.pending === 0) ? current : undefined;
      },
      { timeoutMs: 10_000, what: 'every run sent' },
    );
    // Every tick from the first until the pause took effect (a spawned command takes a moment), each once.
    const ticks = shown.runs.map((run) => Date.parse(run.tickAt)).sort((a, b) => a - b);
    const count = ticks.length;
    expect(count).toBeGreaterThanOrEqual(5);
    expect(ticks).toEqual(Array.from({ length: count }, (_, n) => firstTick + n * 2_000));
    expect(ticks.at(-1)).toBeLessThanOrEqual(pausedAt);
    expect(new Set(shown.runs.map((run) => run.batchId)).size).toBe(count);
    for (const run of shown.runs) expect(run).toMatchObject({ status: 'enqueued', enqueued: 3 });

    const batches = await redis().client.zrange(`sluice:{${queue}}:batches`, 0, -1);
    expect(batches.filter((batchId) => batchId.startsWith('pulse-')).sort()).toEqual(shown.runs.map((run) => run.batchId).sort());
    const sent = target.requests.filter((request) => request.path.startsWith('/pulse/'));
    expect(sent).toHaveLength(count * 3);
    expect(new Set(sent.map((request) => request.headers['idempotency-key'])).size).toBe(count * 3);
    const runsLogged = workers.flatMap((worker) => worker.logs().filter((line) => line.msg === 'schedule run enqueued'));
    expect(runsLogged).toHaveLength(count);
  }, 40_000);
});
