import { describe, expect, it } from 'vitest';
import { warmUp } from '../../src/worker/warm-up.js';
import { waitFor } from '../helpers/redis.js';

const openTcp = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap' || kind === 'TCPSocketWrap').length;

describe('warmUp', () => {
  it('runs the job path against its own loopback server and leaves nothing open', async () => {
    const before = openTcp();
    await warmUp(5);
    // Closed sockets leave the handle list on a later turn of the event loop.
    await waitFor(() => openTcp() <= before, { timeoutMs: 2_000, what: 'the warm-up server and its sockets closed' });
    expect(openTcp()).toBeLessThanOrEqual(before);
  });
});
