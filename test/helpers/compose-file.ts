/**
 * A compose file as the deployment tests read it, without Docker: parsed with YAML merge keys
 * (`<<: *anchor`), and its values interpolated as compose does with nothing set in the environment.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { packageRoot } from '../../src/support/package-root.js';

export interface ComposeService {
  image?: string;
  build?: unknown;
  pull_policy?: string;
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  volumes?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; start_period?: string };
  stop_grace_period?: string;
  container_name?: string;
  restart?: string;
  init?: boolean;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  networks?: Record<string, { ipam?: { config?: { subnet?: string; ip_range?: string }[] } } | null>;
}

/** A compose file of the repository root. */
export function loadCompose(file: string): ComposeFile {
  return parse(readFileSync(join(packageRoot(), file), 'utf8'), { merge: true }) as ComposeFile;
}

/**
 * Compose's interpolation with nothing set: `${X:-d}` → d, `${X:?msg}` → a placeholder, `${X}` → '',
 * `$$` → `$`. A bare `$X` is refused: the files always use braces.
 */
export function interpolate(value: string): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}|\$/g,
    (match, name: string | undefined, op?: string, arg?: string) => {
      if (match === '$$') return '$';
      if (match === '$') throw new Error(`unexpected $ left after interpolation: ${value}`);
      return op === '-' ? (arg ?? '') : op === '?' ? `<${name!} is required>` : '';
    },
  );
}

/** A service's environment, interpolated. */
export function environmentOf(service: ComposeService): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, interpolate(String(value))]));
}

/** The services that run `redis-server`, by name. */
export function redisServers(compose: ComposeFile): Record<string, ComposeService> {
  return Object.fromEntries(Object.entries(compose.services).filter(([, service]) => service.command?.[0] === 'redis-server'));
}

/** A one-shot service: it runs to completion and is not restarted (others wait for `service_completed_successfully`). */
export const isOneShot = (service: ComposeService): boolean => service.restart === 'no';
