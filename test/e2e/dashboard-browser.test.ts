/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
 * signs in to a running system — redis-server, a scripted target, a worker, the HTTP server — reads
 * the numbers off the page, checks them against the API, replays a dead-letter group with the
 * page's button, and saves a screenshot to test-results/dashboard.png.
 *
 * Needs Chromium: `apt-get install chromium` (or set CHROMIUM_PATH to a Chromium/Chrome executable).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Locator, type Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { packageRoot } from '../../src/support/package-root.js';
import { TOKENS, startApiServer, type ApiServer } from '../helpers/api-server.js';
import { startPipeline } from '../helpers/pipeline-harness.js';
import { useRedisServer } from '../helpers/redis.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] || '/usr/bin/chromium';
const SCREENSHOT = join(packageRoot(), 'test-results', 'dashboard.png');
const JOB_STATES = ['waiting', 'active', 'delayed', 'paused', 'completed', 'failed'] as const;

const redis = useRedisServer();

interface Overview {
  generatedAt: string;
  queues: {
    name: string;
    jobs: Record<(typeof JOB_STATES)[number], number>;
    throughput: { completed: number[]; failed: number[] };
    batches: { batchId: string; total: number; succeeded: number; deadLettered: number; pending: number; done: boolean }[];
    deadLetters: { total: number; groups: { limitKey: string | null; status: number | null; reason: string; count: number }[] };
  }[];
  limits: { key: string; inFlight: number; queued: number; recent429s: number; effectiveRate: number | null }[];
}

const numbers = new Intl.NumberFormat('en-US');
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function overview(api: ApiServer): Promise<Overview> {
  return (await (await api.call('/v1/overview', { role: 'read' })).json()) as Overview;
}

/** Waits until the page shows a reading taken no earlier than `since` (ISO time). */
async function pageReadingSince(page: Page, since: string): Promise<void> {
  await page.waitForFunction(
    (after) => {
      // Runs in the page; this file is compiled without the DOM's types.
      const { document } = globalThis as unknown as {
        document: { querySelector(selector: string): { getAttribute(name: string): string | null } | null };
      };
      return (document.querySelector('[data-testid="updated"]')?.getAttribute('data-generated-at') ?? '') >= after;
    },
    since,
    { timeout: 10_000 },
  );
}

const shown = (scope: Locator, testId: string) => scope.getByTestId(testId).first().textContent();

describe('the dashboard page in Chromium', () => {
  it('shows the same counts as the API and replays a dead-letter group', { timeout: 60_000 }, async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not at ${CHROMIUM}: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome executable`,
      );
    }
    const limits = { 'browser-key': { requestsPerSecond: 50, concurrency: 4 } };
    const p = await startPipeline(redis(), { config: { targets: {}, limits, allowedHosts: [] } });
    const api = await startApiServer({ redis: redis().client, config: p.config, queue: p.queue });

    // 5 succeed; 2 get 404 (permanent: dead-lettered at once) and then 200 once replayed; 1 gets 422 for good.
    p.target.script('POST /gone', [{ status: 404 }, { status: 404 }, { status: 200, json: { back: true } }]);
    p.target.script('POST /bad', [{ status: 422 }]);
    const paths = ['/ok/1', '/ok/2', '/ok/3', '/ok/4', '/ok/5', '/gone', '/gone', '/bad'];
    const enqueued = await api.call('/v1/operations?batch=browser-1', {
      method: 'POST',
      role: 'enqueue',
      json: paths.map((path) => p.op(path, { limitKey: 'browser-key' })),
    });
    expect(enqueued.status).toBe(202);
    await p.settled('browser-1');

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    onTestFinished(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('request', (request) => {
      if (!request.url().startsWith(`${api.url}/`)) elsewhere.push(request.url());
    });
    page.on('console', (message) => {
      // The browser reports every 401 (the first reading before signing in, the wrong token); those are expected.
      if (message.type() === 'error' && !message.text().includes('status of 401')) problems.push(`console: ${message.text()}`);
    });

    // Signed out: the page asks for a token; a wrong one is refused.
    await page.goto(`${api.url}/`);
    await page.getByLabel('API token').fill('not-a-token-anyone-issued');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This server does not know that token.').waitFor();
    await page.getByLabel('API token').fill(TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();

    const queue = page.locator(`[data-testid="queue"][data-queue="${p.queue}"]`);
    await queue.waitFor();
    expect(await page.getByTestId('viewer-role').textContent()).toBe('signed in: admin');

    // The numbers on the page are the API's.
    const before = await overview(api);
    await pageReadingSince(page, before.generatedAt);
    const mine = before.queues.find((entry) => entry.name === p.queue)!;
    expect(mine.jobs).toMatchObject({ completed: 5, failed: 3 });
    for (const state of JOB_STATES) expect(await shown(queue, `jobs-${state}`), state).toBe(numbers.format(mine.jobs[state]));
    expect(await shown(queue, 'throughput-completed')).toBe(numbers.format(sum(mine.throughput.completed)));
    expect(await shown(queue, 'throughput-failed')).toBe(numbers.format(sum(mine.throughput.failed)));
    expect(sum(mine.throughput.completed)).toBe(5);

    const batchRow = queue.locator('[data-testid="batch"][data-batch-id="browser-1"]');
    const batch = mine.batches.find((entry) => entry.batchId === 'browser-1')!;
    expect(batch).toMatchObject({ total: 8, succeeded: 5, deadLettered: 3, pending: 0, done: true });
    expect(await shown(batchRow, 'batch-succeeded')).toBe(String(batch.succeeded));
    expect(await shown(batchRow, 'batch-dead-lettered')).toBe(String(batch.deadLettered));
    expect(await shown(batchRow, 'batch-pending')).toBe(String(batch.pending));
    expect(await shown(batchRow, 'batch-total')).toBe(String(batch.total));
    expect(await shown(batchRow, 'batch-state')).toBe('done');

    const listing = (await (
      await api.call(`/v1/dead-letters?queue=${p.queue}&limit=0`, { role: 'read' })
    ).json()) as Overview['queues'][number]['deadLetters'];
    expect(listing.total).toBe(3);
    expect(mine.deadLetters.groups).toEqual(listing.groups);
    expect(await shown(queue, 'dlq-total')).toBe(String(listing.total));
    const groupRows = queue.getByTestId('dlq-group');
    expect(await groupRows.count()).toBe(listing.groups.length);
    for (const group of listing.groups) {
      const row = queue.locator(
        `[data-testid="dlq-group"][data-limit-key="${group.limitKey ?? ''}"][data-status="${group.status ?? ''}"][data-reason="${group.reason}"]`,
      );
      expect(await shown(row, 'dlq-count')).toBe(String(group.count));
    }

    const limit = before.limits.find((entry) => entry.key === 'browser-key')!;
    const limitRow = page.locator('[data-testid="limit"][data-limit-key="browser-key"]');
    expect(await shown(limitRow, 'limit-in-flight')).toBe(String(limit.inFlight));
    expect(await shown(limitRow, 'limit-queued')).toBe(String(limit.queued));
    expect(await shown(limitRow, 'limit-recent-429s')).toBe(String(limit.recent429s));
    expect(await shown(limitRow, 'limit-effective-rate')).toBe(
      limit.effectiveRate === null ? '\u2014' : `${numbers.format(limit.effectiveRate)}/s`,
    );

    // Replay the 404 group: the first click arms the button, the second replays.
    const gone = queue.locator('[data-testid="dlq-group"][data-status="404"]');
    expect(await shown(gone, 'dlq-count')).toBe('2');
    await gone.getByTestId('dlq-replay').click();
    await gone.locator('[data-testid="dlq-replay"][data-armed="true"]').waitFor();
    await gone.getByTestId('dlq-replay').click();
    await page
      .getByTestId('notice')
      .getByText(/^Replayed 2 dead letters/)
      .waitFor();
    await gone.waitFor({ state: 'detached', timeout: 15_000 });
    await batchRow.getByTestId('batch-succeeded').getByText('7', { exact: true }).waitFor({ timeout: 15_000 });

    // …and the API agrees.
    const after = await overview(api);
    await pageReadingSince(page, after.generatedAt);
    const replayed = after.queues.find((entry) => entry.name === p.queue)!;
    expect(replayed.batches.find((entry) => entry.batchId === 'browser-1')).toMatchObject({
      total: 8,
      succeeded: 7,
      deadLettered: 1,
      pending: 0,
      done: true,
    });
    expect(replayed.deadLetters.groups.map((group) => [group.status, group.count])).toEqual([[422, 1]]);
    expect(await shown(batchRow, 'batch-dead-lettered')).toBe('1');
    expect(await shown(queue, 'dlq-total')).toBe('1');
    expect(await shown(queue, 'jobs-completed')).toBe(numbers.format(replayed.jobs.completed));
    expect(replayed.jobs.completed).toBe(7);
    expect(p.requestsTo('/gone')).toHaveLength(4);
    expect(problems).toEqual([]);

    mkdirSync(join(packageRoot(), 'test-results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.length).toBeGreaterThan(10_000);

    // bull-board, same sign-in, renders the queue from node_modules' assets alone.
    const board = await page.goto(`${api.url}/dashboard`);
    expect(board?.status()).toBe(200);
    await page.getByText(p.queue, { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(`${api.url}/dashboard`);
    // Nothing was fetched from anywhere but the server: no CDN, no web fonts.
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);

    // Redis gone: the page says so, with the API's message, rather than showing old numbers as current.
    await page.goto(`${api.url}/`);
    await queue.waitFor();
    await redis().server.kill();
    try {
      await page
        .getByTestId('error')
        .getByText(/Redis is not answering; try again shortly \(REDIS_UNAVAILABLE\)/)
        .waitFor({ timeout: 15_000 });
      expect(await page.locator('#content.stale').count()).toBe(1);
    } finally {
      await redis().server.restart();
    }
    // This Redis keeps no data across a restart, so the session is gone with it (production runs
    // Redis with AOF): the page says so and asks to sign in again, then reads afresh.
    await page.getByText(/the session has ended/).waitFor({ timeout: 15_000 });
    await page.getByLabel('API token').fill(TOKENS.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('error').waitFor({ state: 'hidden', timeout: 15_000 });
    await page.locator('#content:not(.stale)').waitFor({ timeout: 15_000 });
    expect(await page.locator('#content.stale').count()).toBe(0);
  });
});
