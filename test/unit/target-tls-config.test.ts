/**
 * A target's `tls` settings: what the config schema accepts and refuses, and how the worker reads
 * the files once at start-up (every problem a ConfigError issue that names the config path).
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { loadTargetTls } from '../../src/config/tls-files.js';
import { createSluiceWorker } from '../../src/worker/sluice-worker.js';
import { testLogger } from '../helpers/redis.js';
import { PASSPHRASE, createTestPki } from '../helpers/test-pki.js';

const pki = createTestPki();
afterAll(() => pki.remove());

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const withTls = (tls: unknown, baseUrl = 'https://orders.internal.example:8443') => ({ targets: { orders: { baseUrl, tls } } });

describe('the tls schema', () => {
  it('accepts every field and keeps them as given', () => {
    const tls = {
      caFile: '/etc/sluice/tls/ca.pem',
      certFile: '/etc/sluice/tls/client.pem',
      keyFile: '/etc/sluice/tls/client.key',
      passphraseFromEnv: 'ORDERS_KEY_PASSPHRASE',
      servername: 'orders.internal.example',
      minVersion: 'TLSv1.3',
    };
    expect(parseSluiceConfig(withTls(tls)).targets['orders']!.tls).toEqual(tls);
  });

  it.each([
    [
      { rejectUnauthorized: false },
      'targets.orders.tls.rejectUnauthorized: sluice always verifies the server certificate; for a server whose certificate a private CA signs, give that CA in caFile',
    ],
    [{ certFile: '/a/client.pem' }, 'targets.orders.tls.keyFile: certFile needs keyFile (the private key of the client certificate)'],
    [{ keyFile: '/a/client.key' }, 'targets.orders.tls.certFile: keyFile needs certFile (the client certificate)'],
    [{ caFile: '/a/ca.pem', passphraseFromEnv: 'P' }, 'targets.orders.tls.passphraseFromEnv: passphraseFromEnv needs keyFile'],
    [{ caFile: 'certs/ca.pem' }, 'targets.orders.tls.caFile: expected an absolute file path'],
    [{ minVersion: 'TLSv1.1' }, 'targets.orders.tls.minVersion: '],
    [{ servername: '10.0.0.1:443' }, 'targets.orders.tls.servername: expected a DNS name such as api.internal.example'],
    [{ insecure: true }, 'targets.orders.tls.insecure: unknown field'],
  ])('refuses %j, saying why', (tls, message) => {
    expect(configError(() => parseSluiceConfig(withTls(tls))).message).toContain(message);
  });

  it('refuses tls on an http:// target', () => {
    expect(configError(() => parseSluiceConfig(withTls({ caFile: '/a/ca.pem' }, 'http://orders.internal.example'))).message).toContain(
      'targets.orders.tls: tls needs an https:// baseUrl',
    );
  });

  it('refuses targets on one origin with different tls (its connections carry one set), accepts the same in any order', () => {
    const error = configError(() =>
      parseSluiceConfig({
        targets: {
          orders: {
            baseUrl: 'https://api.internal.example/orders',
            tls: { caFile: '/a/ca.pem', certFile: '/a/c.pem', keyFile: '/a/c.key' },
          },
          refunds: { baseUrl: 'https://api.internal.example:443/refunds', tls: { caFile: '/a/ca.pem' } },
        },
      }),
    );
    expect(error.message).toContain(
      'targets.refunds.tls: targets orders and refunds share the origin https://api.internal.example, so they need the same tls settings (or none)',
    );
    const agreeing = parseSluiceConfig({
      targets: {
        orders: { baseUrl: 'https://api.internal.example/orders', tls: { caFile: '/a/ca.pem', minVersion: 'TLSv1.3' } },
        refunds: { baseUrl: 'https://api.internal.example/refunds', tls: { minVersion: 'TLSv1.3', caFile: '/a/ca.pem' } },
      },
    });
    expect(Object.keys(agreeing.targets)).toEqual(['orders', 'refunds']);
  });
});

describe('loadTargetTls', () => {
  const load = (tls: unknown, env: Record<string, string> = {}) => loadTargetTls(parseSluiceConfig(withTls(tls)), env);

  it('reads the files once, keyed by the target origin', () => {
    const loaded = load(
      {
        caFile: pki.caFile,
        certFile: pki.client.certFile,
        keyFile: pki.encryptedClientKeyFile,
        passphraseFromEnv: 'ORDERS_KEY_PASSPHRASE',
        servername: 'orders.internal.test',
        minVersion: 'TLSv1.3',
      },
      { ORDERS_KEY_PASSPHRASE: PASSPHRASE },
    );
    expect([...loaded.keys()]).toEqual(['https://orders.internal.example:8443']);
    const material = loaded.get('https://orders.internal.example:8443')!;
    expect(material.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(material.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(material.key).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(material).toMatchObject({ passphrase: PASSPHRASE, servername: 'orders.internal.test', minVersion: 'TLSv1.3' });
  });

  it('names the config path and the file that cannot be read', () => {
    const missing = join(pki.dir, 'nope', 'ca.pem');
    const error = configError(() => load({ caFile: missing }));
    expect(error.message).toBe(
      `invalid configuration in the target TLS files:\n  targets.orders.tls.caFile: cannot read ${missing} (ENOENT)`,
    );
  });

  it('lists every problem: a file that holds no certificate, a key that is not a key', () => {
    const notPem = join(pki.dir, 'not-a-cert.pem');
    writeFileSync(notPem, 'hello\n');
    const error = configError(() => load({ caFile: notPem, certFile: pki.client.certFile, keyFile: notPem }));
    expect(error.issues.map((issue) => issue.path)).toEqual(['targets.orders.tls.caFile', 'targets.orders.tls.keyFile']);
    expect(error.message).toContain(`targets.orders.tls.caFile: ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    expect(error.message).toContain(`targets.orders.tls.keyFile: ${notPem} holds no usable private key`);
  });

  it('refuses a certificate that does not parse', () => {
    const broken = join(pki.dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(configError(() => load({ caFile: broken })).message).toContain(
      `targets.orders.tls.caFile: certificate 1 in ${broken} does not parse`,
    );
  });

  it('refuses a key that does not belong to the certificate', () => {
    const error = configError(() => load({ certFile: pki.client.certFile, keyFile: pki.server.keyFile }));
    expect(error.message).toContain(
      `targets.orders.tls.keyFile: the key in ${pki.server.keyFile} does not belong to the certificate in ${pki.client.certFile}`,
    );
  });

  it('refuses an encrypted key without a passphrase, with a missing variable, or with a wrong one', () => {
    const tls = { certFile: pki.client.certFile, keyFile: pki.encryptedClientKeyFile };
    expect(configError(() => load(tls)).message).toContain(
      `targets.orders.tls.keyFile: the key in ${pki.encryptedClientKeyFile} is encrypted: name the variable holding its passphrase in passphraseFromEnv`,
    );
    const named = { ...tls, passphraseFromEnv: 'ORDERS_KEY_PASSPHRASE' };
    expect(configError(() => load(named)).issues).toEqual([
      { path: 'targets.orders.tls.passphraseFromEnv', message: 'environment variable ORDERS_KEY_PASSPHRASE is not set' },
    ]);
    const wrong = configError(() => load(named, { ORDERS_KEY_PASSPHRASE: 'not it' }));
    expect(wrong.message).toContain(
      `targets.orders.tls.passphraseFromEnv: the passphrase in ORDERS_KEY_PASSPHRASE does not decrypt the key in ${pki.encryptedClientKeyFile}`,
    );
    expect(wrong.message).not.toContain('not it');
  });

  it('a worker refuses to start, before it opens anything, when a file cannot be read', () => {
    const caFile = join(pki.dir, 'gone', 'ca.pem');
    const config = parseSluiceConfig(withTls({ caFile }));
    // Port 1: nothing listens there, and nothing is opened before the files are read.
    const error = configError(() => createSluiceWorker({ connection: 'redis://127.0.0.1:1', logger: testLogger(), config }));
    expect(error.message).toContain(`targets.orders.tls.caFile: cannot read ${caFile} (ENOENT)`);
  });

  it('reads a CA bundle of several certificates', () => {
    const bundle = join(pki.dir, 'bundle.pem');
    copyFileSync(pki.caFile, bundle);
    writeFileSync(bundle, `\n# the second CA\n${readFileSync(pki.otherCaFile, 'utf8')}`, { flag: 'a' });
    expect(load({ caFile: bundle }).get('https://orders.internal.example:8443')!.ca).toContain('# the second CA');
  });
});
