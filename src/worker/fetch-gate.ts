/** What the fetch gate decides on: a worker process's jobs and permits (see op-permits.ts) right now. */
export interface FetchGateState {
  /** The process's permits in all (its configured concurrency). */
  concurrency: number;
  /** Jobs running (single jobs and lanes). */
  inHand: number;
  /** Jobs BullMQ fetched and has not started yet, and how many of those are lanes. */
  fetched: number;
  fetchedLanes: number;
  /** Permits no operation holds. */
  freePermits: number;
}

/**
 * The fetch gate: the concurrency BullMQ is given, which it fetches jobs up to. BullMQ fetches
 * several jobs in a row before it starts any, so the jobs it fetched count as much as those running:
 * a single job fetched will take one free permit, a lane every free one. While a fetched lane waits
 * to start, nothing more is fetched; a process whose permits are taken fetches no more lanes.
 */
export function fetchConcurrency(state: FetchGateState): number {
  const { concurrency, inHand, fetched, fetchedLanes, freePermits } = state;
  const unclaimed = fetchedLanes > 0 ? 0 : Math.max(0, freePermits - fetched);
  return Math.min(concurrency, Math.max(1, inHand + fetched + unclaimed));
}
