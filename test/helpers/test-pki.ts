/**
 * A private CA made for one test file with the `openssl` CLI, in a temp dir: server certificates
 * (for 127.0.0.1 and localhost, or for a name only), client certificates, an encrypted key. Also a
 * `node:https` target that records each request and the client certificate it came with.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface TestPki {
  dir: string;
  /** The CA's certificate (PEM file). */
  caFile: string;
  /** A certificate and key for `127.0.0.1` and `localhost`. */
  server: { certFile: string; keyFile: string };
  /** A certificate and key for SERVER_NAME only (not for its IP). */
  namedServer: { certFile: string; keyFile: string };
  /** A client certificate (CN `sluice-worker`) and its key. */
  client: { certFile: string; keyFile: string };
  /** The client key, encrypted with PASSPHRASE. */
  encryptedClientKeyFile: string;
  /** Another CA, that signed nothing here. */
  otherCaFile: string;
  remove(): void;
}

export const PASSPHRASE = 'correct horse battery staple';
/** The name the named server's certificate is issued for (the one docs/configuration.md uses). */
export const SERVER_NAME = 'ledger.internal.example';

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

function newCa(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
}

function issue(dir: string, name: string, subject: string, extensions: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pki-'));
  newCa(dir, 'ca');
  newCa(dir, 'other-ca');
  issue(dir, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  issue(dir, 'named', `/CN=${SERVER_NAME}`, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`);
  issue(dir, 'client', '/CN=sluice-worker', 'extendedKeyUsage=clientAuth');
  openssl(dir, ['pkey', '-in', 'client.key', '-aes256', '-passout', `pass:${PASSPHRASE}`, '-out', 'client-encrypted.key']);
  const at = (file: string) => join(dir, file);
  return {
    dir,
    caFile: at('ca.pem'),
    server: { certFile: at('server.pem'), keyFile: at('server.key') },
    namedServer: { certFile: at('named.pem'), keyFile: at('named.key') },
    client: { certFile: at('client.pem'), keyFile: at('client.key') },
    encryptedClientKeyFile: at('client-encrypted.key'),
    otherCaFile: at('other-ca.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface HttpsTarget {
  /** `https://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Every request: method, path, and the CN of the client certificate it came with (if any). */
  requests: { method: string; path: string; clientCn: string | undefined; headers: Record<string, string | string[] | undefined> }[];
  /** TCP connections accepted (a refused address never gets one). */
  connections: number;
  close(): Promise<void>;
}

export interface HttpsAnswer {
  status: number;
  headers?: Record<string, string>;
}

/**
 * An https server on 127.0.0.1, port 0, with `cert`/`key` from the PKI and any other TLS options;
 * answers what `answer` says for a path, by default 200 `{"ok":true}`.
 */
export async function startHttpsTarget(
  cert: { certFile: string; keyFile: string },
  options: ServerOptions = {},
  answer: (path: string) => HttpsAnswer = () => ({ status: 200 }),
): Promise<HttpsTarget> {
  const target = { requests: [] as HttpsTarget['requests'], connections: 0 };
  const server = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile), ...options }, (request, response) => {
    const peer = (request.socket as TLSSocket).getPeerCertificate();
    const cn = peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : undefined;
    target.requests.push({ method: request.method!, path: request.url!, clientCn: cn, headers: request.headers });
    request.resume();
    const { status, headers } = answer(request.url!);
    request.on('end', () => response.writeHead(status, { 'content-type': 'application/json', ...headers }).end('{"ok":true}'));
  });
  server.on('connection', () => (target.connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(target, {
    url: `https://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
