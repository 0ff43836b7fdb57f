/** The few response headers kept in a result (the http layer fills them). */
export interface ResultHeaders {
  contentType?: string;
  location?: string;
  etag?: string;
  requestId?: string;
}

/** What `sluice results` prints for one operation: one JSON line. */
export interface ResultLine {
  id: string;
  jobId: string;
  idempotencyKey: string;
  meta?: unknown;
  outcome: 'succeeded' | 'deadLettered';
  status?: number;
  attempts: number;
  durationMs?: number;
  /**
   * For successes: the response, trimmed. A downloaded body has no `body`: `download` says where it
   * was written (on the worker's host) with its decoded size and SHA-256.
   */
  result?: {
    headers: ResultHeaders;
    body?: unknown;
    bodyBytes: number;
    bodyTruncated: boolean;
    download?: { path: string; bytes: number; sha256: string };
  };
  /** For a paginated operation: pages and items read, and where the items went. */
  pagination?: { pages: number; items: number; file?: { path: string; bytes: number; sha256: string }; childBatchId?: string };
  /** For dead letters. */
  reason?: string;
  error?: string;
  excerpt?: string;
}
