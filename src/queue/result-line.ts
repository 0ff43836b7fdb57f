import type { ResponseHeaders } from '../http/http-client.js';

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
  result?: { headers: ResponseHeaders; body: unknown; bodyBytes: number; bodyTruncated: boolean };
  /** For dead letters. */
  reason?: string;
  error?: string;
  excerpt?: string;
}
