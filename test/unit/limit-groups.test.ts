/**
 * Limit key groups: a group's keys share a Redis Cluster slot (`{limits:<group>}`), so one
 * operation's keys, acquired together in one script, must be of one group on a cluster.
 */
import { describe, expect, it } from 'vitest';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { byLimitGroup, crossGroupRefusal } from '../../src/limits/limit-keys.js';
import { parseOperation } from '../../src/operation/parse-operation.js';
import { limitGroupOf, limiterKeys } from '../../src/redis/keys.js';

describe('limitGroupOf', () => {
  it.each([
    ['crm', 'crm'],
    ['crm:tenant-42', 'crm'],
    ['crm:tenant:42', 'crm'],
    ['api.example.com:443', 'api.example.com'],
    [':odd', ''],
    ['[::1]:8080', '[::1]'],
    ['[2001:db8::1]', '[2001:db8::1]'],
  ])('%s is in group %j', (key, group) => {
    expect(limitGroupOf(key)).toBe(group);
    expect(limiterKeys.state(key)).toBe(`sluice:{limits:${group}}:state:${key}`);
  });
});

describe('byLimitGroup', () => {
  it('splits keys by group, each group in the order given', () => {
    expect(byLimitGroup(['crm', 'billing', 'crm:t-1', 'billing:x', 'other'])).toEqual([
      ['crm', 'crm:t-1'],
      ['billing', 'billing:x'],
      ['other'],
    ]);
    expect(byLimitGroup([])).toEqual([]);
  });
});

describe('crossGroupRefusal', () => {
  it('accepts the keys of one group, refuses those of several and says how to name them', () => {
    expect(crossGroupRefusal(['crm', 'crm:tenant-42'])).toBeUndefined();
    expect(crossGroupRefusal(['orders'])).toBeUndefined();
    const refusal = crossGroupRefusal(['orders', 'tenant:42']);
    expect(refusal).toContain('"orders" (group "orders") and "tenant:42" (group "tenant")');
    expect(refusal).toContain('"orders" and "orders:tenant:42"');
  });
});

describe('parseOperation with oneLimitGroup (a Redis Cluster)', () => {
  const config = parseSluiceConfig({ allowedHosts: ['api.example.com'] });
  const op = (limitKey: string | string[]) => ({ method: 'POST', url: 'https://api.example.com/x', limitKey });

  it('refuses an operation whose keys are of several groups, at `limitKey`', () => {
    const parsed = parseOperation(op(['orders', 'tenant:42']), config, { oneLimitGroup: true });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.issues).toEqual([{ path: 'limitKey', message: expect.stringContaining('different groups') }]);
  });

  it('accepts it on a single Redis, and one group anywhere', () => {
    expect(parseOperation(op(['orders', 'tenant:42']), config).ok).toBe(true);
    expect(parseOperation(op(['orders', 'orders:tenant:42']), config, { oneLimitGroup: true }).ok).toBe(true);
    expect(parseOperation({ method: 'GET', url: 'https://api.example.com/x' }, config, { oneLimitGroup: true }).ok).toBe(true);
  });

  it('checks the operations a walk fans out too', () => {
    const walk = { method: 'GET', url: 'https://api.example.com/items', paginate: { style: 'link', forEach: op(['a', 'b']) } };
    const parsed = parseOperation(walk, config, { oneLimitGroup: true });
    expect(!parsed.ok && parsed.issues[0]?.path).toBe('paginate.forEach.limitKey');
  });
});
