/**
 * Which statuses an operation accepts: its `expect.status`, else any 2xx. Read by the client (an
 * accepted body of a download goes to its file) and by classify.ts (what a status means).
 */
export function isExpectedStatus(status: number, expected: readonly number[] | undefined): boolean {
  return expected ? expected.includes(status) : status >= 200 && status < 300;
}
