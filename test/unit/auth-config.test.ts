import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { ConfigError } from '../../src/errors.js';
import { secretIssues } from '../../src/auth/auth-config.js';

const withAuth = (auth: unknown) => ({ targets: { api: { baseUrl: 'https://api.example.test', auth } } });

function issuesOf(config: unknown) {
  try {
    parseSluiceConfig(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('target auth in the config', () => {
  it('accepts each scheme, with defaults', () => {
    const config = parseSluiceConfig({
      targets: {
        a: { baseUrl: 'https://a.test', auth: { type: 'apiKey', name: 'X-API-Key', valueFromEnv: 'A_KEY' } },
        b: { baseUrl: 'https://b.test', auth: { type: 'bearer', tokenFromEnv: 'B_TOKEN' } },
        c: { baseUrl: 'https://c.test', auth: { type: 'basic', usernameFromEnv: 'C_USER', passwordFromEnv: 'C_PASSWORD' } },
        d: {
          baseUrl: 'https://d.test',
          auth: {
            type: 'oauth2ClientCredentials',
            tokenUrl: 'https://d.test/token',
            clientIdFromEnv: 'D_ID',
            clientSecretFromEnv: 'D_SECRET',
          },
        },
      },
    });
    expect(config.targets['a']!.auth).toEqual({ type: 'apiKey', in: 'header', name: 'X-API-Key', valueFromEnv: 'A_KEY' });
    expect(config.targets['d']!.auth).toMatchObject({ clientAuth: 'basic' });
  });

  it('names the field of each problem', () => {
    expect(issuesOf(withAuth({ type: 'password' }))).toEqual([
      { path: 'targets.api.auth.type', message: 'expected type apiKey, bearer, basic, oauth2ClientCredentials, hmac or standardWebhooks' },
    ]);
    expect(issuesOf(withAuth({ type: 'bearer', tokenFromEnv: 'not a name' }))).toEqual([
      { path: 'targets.api.auth.tokenFromEnv', message: 'expected an environment variable name such as ORDERS_API_KEY' },
    ]);
    expect(issuesOf(withAuth({ type: 'bearer', token: 'inline-secret' })).map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['targets.api.auth.token', 'targets.api.auth.tokenFromEnv']),
    );
    expect(
      issuesOf(withAuth({ type: 'oauth2ClientCredentials', tokenUrl: 'ftp://x', clientIdFromEnv: 'I', clientSecretFromEnv: 'S' })),
    ).toEqual([{ path: 'targets.api.auth.tokenUrl', message: 'expected an absolute http(s) URL' }]);
  });

  it('secretIssues lists unset and empty variables, not set ones', () => {
    const config = parseSluiceConfig(withAuth({ type: 'basic', usernameFromEnv: 'U', passwordFromEnv: 'P' }));
    expect(secretIssues(config.targets, { U: 'x', P: '' })).toEqual([
      { path: 'targets.api.auth.passwordFromEnv', message: 'environment variable P is not set' },
    ]);
    expect(secretIssues(config.targets, { U: 'x', P: 'y' })).toEqual([]);
  });

  it('accepts hmac with its defaults (header names lower-cased) and the Standard Webhooks preset', () => {
    const config = parseSluiceConfig({
      targets: {
        a: { baseUrl: 'https://a.test', auth: { type: 'hmac', secretFromEnv: 'A_SECRET', template: '{method} {path}', header: 'X-Sig' } },
        b: { baseUrl: 'https://b.test', auth: { type: 'standardWebhooks', secretFromEnv: 'B_SECRET' } },
      },
    });
    expect(config.targets['a']!.auth).toEqual({
      type: 'hmac',
      secretFromEnv: 'A_SECRET',
      algorithm: 'sha256',
      template: '{method} {path}',
      header: 'x-sig',
      prefix: '',
      encoding: 'hex',
      timestampFormat: 'unixSeconds',
    });
    expect(config.targets['b']!.auth).toEqual({ type: 'standardWebhooks', secretFromEnv: 'B_SECRET' });
  });

  it('hmac: an unknown placeholder, a signed timestamp without its header, and a bad algorithm are named by path', () => {
    const hmac = (fields: Record<string, unknown>) => withAuth({ type: 'hmac', secretFromEnv: 'S', header: 'X-Sig', ...fields });
    expect(issuesOf(hmac({ template: '{timestamp}.{url}' }))).toEqual([
      { path: 'targets.api.auth.template', message: expect.stringMatching(/^unknown placeholder \{url\}; known: \{timestamp\}, /) },
      {
        path: 'targets.api.auth.timestampHeader',
        message: 'the template signs {timestamp}: name the header that carries it to the receiver',
      },
    ]);
    expect(issuesOf(hmac({ template: '{id}', timestampHeader: 'x-sig' }))).toEqual([
      { path: 'targets.api.auth.timestampHeader', message: 'expected a header other than the signature header' },
    ]);
    expect(issuesOf(hmac({ template: '{id}', algorithm: 'md5' })).map((issue) => issue.path)).toEqual(['targets.api.auth.algorithm']);
    expect(issuesOf(hmac({ template: '{id}', secret: 'inline' })).map((issue) => issue.path)).toEqual(['targets.api.auth.secret']);
  });

  it('secretIssues: a Standard Webhooks secret must be whsec_ and base64; the message names the variable, never the value', () => {
    const config = parseSluiceConfig(withAuth({ type: 'standardWebhooks', secretFromEnv: 'HOOKS_SECRET' }));
    const message = 'environment variable HOOKS_SECRET is not a Standard Webhooks secret (expected whsec_ and base64)';
    expect(secretIssues(config.targets, { HOOKS_SECRET: 'whsec_not-base64!' })).toEqual([
      { path: 'targets.api.auth.secretFromEnv', message },
    ]);
    expect(secretIssues(config.targets, {})).toEqual([
      { path: 'targets.api.auth.secretFromEnv', message: 'environment variable HOOKS_SECRET is not set' },
    ]);
    expect(secretIssues(config.targets, { HOOKS_SECRET: `whsec_${Buffer.from('k'.repeat(32)).toString('base64')}` })).toEqual([]);
  });
});
