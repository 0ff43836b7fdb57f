import { z } from 'zod';
import type { Issue } from '../errors.js';

/**
 * How a target authenticates. Secrets are never in the config, in jobs or in Redis: the config
 * names environment variables, read by each worker from its own environment.
 */

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as ORDERS_API_KEY');
const httpUrl = z.string().refine((value) => /^https?:\/\//i.test(value) && URL.canParse(value), 'expected an absolute http(s) URL');

export const authSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('apiKey'),
      in: z.enum(['header', 'query']).default('header'),
      name: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a header or query parameter name'),
      valueFromEnv: envName,
    }),
    z.strictObject({ type: z.literal('bearer'), tokenFromEnv: envName }),
    z.strictObject({ type: z.literal('basic'), usernameFromEnv: envName, passwordFromEnv: envName }),
    z.strictObject({
      type: z.literal('oauth2ClientCredentials'),
      tokenUrl: httpUrl,
      clientIdFromEnv: envName,
      clientSecretFromEnv: envName,
      scope: z.string().min(1).optional(),
      audience: z.string().min(1).optional(),
      /** How the client authenticates to the token endpoint: HTTP Basic (RFC 6749's default) or form fields. */
      clientAuth: z.enum(['basic', 'body']).default('basic'),
    }),
  ],
  { error: 'expected type apiKey, bearer, basic or oauth2ClientCredentials' },
);

export type AuthConfig = z.infer<typeof authSchema>;

/** The environment variables an auth config reads, with the field that names each. */
export function envNamesOf(auth: AuthConfig): [field: string, name: string][] {
  switch (auth.type) {
    case 'apiKey':
      return [['valueFromEnv', auth.valueFromEnv]];
    case 'bearer':
      return [['tokenFromEnv', auth.tokenFromEnv]];
    case 'basic':
      return [
        ['usernameFromEnv', auth.usernameFromEnv],
        ['passwordFromEnv', auth.passwordFromEnv],
      ];
    case 'oauth2ClientCredentials':
      return [
        ['clientIdFromEnv', auth.clientIdFromEnv],
        ['clientSecretFromEnv', auth.clientSecretFromEnv],
      ];
  }
}

/** Every variable that a target's auth needs and the environment lacks (or holds empty). */
export function missingSecrets(
  targets: Record<string, { auth?: AuthConfig | undefined }>,
  env: Record<string, string | undefined>,
): Issue[] {
  const issues: Issue[] = [];
  for (const [name, target] of Object.entries(targets)) {
    if (!target.auth) continue;
    for (const [field, variable] of envNamesOf(target.auth)) {
      if (!env[variable]) issues.push({ path: `targets.${name}.auth.${field}`, message: `environment variable ${variable} is not set` });
    }
  }
  return issues;
}
