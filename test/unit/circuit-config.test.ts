/**
 * A limit key's circuit breaker settings: the defaults, `false`, and every bad value named by its
 * path; which settings apply to which key.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CIRCUIT } from '../../src/config/circuit-schema.js';
import { parseSluiceConfig } from '../../src/config/sluice-config.js';
import { ConfigError } from '../../src/errors.js';
import { circuitOf } from '../../src/limits/limit-keys.js';

const target = (circuit?: unknown) => ({ baseUrl: 'https://api.example.com', ...(circuit === undefined ? {} : { circuit }) });

describe('circuit settings', () => {
  it('are on with documented defaults for every key the config says nothing of', () => {
    expect(DEFAULT_CIRCUIT).toEqual({
      failureRatio: 0.5,
      minAttempts: 20,
      windowMs: 30_000,
      probeIntervalMs: 5_000,
      maxProbeIntervalMs: 60_000,
      maxOpenMs: 86_400_000,
      failOn: ['network', 'timeout', 502, 503, 504],
    });
    const config = parseSluiceConfig({ targets: { crm: target() } });
    expect(circuitOf('crm', config)).toEqual(DEFAULT_CIRCUIT);
    expect(circuitOf('api.other.example', config)).toEqual(DEFAULT_CIRCUIT);
  });

  it("take a target's own settings (defaults filled in), a key's from `circuits`, or `false` for none", () => {
    const config = parseSluiceConfig({
      targets: { crm: target({ minAttempts: 5, failOn: ['network', 500] }), legacy: target(false) },
      circuits: { 'api.partner.example': { probeIntervalMs: 1_000 }, 'tenant:7': false },
    });
    expect(circuitOf('crm', config)).toEqual({ ...DEFAULT_CIRCUIT, minAttempts: 5, failOn: ['network', 500] });
    expect(circuitOf('legacy', config)).toBeUndefined();
    expect(circuitOf('api.partner.example', config)).toEqual({ ...DEFAULT_CIRCUIT, probeIntervalMs: 1_000 });
    expect(circuitOf('tenant:7', config)).toBeUndefined();
  });

  it('name every bad value by its path', () => {
    let thrown: unknown;
    try {
      parseSluiceConfig({
        targets: {
          crm: target({ failureRatio: 1.5, minAttempts: 0, failOn: ['dns'] }),
          slow: target({ probeIntervalMs: 10_000, maxProbeIntervalMs: 5_000 }),
          other: target({ retries: 3 }),
        },
        circuits: { x: true },
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const message = (thrown as ConfigError).message;
    for (const path of [
      'targets.crm.circuit.failureRatio',
      'targets.crm.circuit.minAttempts',
      'targets.crm.circuit.failOn[0]: expected "network", "timeout" or an HTTP status',
      'targets.slow.circuit.maxProbeIntervalMs: must be at least probeIntervalMs',
      'targets.other.circuit.retries: unknown field',
      'circuits.x: expected an object of circuit settings, or false',
    ])
      expect(message).toContain(path);
  });
});
