import { z } from 'zod';

/** A result line (see queue/result-line.ts) as the API documents it. */
export const resultLineSchema = z.object({
  id: z.string().describe('the operation id (its first job id)'),
  jobId: z.string(),
  idempotencyKey: z.string(),
  meta: z.unknown().optional().describe("the operation's meta, echoed"),
  outcome: z.enum(['succeeded', 'deadLettered']),
  status: z.number().int().optional(),
  attempts: z.number().int(),
  durationMs: z.number().optional(),
  result: z
    .object({ headers: z.record(z.string(), z.string()), body: z.unknown().optional(), bodyBytes: z.number(), bodyTruncated: z.boolean() })
    .passthrough()
    .optional(),
  pagination: z.object({ pages: z.number(), items: z.number() }).passthrough().optional(),
  reason: z.string().optional(),
  error: z.string().optional(),
  excerpt: z.string().optional(),
});
