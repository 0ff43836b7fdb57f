import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { issuesFromZod } from './issues.js';
import { QUEUE_NAME } from '../redis/keys.js';
import { isClusterUrl, parseRedisUrl } from '../redis/redis-url.js';

/**
 * The environment, parsed once by a composition root. Defaults live here; `.env.example`
 * documents every variable (a test keeps the two in step).
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export { QUEUE_NAME };

export const envSchema = z.object({
  /** One server (`redis://`, `rediss://`), or a Redis Cluster by its seed nodes (`redis+cluster://`, `rediss+cluster://`; see redis/redis-url.ts). */
  REDIS_URL: z
    .string()
    .regex(/^rediss?(\+cluster)?:\/\//, 'expected a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL')
    .superRefine((url, context) => {
      if (isClusterUrl(url)) {
        try {
          parseRedisUrl(url);
        } catch (error) {
          context.addIssue({ code: 'custom', message: (error as Error).message });
        }
        // ioredis parses it with WHATWG URL: a port past 65535 or a space would throw "Invalid URL" later.
      } else if (!URL.canParse(url)) {
        context.addIssue({
          code: 'custom',
          message: 'not a valid URL (a port from 1 to 65535; spaces and other special characters percent-encoded)',
        });
      }
    })
    .default('redis://127.0.0.1:6379'),
  SLUICE_CONFIG: z.string().min(1).optional(),
  SLUICE_QUEUE: z.string().regex(QUEUE_NAME, 'letters, digits, _ . - (at most 100)').default('default'),
  SLUICE_CONCURRENCY: int(1, 5_000).default(50),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(0, 3_600_000).default(30_000),
  SLUICE_DEDUP_WINDOW_SECONDS: int(1, 365 * 86_400).default(86_400),
  /** Whether bulk enqueues write lanes (queue/lanes.ts): off until every worker of the fleet runs a version that reads them. */
  SLUICE_LANES: z.enum(['on', 'off'], { error: 'expected on or off' }).default('off'),
  /** Operations of one bulk enqueue that travel together as one job at most (queue/lanes.ts). */
  SLUICE_LANE_SIZE: int(1, 5_000).default(100),
  /** Replicas that must have an enqueue before it is answered (WAIT; see ProducerOptions.replicas): 0, the master alone. */
  SLUICE_ENQUEUE_REPLICAS: int(0, 16).default(0),
  SLUICE_ENQUEUE_REPLICAS_TIMEOUT_MS: int(1, 60_000).default(2_000),
  SLUICE_KEEP_COMPLETED_SECONDS: int(0, 365 * 86_400).default(3_600),
  SLUICE_KEEP_FAILED_SECONDS: int(0, 365 * 86_400).default(86_400),
  SLUICE_BATCH_RETENTION_SECONDS: int(60, 365 * 86_400).default(7 * 86_400),
  SLUICE_RESULT_MAX_BYTES: int(0, 10 * 1024 * 1024).default(8_192),
  SLUICE_MAX_RESPONSE_BYTES: int(1_024, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  SLUICE_LOCK_DURATION_MS: int(1_000, 3_600_000).default(30_000),
  SLUICE_STALLED_INTERVAL_MS: int(1_000, 3_600_000).default(30_000),
  SLUICE_METRICS_INTERVAL_MS: int(0, 60_000)
    .refine((ms) => ms === 0 || ms >= 100, 'expected 0 (off) or at least 100')
    .default(5_000),
  /** Whether workers and the server add prom-client's process_* and nodejs_* metrics (they cost a worker ~5–10 % CPU per job at full speed). */
  SLUICE_PROCESS_METRICS: z.enum(['true', 'false'], { error: 'expected true or false' }).default('true'),
  /** `token:role,token:role` (roles read, enqueue, admin); required by `sluice server`. Parsed by server/api-tokens.ts. */
  SLUICE_API_TOKENS: z.string().optional(),
  SLUICE_SERVER_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_SERVER_PORT: int(0, 65_535).default(3_000),
  SLUICE_API_MAX_BODY_BYTES: int(1_024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  SLUICE_API_HEADERS_TIMEOUT_MS: int(1, 3_600_000).default(10_000),
  SLUICE_API_REQUEST_TIMEOUT_MS: int(0, 3_600_000).default(60_000),
  SLUICE_SESSION_IDLE_SECONDS: int(60, 365 * 86_400).default(1_800),
  SLUICE_SESSION_MAX_SECONDS: int(60, 365 * 86_400).default(43_200),
  /** Proxies whose X-Forwarded-For names the client: `true`, a hop count, or addresses/CIDRs separated by commas. */
  SLUICE_TRUST_PROXY: z
    .string()
    .regex(/^(?:true|\d{1,2}|[\w.:/-]+(?:\s*,\s*[\w.:/-]+)*)$/, 'expected true, a hop count, or addresses/CIDRs separated by commas')
    .optional(),
});

export type Env = z.infer<typeof envSchema>;

/** Parses the environment; throws a ConfigError listing every bad variable. */
export function parseEnv(env: Record<string, string | undefined>): Env {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new ConfigError('the environment', issuesFromZod(parsed.error.issues));
  return parsed.data;
}
