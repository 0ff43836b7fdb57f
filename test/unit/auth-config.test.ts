import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { ConfigError } from '../../src/errors.js';
import { missingSecrets } from '../../src/auth/auth-config.js';

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
      { path: 'targets.api.auth.type', message: 'expected type apiKey, bearer, basic or oauth2ClientCredentials' },
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

  it('missingSecrets lists unset and empty variables, not set ones', () => {
    const config = parseSluiceConfig(withAuth({ type: 'basic', usernameFromEnv: 'U', passwordFromEnv: 'P' }));
    expect(missingSecrets(config.targets, { U: 'x', P: '' })).toEqual([
      { path: 'targets.api.auth.passwordFromEnv', message: 'environment variable P is not set' },
    ]);
    expect(missingSecrets(config.targets, { U: 'x', P: 'y' })).toEqual([]);
  });
});
