import type { Redis } from 'ioredis';

/**
 * Registers a Lua script on a client (once per client and name) and returns a function that runs
 * it with EVALSHA, falling back to EVAL when Redis does not know it yet (after a restart).
 * `numberOfKeys` of the leading arguments are keys; a negative number means "the first argument
 * says how many keys follow" (for scripts with a variable number of keys).
 */
export function luaScript<A extends (string | number)[]>(
  redis: Redis,
  name: string,
  numberOfKeys: number,
  lua: string,
): (...args: A) => Promise<unknown> {
  const commands = redis as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;
  if (!commands[name]) {
    redis.defineCommand(name, numberOfKeys >= 0 ? { numberOfKeys, lua } : { lua });
  }
  const command = commands[name]!;
  return (...args: A) => command.apply(redis, args);
}
