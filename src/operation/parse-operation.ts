import type { Issue } from '../errors.js';
import type { SluiceConfig } from '../config/sluice-config.js';
import { canonicalHost, createDestinationPolicy, type DestinationPolicy } from '../config/destinations.js';
import { issuesFromZod } from '../config/issues.js';
import { fileConfigIssues, signedBodyIssues } from './file-fields.js';
import { nestingIssue } from './nesting.js';
import { operationSchema, type Operation } from './schema.js';
import type { Paginate } from './paginate-schema.js';
import { sampleOfTemplate } from './template.js';
import { crossGroupRefusal } from '../limits/limit-keys.js';

export type ParseResult = { ok: true; operation: Operation } | { ok: false; issues: Issue[] };

const policies = new WeakMap<SluiceConfig, DestinationPolicy>();

/** The destination policy of a config (built once per config object). */
export function destinationPolicyOf(config: SluiceConfig): DestinationPolicy {
  let policy = policies.get(config);
  if (!policy) {
    policy = createDestinationPolicy(config);
    policies.set(config, policy);
  }
  return policy;
}

const targetRefusals = new WeakMap<SluiceConfig, Map<string, string | undefined>>();

/** Why a target's base URL may not be called: asked once per config and URL (a file of a million lines names a few targets). */
function targetRefusal(config: SluiceConfig, baseUrl: string): string | undefined {
  let refusals = targetRefusals.get(config);
  if (!refusals) {
    refusals = new Map();
    targetRefusals.set(config, refusals);
  }
  // A base URL that does not parse (a config built in code, not read) is refused where it is sent.
  if (!refusals.has(baseUrl))
    refusals.set(baseUrl, URL.canParse(baseUrl) ? destinationPolicyOf(config).refuseUrl(new URL(baseUrl)) : undefined);
  return refusals.get(baseUrl);
}

/** The issue of a target the config does not name, listing those it does; undefined for a known one. */
function unknownTarget(target: string, config: SluiceConfig): Issue | undefined {
  if (Object.hasOwn(config.targets, target)) return undefined;
  const known = Object.keys(config.targets);
  const hint = known.length ? `configured targets: ${known.join(', ')}` : 'no targets are configured (see --config / SLUICE_CONFIG)';
  return { path: 'target', message: `unknown target ${JSON.stringify(target)}; ${hint}` };
}

/** What an operation must also satisfy where it runs. */
export interface OperationRules {
  /** Its limit keys must be of one group: on a Redis Cluster they are acquired in one slot (limits/limit-keys.ts). */
  oneLimitGroup?: boolean;
}

/**
 * Validates one operation against the schema and against the config it will run with (the target
 * it names must exist; its URL must be one the config allows, see config/destinations.ts). Used by
 * producers at enqueue time and by workers when they take a job.
 */
export function parseOperation(input: unknown, config: SluiceConfig, rules: OperationRules = {}): ParseResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: '', message: `expected a JSON object, got ${describe(input)}` }] };
  }
  // First: the schema's checks, templates and JSON Schemas recurse into what they are given.
  const tooDeep = nestingIssue(input);
  if (tooDeep) return { ok: false, issues: [tooDeep] };
  const lost = lostKeyIssues(input as Record<string, unknown>);
  const parsed = operationSchema.safeParse(input);
  if (!parsed.success) {
    // An unknown target is named with the schema's problems, not only once they are fixed.
    const named = (input as { target?: unknown }).target;
    const target = typeof named === 'string' && named !== '' ? unknownTarget(named, config) : undefined;
    return { ok: false, issues: [...lost, ...issuesFromZod(parsed.error.issues), ...(target ? [target] : [])] };
  }
  if (lost.length > 0) return { ok: false, issues: lost };
  const operation = parsed.data;
  const unknown = operation.target === undefined ? undefined : unknownTarget(operation.target, config);
  if (unknown) return { ok: false, issues: [unknown] };
  // A path goes to its target's host (allowed, unless it is an internal address the target does not allow):
  // then it is the target that is refused.
  const target = operation.target === undefined ? undefined : config.targets[operation.target];
  const viaTarget = operation.url.startsWith('/') && target !== undefined;
  const destination = viaTarget ? target.baseUrl : operation.url;
  // A target's base URL is parsed once (targetRefusal); only an operation's own URL is parsed each time.
  const refusal = viaTarget
    ? targetRefusal(config, destination)
    : URL.canParse(destination)
      ? destinationPolicyOf(config).refuseUrl(new URL(destination))
      : undefined;
  if (refusal)
    return {
      ok: false,
      issues: [viaTarget ? { path: 'target', message: `${operation.target}: ${refusal}` } : { path: 'url', message: refusal }],
    };
  const files = fileConfigIssues(operation, config);
  if (files.length > 0) return { ok: false, issues: files };
  const signed = signedBodyIssues(operation, target, destination);
  if (signed.length > 0) return { ok: false, issues: signed };
  const paging = operation.paginate === undefined ? [] : paginationIssues(operation.paginate, config, rules);
  if (paging.length > 0) return { ok: false, issues: paging };
  // Only a list of keys can span groups (a target's or a host's default key is one).
  const crossGroup = rules.oneLimitGroup && Array.isArray(operation.limitKey) ? crossGroupRefusal(operation.limitKey) : undefined;
  if (crossGroup) return { ok: false, issues: [{ path: 'limitKey', message: crossGroup }] };
  return { ok: true, operation };
}

/** The records of names in an operation (`json` and `meta` are kept whole, whatever their keys). */
const RECORDS = [['query'], ['form'], ['headers'], ['expect', 'schema'], ['paginate', 'forEach']];

/** zod leaves a "__proto__" key out of a record it copies (it cannot be assigned safely): refuse it rather than lose it. */
function lostKeyIssues(input: Record<string, unknown>): Issue[] {
  let issues: Issue[] | undefined;
  // A loop rather than flatMap and reduce: this runs for every operation a worker takes.
  for (const path of RECORDS) {
    let record: unknown = input;
    for (const key of path) record = isObject(record) ? record[key] : undefined;
    if (isObject(record) && Object.hasOwn(record, '__proto__')) {
      (issues ??= []).push({
        path: `${path.join('.')}.__proto__`,
        message: 'the name "__proto__" is not supported (it would be lost on the way)',
      });
    }
  }
  return issues ?? NO_ISSUES;
}

const NO_ISSUES: Issue[] = [];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Where the items go must work with this config: a download directory, or a valid child template. */
function paginationIssues(paginate: Paginate, config: SluiceConfig, rules: OperationRules): Issue[] {
  if (paginate.forEach !== undefined) {
    const child = parseOperation(sampleOfTemplate(paginate.forEach), config, rules);
    return child.ok
      ? []
      : child.issues.map((issue) => ({ ...issue, path: issue.path ? `paginate.forEach.${issue.path}` : 'paginate.forEach' }));
  }
  if (!config.files?.downloadDir) {
    return [
      {
        path: 'paginate',
        message: 'the items go to a JSONL file under files.downloadDir, which the config does not set (or give paginate.forEach)',
      },
    ];
  }
  return [];
}

/**
 * The limit keys an operation consumes: its own (one or several), else its target's name, else its
 * URL's host. An operation naming several keys runs only when it holds all of them.
 */
export function limitKeysOf(operation: Operation): string[] {
  if (operation.limitKey !== undefined) return Array.isArray(operation.limitKey) ? operation.limitKey : [operation.limitKey];
  if (operation.target !== undefined) return [operation.target];
  // `api.example.com.` is the same host as `api.example.com`, and shares its limits.
  const url = new URL(operation.url);
  return [url.port ? `${canonicalHost(url.hostname)}:${url.port}` : canonicalHost(url.hostname)];
}

/** The limit keys as one string, for logs and dead letters. */
export function limitKeyOf(operation: Operation): string {
  return limitKeysOf(operation).join(',');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
