import { z } from 'zod';
import type { Issue } from '../errors.js';
import { standardWebhooksKey, templateProblem, templateUses } from './request-signature.js';

/**
 * How a target authenticates. Secrets are never in the config, in jobs or in Redis: the config
 * names environment variables, read by each worker from its own environment.
 */

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as ORDERS_API_KEY');
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const headerName = z
  .string()
  .regex(token, 'expected a header name')
  .transform((name) => name.toLowerCase());
const httpUrl = z.string().refine((value) => /^https?:\/\//i.test(value) && URL.canParse(value), 'expected an absolute http(s) URL');

/** A signature over a canonical string of the request (see request-signature.ts for the placeholders). */
const hmacSchema = z
  .strictObject({
    type: z.literal('hmac'),
    secretFromEnv: envName,
    algorithm: z.enum(['sha256', 'sha512', 'sha1']).default('sha256'),
    template: z
      .string()
      .min(1)
      .superRefine((template, ctx) => {
        const problem = templateProblem(template);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    header: headerName,
    /** Written before the signature, e.g. `sha256=`. */
    prefix: z
      .string()
      .regex(/^[\x21-\x7e]*$/, 'expected visible ASCII characters')
      .default(''),
    encoding: z.enum(['hex', 'base64']).default('hex'),
    timestampHeader: headerName.optional(),
    timestampFormat: z.enum(['unixSeconds', 'unixMilliseconds', 'iso']).default('unixSeconds'),
  })
  .superRefine((auth, ctx) => {
    if (templateUses(auth.template, 'timestamp') && auth.timestampHeader === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['timestampHeader'],
        message: 'the template signs {timestamp}: name the header that carries it to the receiver',
      });
    }
    if (auth.timestampHeader !== undefined && auth.timestampHeader === auth.header) {
      ctx.addIssue({ code: 'custom', path: ['timestampHeader'], message: 'expected a header other than the signature header' });
    }
  });

export const authSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('apiKey'),
      in: z.enum(['header', 'query']).default('header'),
      name: z.string().regex(token, 'expected a header or query parameter name'),
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
    hmacSchema,
    /** The Standard Webhooks preset (request-signature.ts): the secret is `whsec_` + base64. */
    z.strictObject({ type: z.literal('standardWebhooks'), secretFromEnv: envName }),
  ],
  { error: 'expected type apiKey, bearer, basic, oauth2ClientCredentials, hmac or standardWebhooks' },
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
    case 'hmac':
    case 'standardWebhooks':
      return [['secretFromEnv', auth.secretFromEnv]];
  }
}

/** Auth that signs each request, and so needs its whole body before sending it. */
export const signsRequests = (auth: AuthConfig | undefined): boolean => auth?.type === 'hmac' || auth?.type === 'standardWebhooks';

/**
 * Every variable that a target's auth needs and the environment lacks (or holds empty), and a
 * Standard Webhooks secret that is not one. Messages name variables, never their values.
 */
export function secretIssues(targets: Record<string, { auth?: AuthConfig | undefined }>, env: Record<string, string | undefined>): Issue[] {
  const issues: Issue[] = [];
  for (const [name, target] of Object.entries(targets)) {
    if (!target.auth) continue;
    for (const [field, variable] of envNamesOf(target.auth)) {
      const path = `targets.${name}.auth.${field}`;
      const value = env[variable];
      if (!value) issues.push({ path, message: `environment variable ${variable} is not set` });
      else if (target.auth.type === 'standardWebhooks' && !standardWebhooksKey(value))
        issues.push({ path, message: `environment variable ${variable} is not a Standard Webhooks secret (expected whsec_ and base64)` });
    }
  }
  return issues;
}
