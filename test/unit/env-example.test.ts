import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envSchema, parseEnv } from '../../src/config/env.js';

const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
const documented = new Map(
  example
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
);

describe('.env.example', () => {
  it('documents exactly the variables the environment schema reads', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('shows the real defaults', () => {
    const defaults = parseEnv({});
    for (const [name, value] of documented) {
      if (value === '') continue;
      expect(String(defaults[name as keyof typeof defaults]), name).toBe(value);
    }
  });
});
