/**
 * The "Signed requests" examples of docs/configuration.md, run as written: the config and the
 * operation go through a real producer, worker and Redis to the doc's receiver, started as its own
 * `node` process, which verifies with the `standardwebhooks` package. The custom HMAC example must
 * be a valid target auth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createBatches } from '../../src/outcomes/batches.js';
import { createProducer } from '../../src/queue/producer.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { testLogger, uniqueQueue, useRedisServer, waitFor } from '../helpers/redis.js';

const redis = useRedisServer();
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The fenced blocks of a section of a Markdown file, with their info strings, in order. */
function codeBlocks(file: string, heading: string): { lang: string; code: string }[] {
  const text = readFileSync(`${ROOT}/${file}`, 'utf8');
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`${file} has no "## ${heading}" section`);
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({ lang: match[1]!, code: match[2]! }));
}

/** Starts the receiver snippet with `node` (from the repository, so it finds standardwebhooks); resolves its URL. */
async function startReceiver(code: string, secret: string): Promise<{ url: string; output: () => string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOOKS_SECRET: secret, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill();
    await exited;
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const port = await waitFor(() => /listening on (\d+)/.exec(output)?.[1], { what: `the receiver to listen (output: ${output})` });
  return { url: `http://127.0.0.1:${port}`, output: () => output, child };
}

describe('docs/configuration.md, Signed requests', () => {
  const blocks = codeBlocks('docs/configuration.md', 'Signed requests');
  const json = blocks.filter((block) => block.lang === 'json').map((block) => JSON.parse(block.code) as Record<string, unknown>);
  const receiver = blocks.find((block) => block.lang === 'js');

  it('the config and operation reach the receiver snippet, which verifies them; a forged request gets its 401', async () => {
    expect(json.length).toBeGreaterThanOrEqual(3);
    expect(receiver).toBeDefined();
    const [docConfig, docOperation] = json as [{ targets: Record<string, Record<string, unknown>> }, Record<string, unknown>];
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const started = await startReceiver(receiver!.code, secret);

    // The doc's target, pointed at the local receiver (which needs the loopback allowance).
    const [name, target] = Object.entries(docConfig.targets)[0]!;
    const config = parseSluiceConfig({ targets: { [name]: { ...target, baseUrl: started.url, allowPrivateAddresses: true } } });
    const queue = uniqueQueue('signed-doc');
    const producer = createProducer({ connection: redis().url, queue, config });
    const worker = createSluiceWorker({
      connection: redis().url,
      logger: testLogger(),
      queue,
      config,
      env: { HOOKS_SECRET: secret },
      warmUp: false,
    });
    onTestFinished(async () => {
      await worker.close({ force: true });
      await producer.close();
    });
    await worker.ready();
    const { batchId } = await producer.enqueueMany([docOperation]);
    const batches = createBatches(redis().client, queue);
    const status = await waitFor(async () => {
      const current = await batches.status(batchId);
      return current?.pending === 0 ? current : undefined;
    });
    expect(status).toMatchObject({ succeeded: 1, deadLettered: 0 });
    await waitFor(() => started.output().includes('verified evt_1042 order.paid'), { what: 'the receiver to log the event' });

    // The receiver does check: the same body with a made-up signature is refused.
    const forged = await fetch(`${started.url}/events`, {
      method: 'POST',
      headers: { 'webhook-id': 'evt_1042', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,Zm9yZ2Vk' },
      body: JSON.stringify(docOperation['json']),
    });
    expect(forged.status).toBe(401);
  });

  it('the custom HMAC example is a valid target auth', () => {
    const auth = json.find((block) => block['type'] === 'hmac');
    expect(auth).toBeDefined();
    const config = parseSluiceConfig({ targets: { partner: { baseUrl: 'https://partner.example.com', auth } } });
    expect(config.targets['partner']!.auth).toMatchObject({ type: 'hmac', header: 'x-signature', timestampHeader: 'x-timestamp' });
  });
});
