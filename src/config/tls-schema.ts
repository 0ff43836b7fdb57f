import { z } from 'zod';

/**
 * A target's TLS settings: the CA that signs its server certificate, a client certificate, the name
 * to verify, the lowest protocol version. Only file paths and a variable name live in the config;
 * the worker reads the files once when it starts (see tls-files.ts). There is no way to turn
 * certificate verification off.
 */

const absoluteFile = z
  .string()
  .min(1)
  .refine((path) => path.startsWith('/'), 'expected an absolute file path');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name such as ORDERS_KEY_PASSPHRASE');

/** A DNS name (no port, no IP: a certificate is verified against a name given here). */
const serverName = z
  .string()
  .regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, 'expected a DNS name such as api.internal.example')
  .transform((name) => name.toLowerCase());

const NO_VERIFY_SWITCH =
  'sluice always verifies the server certificate; for a server whose certificate a private CA signs, give that CA in caFile';

export const targetTlsSchema = z
  .strictObject({
    /** PEM file of the CA certificate(s) to trust for this target, instead of the system's roots. */
    caFile: absoluteFile.optional(),
    /** PEM file of the client certificate (chain) presented to the server (mutual TLS). With keyFile. */
    certFile: absoluteFile.optional(),
    /** PEM file of the client certificate's private key. With certFile. */
    keyFile: absoluteFile.optional(),
    /** The environment variable holding the key's passphrase, when the key is encrypted. */
    passphraseFromEnv: envName.optional(),
    /** The name sent (SNI) and verified in the server certificate, when it differs from baseUrl's host. */
    servername: serverName.optional(),
    /** The lowest TLS version accepted. Default: Node's (TLSv1.2). */
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
    // Named so that the refusal says why, rather than "unknown field".
    rejectUnauthorized: z.never({ error: NO_VERIFY_SWITCH }).optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.certFile !== undefined && tls.keyFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'certFile needs keyFile (the private key of the client certificate)' });
    }
    if (tls.keyFile !== undefined && tls.certFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'keyFile needs certFile (the client certificate)' });
    }
    if (tls.passphraseFromEnv !== undefined && tls.keyFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['passphraseFromEnv'], message: 'passphraseFromEnv needs keyFile' });
    }
  });

export type TargetTls = z.infer<typeof targetTlsSchema>;
