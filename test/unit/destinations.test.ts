import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { createDestinationPolicy, internalAddressKind, refusedKind } from '../../src/config/destinations.js';

const policy = createDestinationPolicy(
  parseSluiceConfig({
    targets: {
      orders: { baseUrl: 'https://api.example.com/v2' },
      local: { baseUrl: 'http://127.0.0.1:8080', allowPrivateAddresses: true },
      intranet: { baseUrl: 'http://crm.corp.internal:9000', allowPrivateAddresses: true },
    },
    allowedHosts: ['*.partner.example', 'files.example.org:8443', '169.254.169.254'],
  }),
);
const refuse = (url: string) => policy.refuseUrl(new URL(url));

describe('internalAddressKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.9.9.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['0.0.0.0', 'reserved'],
    ['::', 'reserved'],
    ['224.0.0.1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.255', 'documentation'],
    ['2001:db8::1', 'documentation'],
    ['[2001:db8:abcd::5]', 'documentation'],
    ['::ffff:192.0.2.1', 'documentation'],
  ])('%s is %s', (address, kind) => {
    expect(internalAddressKind(address)).toBe(kind);
  });

  it.each(['93.184.216.34', '172.32.0.1', '8.8.8.8', '2606:4700::1111', 'api.example.com', '192.0.3.1', '203.0.114.1', '2001:db9::1'])(
    '%s is not internal',
    (address) => {
      expect(internalAddressKind(address)).toBeUndefined();
    },
  );
});

describe('refusedKind: the one answer for enqueue and connect', () => {
  it.each([
    ['localhost', 'loopback'],
    ['localhost.', 'loopback'],
    ['LOCALHOST.', 'loopback'],
    ['app.localhost.', 'loopback'],
    ['127.0.0.1', 'loopback'],
    ['192.0.2.1', 'documentation'],
    ['10.0.0.1', 'private'],
  ])('%s is %s', (host, kind) => {
    expect(refusedKind(host)).toBe(kind);
  });

  it.each(['localhost.example.com', 'api.example.com.', '93.184.216.34'])('%s is not refused by itself', (host) => {
    expect(refusedKind(host)).toBeUndefined();
  });
});

describe('DestinationPolicy.refuseUrl', () => {
  it('allows the hosts of targets (same port) and of allowedHosts patterns', () => {
    expect(refuse('https://api.example.com/v2/orders')).toBeUndefined();
    expect(refuse('https://eu.partner.example/x')).toBeUndefined();
    expect(refuse('https://a.b.partner.example/x')).toBeUndefined();
    expect(refuse('https://files.example.org:8443/f')).toBeUndefined();
    expect(refuse('http://127.0.0.1:8080/ok')).toBeUndefined();
  });

  it('refuses any other host, or another port, saying how to allow it', () => {
    expect(refuse('https://evil.example.net/')).toBe(
      'host evil.example.net is not allowed: configure a target for it or add it to "allowedHosts" in the config',
    );
    expect(refuse('https://api.example.com:8443/')).toMatch(/^host api\.example\.com:8443 is not allowed/);
    expect(refuse('https://partner.example/')).toMatch(/is not allowed/);
    expect(refuse('https://files.example.org/f')).toMatch(/is not allowed/);
  });

  it('refuses internal addresses unless a target for that host and port allows them', () => {
    expect(refuse('http://169.254.169.254/latest/meta-data/')).toBe(
      '169.254.169.254 is a cloud metadata address; only a target for 169.254.169.254:80 with "allowPrivateAddresses": true may call it',
    );
    expect(refuse('http://127.0.0.1:9090/')).toMatch(/^host 127\.0\.0\.1:9090 is not allowed/);
  });
});

describe('DestinationPolicy.refuseUrl: documentation ranges and trailing dots', () => {
  const open = createDestinationPolicy(
    parseSluiceConfig({
      targets: {
        lab: { baseUrl: 'http://192.0.2.10:8080', allowPrivateAddresses: true },
        dev: { baseUrl: 'http://localhost:3000', allowPrivateAddresses: true },
        api: { baseUrl: 'https://api.example.com' },
      },
      allowedHosts: ['*'],
    }),
  );
  const refuseOpen = (url: string) => open.refuseUrl(new URL(url));

  it.each([
    [
      'http://localhost./',
      'localhost is a loopback address; only a target for localhost:80 with "allowPrivateAddresses": true may call it',
    ],
    [
      'http://LocalHost.:8080/x',
      'localhost is a loopback address; only a target for localhost:8080 with "allowPrivateAddresses": true may call it',
    ],
    [
      'http://192.0.2.1/',
      '192.0.2.1 is a documentation address; only a target for 192.0.2.1:80 with "allowPrivateAddresses": true may call it',
    ],
    [
      'https://198.51.100.20/',
      '198.51.100.20 is a documentation address; only a target for 198.51.100.20:443 with "allowPrivateAddresses": true may call it',
    ],
    [
      'http://203.0.113.5./',
      '203.0.113.5 is a documentation address; only a target for 203.0.113.5:80 with "allowPrivateAddresses": true may call it',
    ],
    [
      'http://[2001:db8::1]/',
      '[2001:db8::1] is a documentation address; only a target for [2001:db8::1]:80 with "allowPrivateAddresses": true may call it',
    ],
    // The lab target allows its own port only.
    [
      'http://192.0.2.10:9/',
      '192.0.2.10 is a documentation address; only a target for 192.0.2.10:9 with "allowPrivateAddresses": true may call it',
    ],
  ])('%s is refused: %s', (url, refusal) => {
    expect(refuseOpen(url)).toBe(refusal);
  });

  it('allowPrivateAddresses unlocks a documentation address and a trailing-dot name for its own host and port', () => {
    expect(refuseOpen('http://192.0.2.10:8080/x')).toBeUndefined();
    expect(refuseOpen('http://localhost.:3000/x')).toBeUndefined();
  });

  it('a target or allowed host is the same with or without the trailing dot', () => {
    expect(refuse('https://api.example.com./v2/orders')).toBeUndefined();
    expect(refuse('https://eu.partner.example./x')).toBeUndefined();
    expect(refuse('https://evil.example.net./')).toMatch(/^host evil\.example\.net\. is not allowed/);
  });
});

describe('DestinationPolicy.refuseAddress (after DNS)', () => {
  it('refuses a public name that resolves to an internal address', () => {
    expect(policy.refuseAddress('eu.partner.example', 443, '10.0.0.7')).toBe(
      'eu.partner.example (10.0.0.7) is a private address; only a target for eu.partner.example:443 with "allowPrivateAddresses": true may call it',
    );
    expect(policy.refuseAddress('eu.partner.example', 443, '93.184.216.34')).toBeUndefined();
  });

  it('lets a target that allows private addresses reach them, on its own port only', () => {
    expect(policy.refuseAddress('crm.corp.internal', 9000, '10.0.0.7')).toBeUndefined();
    expect(policy.refuseAddress('crm.corp.internal', 22, '10.0.0.7')).toMatch(/is a private address/);
    expect(policy.refuseAddress('127.0.0.1', 8080, '127.0.0.1')).toBeUndefined();
  });

  it('refuses a name that resolves to a documentation address; a trailing dot does not change the name', () => {
    expect(policy.refuseAddress('eu.partner.example.', 443, '203.0.113.9')).toBe(
      'eu.partner.example (203.0.113.9) is a documentation address; only a target for eu.partner.example:443 with "allowPrivateAddresses": true may call it',
    );
    expect(policy.refuseAddress('eu.partner.example', 443, '2001:db8::7')).toMatch(/is a documentation address/);
    expect(policy.refuseAddress('CRM.corp.internal.', 9000, '10.0.0.7')).toBeUndefined();
  });
});
