/**
 * The demo API in a process of its own (see demo-api-process.ts): its arrival stamps and its strict
 * limiter are then not delayed by the test runner's own event loop, which spawns processes and
 * reads their logs meanwhile. Options come as JSON in argv[2]; it answers `read` messages with its
 * stats and arrivals, and exits when its parent disconnects.
 */
const { startDemoApi } = await import(new URL('../../dist/src/demo/demo-api.js', import.meta.url).href);

const api = await startDemoApi(JSON.parse(process.argv[2] ?? '{}'));
process.on('message', (message) => {
  if (message === 'read') process.send({ kind: 'read', stats: api.stats(), arrivals: api.arrivals() });
});
process.on('disconnect', () => {
  void api.close().finally(() => process.exit(0));
});
process.send({ kind: 'ready', url: api.url });
