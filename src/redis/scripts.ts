import { readFileSync, readdirSync } from 'node:fs';
import type { RedisClient } from './client.js';

/** Beside this module in src/ and in dist/ (the build copies the .lua files). */
const LUA_DIR = new URL('./lua/', import.meta.url);
/** `--- @include "name"` on a line of its own: lua/includes/name.lua goes there (once per script). */
const INCLUDE = /^--- @include "([\w-]+)"$/gm;
/** A script named `name-N` takes N keys; any other takes their number as its first argument. */
const FIXED_KEYS = /-(\d+)$/;

const sources = new Map<string, string>();

/** A script's source with its includes in place. Read from disk once per process. */
export function luaSource(name: string): string {
  let source = sources.get(name);
  if (source === undefined) {
    source = withIncludes(readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8'), new Set());
    sources.set(name, source);
  }
  return source;
}

function withIncludes(text: string, included: Set<string>): string {
  return text.replace(INCLUDE, (_line, include: string) => {
    if (included.has(include)) return '';
    included.add(include);
    return withIncludes(readFileSync(new URL(`includes/${include}.lua`, LUA_DIR), 'utf8'), included);
  });
}

/** Every script in lua/ (includes aside), by name. */
export function luaScriptNames(): string[] {
  return readdirSync(LUA_DIR)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => file.slice(0, -'.lua'.length))
    .sort();
}

export interface ScriptOptions {
  /**
   * Runs even when a `noeviction` Redis is full (Redis 7's `allow-oom` flag): for a last write that
   * must not wait for memory. Other scripts are refused then, at their first write.
   */
  allowOom?: boolean;
}

/**
 * Defines the script `name` (lua/name.lua) on a client, once per client, and returns a function
 * that runs it: EVALSHA, falling back to EVAL when Redis does not know it yet (after a restart).
 */
export function defineScript<A extends (string | number)[] = (string | number)[]>(
  redis: RedisClient,
  name: string,
  options: ScriptOptions = {},
): (...args: A) => Promise<unknown> {
  const command = `sluice:${name}${options.allowOom ? ':allow-oom' : ''}`;
  const commands = redis as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;
  if (!commands[command]) {
    const keys = FIXED_KEYS.exec(name);
    // The flags line must come first; Redis reads it, Lua never sees it.
    const lua = options.allowOom ? `#!lua flags=allow-oom\n${luaSource(name)}` : luaSource(name);
    redis.defineCommand(command, keys ? { numberOfKeys: Number(keys[1]), lua } : { lua });
  }
  const run = commands[command]!;
  return (...args: A) => run.apply(redis, args);
}
