import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ConfigError, errorMessage, type Issue } from '../errors.js';
import type { SluiceConfig } from './sluice-config.js';
import type { TargetTls } from './tls-schema.js';

/** What a target's connections are made with: PEM text read from its files, never written anywhere. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  servername?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/**
 * Reads every target's TLS files once, when the worker starts, keyed by the target's origin (TLS
 * settings go with the connections to that origin, and nowhere else). A file that cannot be read,
 * a certificate or key that does not parse, a key that does not match its certificate, a missing
 * passphrase: each is a ConfigError issue naming the config path, and the worker does not start.
 */
export function loadTargetTls(config: Pick<SluiceConfig, 'targets'>, env: Record<string, string | undefined>): Map<string, TlsMaterial> {
  const issues: Issue[] = [];
  const byOrigin = new Map<string, TlsMaterial>();
  for (const [name, target] of Object.entries(config.targets)) {
    if (!target.tls) continue;
    const material = readMaterial(target.tls, `targets.${name}.tls`, env, issues);
    if (material) byOrigin.set(new URL(target.baseUrl).origin, material);
  }
  if (issues.length > 0) throw new ConfigError('the target TLS files', issues);
  return byOrigin;
}

function readMaterial(tls: TargetTls, at: string, env: Record<string, string | undefined>, issues: Issue[]): TlsMaterial | undefined {
  const before = issues.length;
  const problem = (field: string, message: string) => issues.push({ path: field ? `${at}.${field}` : at, message });
  const material: TlsMaterial = {};
  if (tls.servername) material.servername = tls.servername;
  if (tls.minVersion) material.minVersion = tls.minVersion;

  if (tls.caFile) {
    const text = readText(tls.caFile, 'caFile', problem);
    if (text !== undefined && certificatesIn(text, tls.caFile, 'caFile', problem).length > 0) material.ca = text;
  }
  if (tls.certFile && tls.keyFile) {
    let passphrase: string | undefined;
    if (tls.passphraseFromEnv) {
      passphrase = env[tls.passphraseFromEnv];
      if (!passphrase) problem('passphraseFromEnv', `environment variable ${tls.passphraseFromEnv} is not set`);
    }
    const certText = readText(tls.certFile, 'certFile', problem);
    const keyText = readText(tls.keyFile, 'keyFile', problem);
    const [leaf] = certText === undefined ? [] : certificatesIn(certText, tls.certFile, 'certFile', problem);
    const key = keyText === undefined ? undefined : privateKeyIn(keyText, tls.keyFile, passphrase, tls.passphraseFromEnv, problem);
    if (leaf && key && !leaf.checkPrivateKey(key)) {
      problem('keyFile', `the key in ${tls.keyFile} does not belong to the certificate in ${tls.certFile}`);
    }
    if (certText !== undefined && keyText !== undefined) {
      material.cert = certText;
      material.key = keyText;
      if (passphrase) material.passphrase = passphrase;
    }
  }
  if (issues.length > before) return undefined;
  try {
    // What the connections will be made with, checked as OpenSSL will use it.
    createSecureContext(material);
  } catch (error) {
    problem('', `cannot use these certificates: ${errorMessage(error)}`);
    return undefined;
  }
  return material;
}

type Problem = (field: string, message: string) => void;

function readText(path: string, field: string, problem: Problem): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    problem(field, `cannot read ${path} (${typeof code === 'string' ? code : errorMessage(error)})`);
    return undefined;
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every PEM certificate in `text`, parsed; a problem when there is none or one does not parse. */
function certificatesIn(text: string, path: string, field: string, problem: Problem): X509Certificate[] {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    problem(field, `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return [];
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (error) {
      problem(field, `certificate ${index + 1} in ${path} does not parse: ${errorMessage(error)}`);
      return [];
    }
  }
  return certificates;
}

function privateKeyIn(
  text: string,
  path: string,
  passphrase: string | undefined,
  passphraseFromEnv: string | undefined,
  problem: Problem,
): KeyObject | undefined {
  // PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) or traditional (`Proc-Type: 4,ENCRYPTED`).
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text);
  if (encrypted && !passphraseFromEnv) {
    problem('keyFile', `the key in ${path} is encrypted: name the variable holding its passphrase in passphraseFromEnv`);
    return undefined;
  }
  // A missing variable is a problem of its own already.
  if (encrypted && !passphrase) return undefined;
  try {
    return createPrivateKey({ key: text, ...(encrypted ? { passphrase } : {}) });
  } catch (error) {
    if (encrypted) problem('passphraseFromEnv', `the passphrase in ${passphraseFromEnv} does not decrypt the key in ${path}`);
    else problem('keyFile', `${path} holds no usable private key: ${errorMessage(error)}`);
    return undefined;
  }
}
