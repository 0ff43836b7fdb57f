import { z } from 'zod';

/** A result line (see queue/result-line.ts) as the API documents it. */
export const resultLineSchema = z.object({
  id: z.string().describe('the operation id (its first job id)'),
  jobId: z.string(),
  idempotencyKey: z.string(),
  meta: z.unknown().optional().describe("the operation's meta, echoed"),
  outcome: z
    .enum(['succeeded', 'deadLettered', 'duplicate'])
    .describe('duplicate: not run, an earlier operation holds its idempotency key'),
  duplicateOf: z.string().optional().describe('for a duplicate: the job holding its idempotency key'),
  duplicateOfBatch: z.string().optional().describe("for a duplicate: that job's batch"),
  firstOutcome: z.enum(['succeeded', 'deadLettered']).optional().describe('for a duplicate: how that job ended, once it has'),
  status: z.number().int().optional(),
  attempts: z.number().int(),
  finishedAt: z
    .string()
    .optional()
    .describe('when it ended (ISO 8601); not for a duplicate, nor in lines written before this field was added'),
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
