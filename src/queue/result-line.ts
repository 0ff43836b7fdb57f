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
  /** For successes: the response, trimmed. */
  result?: { headers: ResultHeaders; body: unknown; bodyBytes: number; bodyTruncated: boolean };
  /** For dead letters. */
  reason?: string;
  error?: string;
  excerpt?: string;
}
