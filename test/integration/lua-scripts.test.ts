/**
 * Every Lua script in src/redis/lua compiles in a real Redis (SCRIPT LOAD), with its includes in
 * place, and opens with the header that names its KEYS and ARGV.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defineScript, luaScriptNames, luaSource } from '../../src/redis/scripts.js';
import { useRedisServer } from '../helpers/redis.js';

const redis = useRedisServer();
const LUA_DIR = new URL('../../src/redis/lua/', import.meta.url);

describe('Lua scripts', () => {
  const names = luaScriptNames();

  it('are all found, includes aside', () => {
    expect(names.length).toBeGreaterThanOrEqual(12);
    expect(names).not.toContain('includes');
    for (const include of readdirSync(new URL('includes/', LUA_DIR))) expect(names).not.toContain(include.replace(/\.lua$/, ''));
  });

  it.each(names)('%s compiles in Redis, with every include resolved', async (name) => {
    const source = luaSource(name);
    expect(source).not.toMatch(/@include/);
    const sha = await redis().client.script('LOAD', source);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it.each(names)('%s opens with a header naming its KEYS and ARGV', (name) => {
    const text = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
    const header = /^--\[\[\n([\s\S]*?)\n\]\]/.exec(text)?.[1] ?? '';
    expect(header, `${name}.lua has no --[[ ]] header`).not.toBe('');
    expect(header).toMatch(/Input:\n\s+KEYS\[/);
    expect(header).toMatch(/Output:/);
    if (/ARGV\[/.test(text.slice(header.length))) expect(header).toMatch(/ARGV\[/);
  });

  it('runs through defineScript with a fixed number of keys from the name, or a given one', async () => {
    const client = redis().client;
    await client.set('lua-test:lock', 'me');
    const extendLock = defineScript<[string, string, number]>(client, 'extend-lock-1');
    expect(await extendLock('lua-test:lock', 'me', 5_000)).toBe(1);
    expect(await extendLock('lua-test:lock', 'someone else', 5_000)).toBe(0);
    const release = defineScript(client, 'limit-release');
    await client.zadd('lua-test:leases', 1, 'lease-a');
    expect(await release(1, 'lua-test:leases', 'lease-a')).toBe(1);
    expect(await client.zcard('lua-test:leases')).toBe(0);
    // After a restart Redis knows no script: EVALSHA fails and the runner falls back to EVAL.
    await client.script('FLUSH');
    expect(await extendLock('lua-test:lock', 'me', 5_000)).toBe(1);
  });
});
