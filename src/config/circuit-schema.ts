import { z } from 'zod';

/** Failures a circuit counts by default: the target unreachable or overwhelmed, not a refused request. */
export const DEFAULT_CIRCUIT_FAILURES = ['network', 'timeout', 502, 503, 504] as const;

/**
 * A limit key's circuit breaker: when most recent requests on the key fail in ways that mean the
 * target is down, the key opens and its operations wait (spending no attempts) while one probe at
 * a time checks whether the target is back. `false` turns it off.
 */
export const circuitSchema = z
  .strictObject({
    /** Open when at least this share of the attempts in the window failed. */
    failureRatio: z.number().gt(0).max(1).default(0.5),
    /** … and at least this many attempts were made in the window. */
    minAttempts: z.number().int().min(1).max(1_000_000).default(20),
    windowMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
    /** The first probe's delay after opening; it doubles after each failed probe, up to maxProbeIntervalMs. */
    probeIntervalMs: z.number().int().min(100).max(3_600_000).default(5_000),
    maxProbeIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
    /** An operation that has waited on an open circuit this long is dead-lettered (`circuit-open`). */
    maxOpenMs: z
      .number()
      .int()
      .min(1_000)
      .max(30 * 86_400_000)
      .default(86_400_000),
    /** What counts as a failure: `network` (refused, reset, DNS), `timeout`, and HTTP statuses. */
    failOn: z
      .array(
        z.union([z.enum(['network', 'timeout']), z.number().int().min(100).max(599)], {
          error: 'expected "network", "timeout" or an HTTP status (100 to 599)',
        }),
      )
      .min(1)
      .default([...DEFAULT_CIRCUIT_FAILURES]),
  })
  .superRefine((circuit, ctx) => {
    if (circuit.maxProbeIntervalMs < circuit.probeIntervalMs) {
      ctx.addIssue({ code: 'custom', path: ['maxProbeIntervalMs'], message: 'must be at least probeIntervalMs' });
    }
  });

export type Circuit = z.infer<typeof circuitSchema>;

/**
 * A target's or a key's `circuit` setting: the breaker's settings, or `false` for none. Parsed by
 * hand rather than as a union, so that a bad setting is reported field by field.
 */
export const circuitSettingSchema = z.unknown().transform((value, ctx): Circuit | false => {
  if (value === false) return false;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected an object of circuit settings, or false to turn the circuit breaker off' });
    return z.NEVER;
  }
  const parsed = circuitSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  // The issues as they are (an unknown field stays an unknown field), at their paths under this one.
  for (const issue of parsed.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
  return z.NEVER;
});

export type CircuitSetting = z.infer<typeof circuitSettingSchema>;

/** The settings of a key whose config says nothing. */
export const DEFAULT_CIRCUIT: Circuit = Object.freeze(circuitSchema.parse({}));
