/**
 * Which TLS errors mean the handshake can never succeed as configured, and what to tell people.
 * Node reports certificate verification failures with OpenSSL's X509 names (UNABLE_TO_VERIFY_LEAF_SIGNATURE)
 * and alerts from the server as ERR_SSL_<reason> (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED).
 * Anything not listed stays a network error (retried).
 */

export type TlsFailureCode =
  | 'TLS_CERT_UNTRUSTED'
  | 'TLS_CERT_EXPIRED'
  | 'TLS_CERT_NAME_MISMATCH'
  | 'TLS_CLIENT_CERT_REFUSED'
  | 'TLS_PROTOCOL_VERSION'
  | 'TLS_HANDSHAKE_FAILED';

export interface TlsFailure {
  code: TlsFailureCode;
  /** What went wrong, and which setting of the target is about it. */
  what: string;
}

const WHAT: Record<TlsFailureCode, string> = {
  TLS_CERT_UNTRUSTED:
    "the server's certificate is not trusted (for a server whose certificate a private CA signs, give that CA in the target's tls.caFile)",
  TLS_CERT_EXPIRED: "the server's certificate has expired or is not valid yet",
  TLS_CERT_NAME_MISMATCH: "the server's certificate is not issued for this host name (the target's tls.servername names the one to verify)",
  TLS_CLIENT_CERT_REFUSED: "the server refused the client certificate, or requires one (the target's tls.certFile and tls.keyFile)",
  TLS_PROTOCOL_VERSION: "the server and sluice have no TLS version in common (the target's tls.minVersion)",
  TLS_HANDSHAKE_FAILED: 'the TLS handshake failed (a server that requires a client certificate, or has no cipher in common, ends it so)',
};

const CODES: Record<string, TlsFailureCode> = {};
const add = (code: TlsFailureCode, names: string[]) => names.forEach((name) => (CODES[name] = code));

add('TLS_CERT_UNTRUSTED', [
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
add('TLS_CERT_EXPIRED', ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);
add('TLS_CERT_NAME_MISMATCH', ['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
add('TLS_CLIENT_CERT_REFUSED', [
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);
add('TLS_PROTOCOL_VERSION', [
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_VERSION_TOO_LOW',
]);
add('TLS_HANDSHAKE_FAILED', [
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_NO_SHARED_CIPHER',
  'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY',
  // Not TLS on the other end (an http:// port given as https://).
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** The permanent TLS failure that Node's error `code` names, or undefined (not TLS, or maybe transient). */
export function tlsFailure(code: string): TlsFailure | undefined {
  const failure = Object.hasOwn(CODES, code) ? CODES[code] : undefined;
  return failure ? { code: failure, what: WHAT[failure] } : undefined;
}
