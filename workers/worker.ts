// Process entry for a worker, for process managers that run a file rather than a command:
//   node dist/workers/worker.js [--queue Q] [--concurrency N]
// It is exactly `sluice worker`: config from the environment, signals handled, exit 0 on shutdown.
import { main } from '../src/cli/main.js';

process.exitCode = await main(['worker', ...process.argv.slice(2)]);
