import { describe, expect, it } from 'vitest';
import { NetworkError, TlsError } from '../../src/errors.js';
import { classifyError } from '../../src/http/classify.js';
import { tlsFailure } from '../../src/http/tls-failures.js';

describe('tlsFailure', () => {
  it.each([
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'TLS_CERT_UNTRUSTED', "the server's certificate is not trusted"],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'TLS_CERT_UNTRUSTED', 'tls.caFile'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'TLS_CERT_UNTRUSTED', 'not trusted'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'TLS_CERT_UNTRUSTED', 'not trusted'],
    ['CERT_HAS_EXPIRED', 'TLS_CERT_EXPIRED', 'has expired'],
    ['CERT_NOT_YET_VALID', 'TLS_CERT_EXPIRED', 'not valid yet'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'TLS_CERT_NAME_MISMATCH', 'tls.servername'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'TLS_CLIENT_CERT_REFUSED', 'tls.certFile and tls.keyFile'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'TLS_CLIENT_CERT_REFUSED', 'refused the client certificate'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'TLS_CLIENT_CERT_REFUSED', 'refused the client certificate'],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'TLS_PROTOCOL_VERSION', 'tls.minVersion'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'TLS_PROTOCOL_VERSION', 'no TLS version in common'],
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'TLS_HANDSHAKE_FAILED', 'requires a client certificate'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'TLS_HANDSHAKE_FAILED', 'handshake failed'],
  ])('%s is %s, permanent', (nodeCode, code, words) => {
    const failure = tlsFailure(nodeCode);
    expect(failure?.code).toBe(code);
    expect(failure?.what).toContain(words);
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC', 'toString', ''])(
    '%j is not a permanent TLS failure (a network error, retried)',
    (nodeCode) => {
      expect(tlsFailure(nodeCode)).toBeUndefined();
    },
  );
});

describe('classifyError of TLS failures', () => {
  it('never retries a TlsError; a network error stays retryable', () => {
    expect(classifyError(new TlsError('x', 'TLS_CERT_UNTRUSTED'))).toEqual({ kind: 'permanent', code: 'TLS_CERT_UNTRUSTED' });
    expect(classifyError(new NetworkError('x', 'ECONNRESET'))).toEqual({ kind: 'retry', retryAfterMs: undefined, code: 'ECONNRESET' });
  });
});
