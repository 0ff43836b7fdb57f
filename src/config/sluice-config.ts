import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError, SluiceError, errorMessage } from '../errors.js';
import { issuesFromZod } from './issues.js';
import { headersSchema } from './headers-schema.js';
import { authSchema } from '../auth/auth-config.js';
import { circuitSettingSchema } from './circuit-schema.js';
import { targetTlsSchema } from './tls-schema.js';

/**
 * The sluice config file: targets (base URL, default headers, limits) and limits for other keys.
 * Limits are parsed and checked here; they are enforced by the limits layer.
 */

const NAME = /^[A-Za-z0-9_.:-]+$/;

export const limitsSchema = z
  .strictObject({
    requestsPerSecond: z.number().positive().max(1_000_000).optional(),
    requestsPerMinute: z.number().positive().max(60_000_000).optional(),
    burst: z.number().int().min(1).max(1_000_000).optional(),
    concurrency: z.number().int().min(1).max(100_000).optional(),
  })
  .superRefine((limits, ctx) => {
    if (limits.requestsPerSecond !== undefined && limits.requestsPerMinute !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['requestsPerMinute'], message: 'give requestsPerSecond or requestsPerMinute, not both' });
    }
    if (limits.burst !== undefined && limits.requestsPerSecond === undefined && limits.requestsPerMinute === undefined) {
      ctx.addIssue({ code: 'custom', path: ['burst'], message: 'burst needs requestsPerSecond or requestsPerMinute' });
    }
    if (Object.keys(limits).length === 0) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give at least one of requestsPerSecond, requestsPerMinute, concurrency' });
    }
  });

export const targetSchema = z
  .strictObject({
    baseUrl: z.string().refine((value) => /^https?:\/\//i.test(value) && URL.canParse(value), 'expected an absolute http(s) URL'),
    // The same rules as operation headers: a bad name fails at start-up, not on every request.
    headers: headersSchema.optional(),
    limits: limitsSchema.optional(),
    /** The circuit breaker of the key named after the target (see circuit-schema.ts). Default: on, with default settings. */
    circuit: circuitSettingSchema.optional(),
    /** Credentials, read from the worker's environment (see src/auth). */
    auth: authSchema.optional(),
    /** May this target's host resolve to loopback, private, link-local or metadata addresses? Default false. */
    allowPrivateAddresses: z.boolean().default(false),
    /** A private CA, a client certificate, the name to verify (see tls-schema.ts). For an https baseUrl. */
    tls: targetTlsSchema.optional(),
  })
  .superRefine((target, ctx) => {
    if (target.tls && /^http:/i.test(target.baseUrl)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls needs an https:// baseUrl' });
    }
  });

/** `api.example.com`, `*.example.com` (any subdomain), either with `:port`; or `*` (any host). */
const hostPattern = z
  .string()
  .regex(
    /^(\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/,
    'expected a host such as api.example.com, *.example.com or api.example.com:8443',
  )
  .transform((pattern) => pattern.toLowerCase());

export const sluiceConfigSchema = z
  .strictObject({
    targets: z.record(z.string().regex(NAME, 'target names may hold letters, digits and _ . : -'), targetSchema).default({}),
    limits: z.record(z.string().min(1), limitsSchema).default({}),
    /** Circuit breakers of limit keys that are not target names (a host, a shared key); `false` turns one off. */
    circuits: z.record(z.string().min(1), circuitSettingSchema).optional(),
    /** Hosts operations may call besides the targets' own (see src/config/destinations.ts). */
    allowedHosts: z.array(hostPattern).default([]),
    /**
     * Where workers read upload files from and write downloads (and paginated items) to. Operations
     * name paths relative to these; absent = the feature is refused.
     */
    files: z
      .strictObject({
        uploadDir: z
          .string()
          .min(1)
          .refine((path) => path.startsWith('/'), 'expected an absolute directory path')
          .optional(),
        downloadDir: z
          .string()
          .min(1)
          .refine((path) => path.startsWith('/'), 'expected an absolute directory path')
          .optional(),
      })
      .optional(),
  })
  .superRefine((config, ctx) => {
    for (const issue of tlsOriginConflicts(config.targets)) ctx.addIssue({ code: 'custom', ...issue });
  });

export type Limits = z.infer<typeof limitsSchema>;
export type Target = z.infer<typeof targetSchema>;
export type SluiceConfig = z.infer<typeof sluiceConfigSchema>;

export const EMPTY_CONFIG: SluiceConfig = Object.freeze({ targets: {}, limits: {}, allowedHosts: [] });

/**
 * TLS settings belong to an origin (its connections carry them), so targets that share an origin
 * must agree on them: otherwise one target's client certificate would go with the other's requests.
 */
function tlsOriginConflicts(targets: Record<string, Target>): { path: string[]; message: string }[] {
  const first = new Map<string, [name: string, tls: string]>();
  const conflicts: { path: string[]; message: string }[] = [];
  for (const [name, target] of Object.entries(targets)) {
    if (!URL.canParse(target.baseUrl)) continue;
    const origin = new URL(target.baseUrl).origin;
    const tls = JSON.stringify(Object.entries(target.tls ?? {}).sort());
    const seen = first.get(origin);
    if (!seen) first.set(origin, [name, tls]);
    else if (seen[1] !== tls) {
      conflicts.push({
        path: ['targets', name, 'tls'],
        message: `targets ${seen[0]} and ${name} share the origin ${origin}, so they need the same tls settings (or none)`,
      });
    }
  }
  return conflicts;
}

/** Validates a parsed config object; throws a ConfigError listing every problem with its path. */
export function parseSluiceConfig(value: unknown, source = 'config'): SluiceConfig {
  const parsed = sluiceConfigSchema.safeParse(value);
  if (!parsed.success) throw new ConfigError(source, issuesFromZod(parsed.error.issues));
  return parsed.data;
}

/** Reads and validates a config file. */
export async function loadSluiceConfig(path: string): Promise<SluiceConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SluiceError(`cannot read config file ${path}: ${errorMessage(error)}`, { code: 'CONFIG_UNREADABLE', cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [{ path: '', message: `not valid JSON: ${errorMessage(error)}` }]);
  }
  return parseSluiceConfig(value, path);
}
